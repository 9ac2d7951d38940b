"""Friendships through the WebSocket: UpdateFriendshipEvent's rules, GetRequestEvents,
GetFriends, GetMutualFriends (with paging) and SubscribeFriendshipEventsUpdates."""

from dataclasses import dataclass

import pytest

from presence.protocol import friendships_service_pb2 as pb
from tests.support import (
    FriendsClient,
    addresses,
    armed,
    befriend,
    connect,
    event_summary,
    events_of,
    now_ms,
    outcome,
    pending,
    service_with,
)

pytestmark = pytest.mark.django_db(transaction=True)

STATES = ["none", "requested", "accepted", "rejected", "cancelled", "deleted"]
ACTIONS = ["request", "accept", "reject", "cancel", "delete"]
# A timestamp in milliseconds taken on this machine is within this much of the server's.
CLOCK_SLACK_MS = 10_000


@dataclass
class Party:
    address: str
    client: FriendsClient


async def act(actor: Party, action: str, other: Party, message: str | None = None) -> None:
    response = await actor.client.update(action, other.address, message)
    assert outcome(response) == ("event", ""), response


async def reach(requester: Party, receiver: Party, state: str) -> None:
    """Bring the pair to `state`; every request in its history is the requester's."""
    if state == "none":
        return
    await act(requester, "request", receiver)
    follow_up = {
        "requested": [],
        "accepted": [(receiver, "accept")],
        "rejected": [(receiver, "reject")],
        "cancelled": [(requester, "cancel")],
        "deleted": [(receiver, "accept"), (requester, "delete")],
    }[state]
    for actor, action in follow_up:
        await act(actor, action, requester if actor is receiver else receiver)


def refusal(state: str, actor_side: str, action: str) -> str | None:
    """What the refusal of `action` must say, or None when the rules allow it."""
    if action == "request":
        return {
            "requested": "already pending",
            "accepted": "already friends",
        }.get(state)
    if action == "delete":
        return None if state == "accepted" else "only an accepted friendship can be deleted"
    if state != "requested":
        return f"{action} is only possible while a request is pending"
    if action == "cancel":
        return None if actor_side == "requester" else "only the user who sent the request"
    return (
        None if actor_side == "receiver" else f"only the user who received the request can {action}"
    )


async def observe(one: Party, other: Party) -> dict[str, object]:
    """Everything both users can read about their friendship."""
    return {
        "one_pending": await pending(one.client),
        "other_pending": await pending(other.client),
        "one_friends": addresses(await one.client.friends()),
        "other_friends": addresses(await other.client.friends()),
    }


def state_after(action: str, actor: Party, other: Party) -> dict[str, object]:
    """What observe(actor, other) must read after `actor` did `action` to `other`."""
    if action == "request":
        return {
            "one_pending": ([(other.address, None)], []),
            "other_pending": ([], [(actor.address, None)]),
            "one_friends": [],
            "other_friends": [],
        }
    friends = action == "accept"
    return {
        "one_pending": ([], []),
        "other_pending": ([], []),
        "one_friends": [other.address] if friends else [],
        "other_friends": [actor.address] if friends else [],
    }


# --- UpdateFriendshipEvent: the state rules -------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("actor_side", ["requester", "receiver"])
@pytest.mark.parametrize("state", STATES)
async def test_friendship_rule(service, make_user, state, actor_side, action):
    requester_user, receiver_user = make_user(), make_user()
    async with (
        connect(service.ws_url, requester_user.token) as r,
        connect(service.ws_url, receiver_user.token) as v,
    ):
        requester = Party(requester_user.address, r)
        receiver = Party(receiver_user.address, v)
        await reach(requester, receiver, state)
        actor, other = (requester, receiver) if actor_side == "requester" else (receiver, requester)
        before = await observe(actor, other)

        response = await actor.client.update(action, other.address)

        rule = refusal(state, actor_side, action)
        if rule is None:
            assert outcome(response) == ("event", ""), response
            assert event_summary(response.event) == (action, other.address, None)
            assert await observe(actor, other) == state_after(action, actor, other)
        else:
            kind, message = outcome(response)
            assert kind == "bad_request_error", response
            assert rule in message
            assert await observe(actor, other) == before


