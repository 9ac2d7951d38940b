"""Presence scenarios through the WebSocket, as friends' clients observe them."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from presence.protocol import friendships_service_pb2 as pb
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    FriendsClient,
    Subscription,
    User,
    addresses,
    befriend,
    connect,
    drain,
    outcome,
    presences_of,
)

pytestmark = pytest.mark.django_db(transaction=True)

QUIET = 0.4  # seconds during which nothing may arrive


async def go(client: FriendsClient, status: int) -> None:
    response = await client.set_status(status)
    assert outcome(response) == ("status", ""), response
    assert response.status.type == status


async def closable(stack: AsyncExitStack, url: str, token: str) -> tuple[FriendsClient, object]:
    """A connection, and a coroutine function closing it before the test ends."""
    life = await stack.enter_async_context(AsyncExitStack())
    client = await life.enter_async_context(connect(url, token))
    return client, life.aclose


async def subscribed_friend(
    stack: AsyncExitStack, url: str, alice: User, bob: User
) -> tuple[FriendsClient, Subscription]:
    """alice and bob made friends; bob connected for the stack's life, and subscribed."""
    await befriend(url, alice, bob)
    b = await stack.enter_async_context(connect(url, bob.token))
    return b, await b.subscribe_presence()


@asynccontextmanager
async def watched(
    url: str, alice: User, bob: User, status: int
) -> AsyncIterator[tuple[FriendsClient, FriendsClient, Subscription]]:
    """alice and bob made friends and connected, alice at `status`, bob subscribed and past
    his snapshot of her: (alice's client, bob's, bob's subscription)."""
    await befriend(url, alice, bob)
    async with connect(url, alice.token) as a, connect(url, bob.token) as b:
        await go(a, status)
        updates = await b.subscribe_presence()
        assert presences_of(await updates.next()) == [(alice.address, status)]
        yield a, b, updates


async def test_two_users(service, make_user):
    alice, bob = make_user(), make_user()
    url = service.ws_url
    async with AsyncExitStack() as stack:
        b, updates = await subscribed_friend(stack, url, alice, bob)
        a, close_a = await closable(stack, url, alice.token)
        own = await a.subscribe_presence()

        await go(a, ONLINE)
        assert presences_of(await updates.next()) == [(alice.address, ONLINE)]
        assert addresses(await b.online_friends()) == [alice.address]
        assert addresses(await a.online_friends()) == []

        await go(a, AWAY)
        assert presences_of(await updates.next()) == [(alice.address, AWAY)]

        await go(a, ONLINE)
        assert presences_of(await updates.next()) == [(alice.address, ONLINE)]
        await own.expect_nothing(0.1)  # nobody is told about themselves

        await close_a()
        assert presences_of(await updates.next()) == [(alice.address, OFFLINE)]
        assert addresses(await b.online_friends()) == []
        await updates.expect_nothing(QUIET)