async def test_request_response_carries_the_time_and_the_message(service, make_user):
    alice, bob = make_user(), make_user()
    async with connect(service.ws_url, alice.token) as a:
        response = await a.update("request", bob.address, message="let's be friends")
    assert outcome(response) == ("event", "")
    assert event_summary(response.event) == ("request", bob.address, "let's be friends")
    assert abs(response.event.request.created_at - now_ms()) < CLOCK_SLACK_MS


@pytest.mark.parametrize("second", ["second", None])
@pytest.mark.parametrize("ended_by", ["cancelled", "rejected", "deleted"])
async def test_a_new_request_replaces_the_old_message(service, make_user, ended_by, second):
    alice, bob = make_user(), make_user()
    async with connect(service.ws_url, alice.token) as a, connect(service.ws_url, bob.token) as b:
        one, other = Party(alice.address, a), Party(bob.address, b)
        await act(one, "request", other, "first")
        if ended_by == "cancelled":
            await act(one, "cancel", other)
        elif ended_by == "rejected":
            await act(other, "reject", one)
        else:
            await act(other, "accept", one)
            await act(other, "delete", one)
        assert await pending(b) == ([], [])

        await act(one, "request", other, second)

        assert await pending(b) == ([], [(alice.address, second)])
        assert await pending(a) == ([(bob.address, second)], [])


@pytest.mark.parametrize("action", ACTIONS)
async def test_never_with_oneself(service, make_user, action):
    alice = make_user()
    async with connect(service.ws_url, alice.token) as a:
        for address in (alice.address, alice.address.upper().replace("0X", "0x")):
            kind, message = outcome(await a.update(action, address))
            assert kind == "bad_request_error"
            assert "themselves" in message
        assert await pending(a) == ([], [])
        assert addresses(await a.friends()) == []


@pytest.mark.parametrize(
    "address", ["", "0x123", "not an address", "0x" + "g" * 40, "0x" + "a" * 41, "a" * 42]
)
@pytest.mark.parametrize("action", ACTIONS)
async def test_bad_address_is_a_bad_request(service, make_user, action, address):
    alice = make_user()
    async with connect(service.ws_url, alice.token) as a:
        kind, message = outcome(await a.update(action, address))
        assert kind == "bad_request_error"
        assert "Ethereum address" in message
        assert await pending(a) == ([], [])


async def test_event_without_an_action_is_a_bad_request(service, make_user):
    alice = make_user()
    async with connect(service.ws_url, alice.token) as a:
        request = pb.UpdateFriendshipPayload(
            event=pb.FriendshipEventPayload(), auth_token=pb.Payload(synapse_token=alice.token)
        )
        response = await a.call("UpdateFriendshipEvent", request, pb.UpdateFriendshipResponse)
    assert outcome(response)[0] == "bad_request_error"


async def test_addresses_compare_case_insensitively(service, make_user):
    alice, bob = make_user(), make_user()
    shouting = "0x" + bob.address[2:].upper()
    async with connect(service.ws_url, alice.token) as a, connect(service.ws_url, bob.token) as b:
        response = await a.update("request", shouting)
        assert event_summary(response.event) == ("request", bob.address, None)
        assert await pending(b) == ([], [(alice.address, None)])
        response = await b.update("accept", "0x" + alice.address[2:].upper())
        assert event_summary(response.event) == ("accept", alice.address, None)
        assert addresses(await a.friends()) == [bob.address]


async def test_request_message_length_is_limited(service, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    async with connect(service.ws_url, alice.token) as a:
        kind, message = outcome(await a.update("request", bob.address, message="x" * 1001))
        assert kind == "bad_request_error"
        assert "1000" in message
        response = await a.update("request", carol.address, message="y" * 1000)
        assert event_summary(response.event) == ("request", carol.address, "y" * 1000)
        assert await pending(a) == ([(carol.address, "y" * 1000)], [])


# --- GetRequestEvents -----------------------------------------------------------------


async def test_request_events_lists_pending_requests_both_ways(service, make_user):
    alice, bob, carol, dave = make_user(), make_user(), make_user(), make_user()
    async with (
        connect(service.ws_url, alice.token) as a,
        connect(service.ws_url, bob.token) as b,
        connect(service.ws_url, carol.token) as c,
        connect(service.ws_url, dave.token) as d,
    ):
        empty = await a.request_events()
        assert outcome(empty) == ("events", "")
        assert (empty.events.outgoing.total, empty.events.incoming.total) == (0, 0)

        started = now_ms()
        await act(Party(alice.address, a), "request", Party(bob.address, b), "hi bob")
        await act(Party(carol.address, c), "request", Party(alice.address, a))
        await act(Party(dave.address, d), "request", Party(alice.address, a), "hi alice")

        events = (await a.request_events()).events
        assert events.outgoing.total == 1
        assert events.incoming.total == 2
        assert [(r.user.address, r.message) for r in events.outgoing.items] == [
            (bob.address, "hi bob")
        ]
        incoming = {r.user.address: r for r in events.incoming.items}
        assert set(incoming) == {carol.address, dave.address}
        assert not incoming[carol.address].HasField("message")
        assert incoming[dave.address].message == "hi alice"
        for item in [*events.outgoing.items, *events.incoming.items]:
            assert started - CLOCK_SLACK_MS < item.created_at < now_ms() + CLOCK_SLACK_MS

        assert await pending(b) == ([], [(alice.address, "hi bob")])

        # Answered requests are no longer pending, for either side.
        await act(Party(bob.address, b), "accept", Party(alice.address, a))
        await act(Party(alice.address, a), "reject", Party(carol.address, c))
        events = (await a.request_events()).events
        assert events.outgoing.total == 0
        assert events.incoming.total == 1
        assert [r.user.address for r in events.incoming.items] == [dave.address]
        assert await pending(b) == ([], [])
        assert await pending(c) == ([], [])


# --- GetFriends and GetMutualFriends --------------------------------------------------


async def test_friends_and_mutual_friends(service, make_user):
    alice, bob, carol, dave, erin = (make_user() for _ in range(5))
    url = service.ws_url
    await befriend(url, alice, bob, carol)
    await befriend(url, dave, alice)
    await befriend(url, bob, carol, dave)
    await befriend(url, erin, bob)
    async with connect(url, alice.token) as a, connect(url, erin.token) as e:
        assert sorted(addresses(await a.friends())) == sorted(
            [bob.address, carol.address, dave.address]
        )
        assert sorted(addresses(await a.mutual_friends(bob.address))) == sorted(
            [carol.address, dave.address]
        )
        assert addresses(await a.mutual_friends(erin.address)) == [bob.address]
        assert addresses(await e.mutual_friends(carol.address)) == [bob.address]
        assert addresses(await e.friends()) == [bob.address]


async def test_user_without_friends_gets_an_empty_stream(service, make_user):
    alice, bob = make_user(), make_user()
    async with connect(service.ws_url, alice.token) as a:
        await act(Party(alice.address, a), "request", Party(bob.address, None))
        assert await a.friends() == []
        assert await a.mutual_friends(bob.address) == []


async def test_mutual_friends_with_a_bad_address_is_a_bad_request(service, make_user):
    alice = make_user()
    async with connect(service.ws_url, alice.token) as a:
        pages = await a.mutual_friends("0xnot-an-address")
    assert [outcome(page)[0] for page in pages] == ["bad_request_error"]
    assert "Ethereum address" in pages[0].bad_request_error.message


paged_service = service_with({"PRESENCE_PAGE_SIZE": "2"})


async def test_friends_come_in_pages(paged_service, make_user):
    alice = make_user()
    friends = [make_user() for _ in range(5)]
    await befriend(paged_service.ws_url, alice, *friends)
    async with connect(paged_service.ws_url, alice.token) as a:
        pages = await a.friends()
    assert [len(page.users.users) for page in pages] == [2, 2, 1]
    assert sorted(addresses(pages)) == sorted(f.address for f in friends)


async def test_mutual_friends_come_in_pages(paged_service, make_user):
    alice, bob, only_alices, only_bobs = make_user(), make_user(), make_user(), make_user()
    shared = [make_user() for _ in range(5)]
    url = paged_service.ws_url
    for friend in shared:
        await befriend(url, alice, friend)
        await befriend(url, friend, bob)
    await befriend(url, alice, only_alices)
    await befriend(url, bob, only_bobs)
    async with connect(url, alice.token) as a:
        pages = await a.mutual_friends(bob.address)
        assert [len(page.users.users) for page in pages] == [2, 2, 1]
        assert sorted(addresses(pages)) == sorted(f.address for f in shared)
        assert len(await a.friends()) == 3  # 6 friends: pages of 2


# --- SubscribeFriendshipEventsUpdates --------------------------------------------------


async def test_other_party_receives_every_event_live_and_the_actor_does_not(service, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    url = service.ws_url
    async with (
        connect(url, alice.token) as a,
        connect(url, bob.token) as b,
        connect(url, carol.token) as c,
    ):
        one, other = Party(alice.address, a), Party(bob.address, b)
        alices = await armed(a, await a.subscribe_events())
        bobs = await armed(b, await b.subscribe_events())
        bystander = await armed(c, await c.subscribe_events())

        started = now_ms()
        await act(one, "request", other, "hello bob")
        item = await bobs.next()
        assert events_of(item) == [("request", alice.address, "hello bob")]
        created_at = item.events.responses[0].request.created_at
        assert started - CLOCK_SLACK_MS < created_at < now_ms() + CLOCK_SLACK_MS

        await act(one, "cancel", other)
        assert events_of(await bobs.next()) == [("cancel", alice.address, None)]

        await act(other, "request", one)
        assert events_of(await alices.next()) == [("request", bob.address, None)]

        await act(one, "reject", other)
        assert events_of(await bobs.next()) == [("reject", alice.address, None)]

        await act(one, "request", other)
        assert events_of(await bobs.next()) == [("request", alice.address, None)]

        await act(other, "accept", one)
        assert events_of(await alices.next()) == [("accept", bob.address, None)]

        await act(other, "delete", one)
        assert events_of(await alices.next()) == [("delete", bob.address, None)]

        await alices.expect_nothing(0.3)
        await bobs.expect_nothing(0.3)
        await bystander.expect_nothing(0.1)


async def test_every_connection_of_the_other_party_receives_the_event(service, make_user):
    alice, bob = make_user(), make_user()
    url = service.ws_url
    async with (
        connect(url, alice.token) as a,
        connect(url, bob.token) as phone,
        connect(url, bob.token) as laptop,
    ):
        on_phone = await armed(phone, await phone.subscribe_events())
        on_laptop = await armed(laptop, await laptop.subscribe_events())
        await act(Party(alice.address, a), "request", Party(bob.address, phone), "hey")
        assert events_of(await on_phone.next()) == [("request", alice.address, "hey")]
        assert events_of(await on_laptop.next()) == [("request", alice.address, "hey")]


async def test_refused_actions_send_no_event(service, make_user):
    alice, bob = make_user(), make_user()
    url = service.ws_url
    async with connect(url, alice.token) as a, connect(url, bob.token) as b:
        bobs = await armed(b, await b.subscribe_events())
        for action in ("accept", "reject", "cancel", "delete"):
            assert outcome(await a.update(action, bob.address))[0] == "bad_request_error"
        await bobs.expect_nothing(0.3)