async def test_three_users_a_friend_of_a_friend_is_never_seen(service, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    url = service.ws_url
    await befriend(url, alice, bob)
    await befriend(url, carol, alice)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(connect(url, alice.token))
        c = await stack.enter_async_context(connect(url, carol.token))
        await go(a, ONLINE)
        carols = await c.subscribe_presence()
        assert presences_of(await carols.next()) == [(alice.address, ONLINE)]
        alices = await a.subscribe_presence()

        b, close_b = await closable(stack, url, bob.token)
        bobs = await b.subscribe_presence()
        assert presences_of(await bobs.next()) == [(alice.address, ONLINE)]
        await go(b, ONLINE)
        assert presences_of(await alices.next()) == [(bob.address, ONLINE)]
        assert addresses(await c.online_friends()) == [alice.address]
        await go(b, AWAY)
        assert presences_of(await alices.next()) == [(bob.address, AWAY)]
        await close_b()
        assert presences_of(await alices.next()) == [(bob.address, OFFLINE)]

        await carols.expect_nothing(QUIET)
        # Carol's next update holds alice's change only.
        await go(a, AWAY)
        assert presences_of(await carols.next()) == [(alice.address, AWAY)]
        await go(c, ONLINE)
        assert presences_of(await alices.next()) == [(carol.address, ONLINE)]
        assert sorted(addresses(await a.online_friends())) == [carol.address]


@pytest.mark.parametrize("first_closed", ["the one that set the status", "the other one"])
async def test_one_user_two_connections(service, make_user, first_closed):
    alice, bob = make_user(), make_user()
    url = service.ws_url
    async with AsyncExitStack() as stack:
        b, updates = await subscribed_friend(stack, url, alice, bob)
        phone, close_phone = await closable(stack, url, alice.token)
        laptop, close_laptop = await closable(stack, url, alice.token)
        await go(phone, ONLINE)
        assert outcome(await laptop.request_events()) == ("events", "")  # the laptop counts too
        assert presences_of(await updates.next()) == [(alice.address, ONLINE)]

        if first_closed == "the one that set the status":
            await close_phone()
            last = close_laptop
        else:
            await close_laptop()
            last = close_phone
        await updates.expect_nothing(QUIET)
        assert addresses(await b.online_friends()) == [alice.address]

        await last()
        assert presences_of(await updates.next()) == [(alice.address, OFFLINE)]
        assert addresses(await b.online_friends()) == []


async def test_status_set_on_one_connection_applies_to_the_user(service, make_user):
    alice, bob = make_user(), make_user()
    url = service.ws_url
    async with AsyncExitStack() as stack:
        b, updates = await subscribed_friend(stack, url, alice, bob)
        phone, close_phone = await closable(stack, url, alice.token)
        laptop = await stack.enter_async_context(connect(url, alice.token))

        await go(phone, ONLINE)
        assert presences_of(await updates.next()) == [(alice.address, ONLINE)]
        await go(laptop, AWAY)
        assert presences_of(await updates.next()) == [(alice.address, AWAY)]

        # The laptop appears offline: alice is invisible although both are connected.
        await go(laptop, OFFLINE)
        assert presences_of(await updates.next()) == [(alice.address, OFFLINE)]
        assert addresses(await b.online_friends()) == []
        await close_phone()
        await updates.expect_nothing(QUIET)

        await go(laptop, ONLINE)
        assert presences_of(await updates.next()) == [(alice.address, ONLINE)]
        assert addresses(await b.online_friends()) == [alice.address]


async def test_appearing_offline_while_connected(service, make_user):
    alice, bob = make_user(), make_user()
    url = service.ws_url
    async with watched(url, alice, bob, ONLINE) as (a, b, updates):
        await go(a, OFFLINE)
        assert presences_of(await updates.next()) == [(alice.address, OFFLINE)]
        assert addresses(await b.online_friends()) == []

        # A new subscriber gets no snapshot of her; her other connection keeps the choice.
        late = await b.subscribe_presence()
        async with connect(url, alice.token) as again:
            assert outcome(await again.request_events()) == ("events", "")
            await late.expect_nothing(QUIET)
        assert addresses(await b.online_friends()) == []

        await go(a, AWAY)
        assert presences_of(await updates.next()) == [(alice.address, AWAY)]
        assert presences_of(await late.next()) == [(alice.address, AWAY)]
        assert addresses(await b.online_friends()) == [alice.address]


async def test_away_is_delivered_as_away(service, make_user):
    alice, bob = make_user(), make_user()
    url = service.ws_url
    await befriend(url, alice, bob)
    async with connect(url, alice.token) as a, connect(url, bob.token) as b:
        updates = await b.subscribe_presence()
        await go(a, AWAY)
        item = await updates.next()
        assert presences_of(item) == [(alice.address, AWAY)]
        assert item.updates.users[0].status.type == pb.Status.AWAY


async def test_a_non_friend_never_receives_anything(service, make_user):
    alice, dave, erin = make_user(), make_user(), make_user()
    url = service.ws_url
    await befriend(url, dave, erin)
    async with AsyncExitStack() as stack:
        e = await stack.enter_async_context(connect(url, erin.token))
        d = await stack.enter_async_context(connect(url, dave.token))
        await go(e, ONLINE)
        updates = await d.subscribe_presence()
        assert presences_of(await updates.next()) == [(erin.address, ONLINE)]

        a, close_a = await closable(stack, url, alice.token)
        # A pending request does not make them friends.
        assert outcome(await a.update("request", dave.address)) == ("event", "")
        for status in (ONLINE, AWAY, OFFLINE, ONLINE):
            await go(a, status)
        await close_a()
        await updates.expect_nothing(QUIET)
        assert addresses(await d.online_friends()) == [erin.address]


async def test_snapshot_of_online_friends_comes_first(service, make_user):
    bob = make_user()
    online, away, connected, invisible, stranger = (make_user() for _ in range(5))
    url = service.ws_url
    for friend in (online, away, connected, invisible):
        await befriend(url, friend, bob)
    async with AsyncExitStack() as stack:
        clients = {}
        for user in (online, away, connected, invisible, stranger):
            clients[user.address] = await stack.enter_async_context(connect(url, user.token))
        await go(clients[online.address], ONLINE)
        await go(clients[away.address], AWAY)
        assert outcome(await clients[connected.address].request_events()) == ("events", "")
        await go(clients[invisible.address], ONLINE)
        await go(clients[invisible.address], OFFLINE)
        await go(clients[stranger.address], ONLINE)

        b = await stack.enter_async_context(connect(url, bob.token))
        updates = await b.subscribe_presence()
        expected = {(online.address, ONLINE), (away.address, AWAY)}
        seen: list[tuple[str, int]] = []
        while not expected <= set(seen):
            seen += presences_of(await updates.next())
        seen += await drain(updates, QUIET)
        # The visible friends, each once; nothing else is visible, nothing untrue is said
        # (a change published late may repeat that a friend is offline), no stranger shows.
        assert sorted(e for e in seen if e[1] != OFFLINE) == sorted(expected)
        truth = {
            online.address: ONLINE,
            away.address: AWAY,
            connected.address: OFFLINE,
            invisible.address: OFFLINE,
        }
        assert all(truth.get(address) == status for address, status in seen), seen

        # Then the live part.
        await go(clients[connected.address], AWAY)
        assert presences_of(await updates.next()) == [(connected.address, AWAY)]


async def test_a_new_friend_appears_and_a_former_friend_disappears(service, make_user):
    alice, bob = make_user(), make_user()
    url = service.ws_url
    async with connect(url, alice.token) as a, connect(url, bob.token) as b:
        await go(a, ONLINE)
        updates = await b.subscribe_presence()
        await updates.expect_nothing(QUIET)

        assert outcome(await a.update("request", bob.address)) == ("event", "")
        assert outcome(await b.update("accept", alice.address)) == ("event", "")
        assert presences_of(await updates.next()) == [(alice.address, ONLINE)]

        assert outcome(await a.update("delete", bob.address)) == ("event", "")
        assert presences_of(await updates.next()) == [(alice.address, OFFLINE)]
        await go(a, AWAY)
        await updates.expect_nothing(QUIET)
        assert addresses(await b.online_friends()) == []

        # Friends again: her current state comes back, then her changes.
        assert outcome(await b.update("request", alice.address)) == ("event", "")
        assert outcome(await a.update("accept", bob.address)) == ("event", "")
        assert presences_of(await updates.next()) == [(alice.address, AWAY)]
        await go(a, ONLINE)
        assert presences_of(await updates.next()) == [(alice.address, ONLINE)]


async def test_set_presence_status_without_status_is_a_bad_request(service, make_user):
    alice, bob = make_user(), make_user()
    url = service.ws_url
    async with watched(url, alice, bob, ONLINE) as (a, b, updates):
        request = pb.StatusPayload(synapse_token=alice.token)
        kind, message = outcome(await a.call("SetPresenceStatus", request, pb.StatusResponse))
        assert kind == "bad_request_error"
        assert "status" in message

        await updates.expect_nothing(QUIET)
        assert addresses(await b.online_friends()) == [alice.address]


async def test_unknown_status_is_a_bad_request(service, make_user):
    alice, bob = make_user(), make_user()
    async with watched(service.ws_url, alice, bob, AWAY) as (a, _, updates):
        assert outcome(await a.set_status(7))[0] == "bad_request_error"
        await updates.expect_nothing(QUIET)


async def test_subscribers_leaving_as_an_update_goes_out_are_no_error(service, make_user):
    """Friends hang up just as alice's change is sent to them: the frames have no one to
    reach, which is how connections end, not a failure to log."""
    alice = make_user()
    friends = [make_user() for _ in range(10)]
    await befriend(service.ws_url, alice, *friends)
    mark = service.log_mark()
    async with connect(service.ws_url, alice.token) as a:
        for status in (ONLINE, AWAY) * 8:
            async with AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(connect(service.ws_url, friend.token))
                    for friend in friends
                ]
                for client in clients:
                    await client.subscribe_presence()
                await asyncio.gather(go(a, status), *(client.ws.close() for client in clients))
    await asyncio.sleep(1)
    assert "Traceback" not in service.logged_since(mark), service.log_tail(40)
