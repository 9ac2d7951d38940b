"""Where my friends are (issue 18 point 1), through a real service: a user shares a realm and
a parcel over both RPC modules and REST; friends, and only friends, see it in their updates
and online answers; a walking user reaches friends at most once per interval; heartbeats
keep a client without a socket online until they stop."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.signing import new_identity
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    PRESENCE_HEARTBEAT,
    PRESENCE_LOCATION,
    Place,
    Subscription,
    addresses,
    befriend,
    befriend_signed,
    connect,
    connect_signed,
    connectivity_at,
    connectivity_until,
    http_json,
    new_address,
    outcome,
    place_of,
    presence_at,
    service_with,
    watching,
)

pytestmark = pytest.mark.django_db(transaction=True)

OFFLINE_AFTER = 2
INTERVAL = 1.0
location_service = service_with(
    {
        "PRESENCE_HEARTBEAT_OFFLINE_SECONDS": str(OFFLINE_AFTER),
        "PRESENCE_LOCATION_INTERVAL_MS": str(int(INTERVAL * 1000)),
    }
)

MAIN: Place = ("main", 10, -20)
WORLD: Place = ("name.dcl.eth", 3, 4)
ONLINE_FRIENDS = "/api/v1/friends/online/"
FRIENDS = "/api/v1/friends/"


def as_json(place: Place | None) -> dict | None:
    return None if place is None else dict(zip(("realm", "x", "y"), place, strict=True))


def rest_places(service, token: str, path: str) -> dict[str, tuple[str, dict | None]]:
    status, body = http_json(service, "GET", path, token)
    assert status == 200, body
    return {row["address"]: (row["status"], row["location"]) for row in body["results"]}


def online_places(pages) -> list[tuple[str, Place | None]]:
    return [(p.user.address, place_of(p)) for page in pages for p in page.users.presences]


async def collect(subscription: Subscription, address: str, into: list) -> None:
    """Append (status, place) of every update of `address` to `into`, until cancelled."""
    while True:
        item = await subscription.next(timeout=3600)
        into += [
            (u.status.type, place_of(u)) for u in item.updates.users if u.user.address == address
        ]


# --- Sharing, seeing, clearing -------------------------------------------------------------


async def test_friends_see_a_location_in_updates_and_online_answers_until_cleared_or_offline(
    location_service, make_user
):
    url = location_service.ws_url
    alice, bob = make_user(), make_user()
    async with watching(url, bob, alice) as (b, updates):
        async with connect(url, alice.token) as a:
            await a.set_status(ONLINE)
            await presence_at(updates, alice.address, ONLINE, None)

            shared = await a.set_location(MAIN)
            assert outcome(shared) == ("presence", "")
            assert (shared.presence.status.type, place_of(shared.presence)) == (ONLINE, MAIN)
            await presence_at(updates, alice.address, ONLINE, MAIN)
            pages = await b.online_friends()
            assert addresses(pages) == [alice.address]
            assert online_places(pages) == [(alice.address, MAIN)]
            online = rest_places(location_service, bob.token, ONLINE_FRIENDS)
            assert online == {alice.address: ("online", as_json(MAIN))}
            friends = rest_places(location_service, bob.token, FRIENDS)
            assert friends == {alice.address: ("online", as_json(MAIN))}

            # A world, then AWAY: a status change keeps the location.
            await a.set_location(WORLD)
            await presence_at(updates, alice.address, ONLINE, WORLD)
            await a.set_status(AWAY)
            await presence_at(updates, alice.address, AWAY, WORLD)

            cleared = await a.set_location(None)
            assert place_of(cleared.presence) is None
            await presence_at(updates, alice.address, AWAY, None)
            pages = await b.online_friends()
            assert (addresses(pages), online_places(pages)) == ([alice.address], [])
            assert rest_places(location_service, bob.token, ONLINE_FRIENDS) == {
                alice.address: ("away", None)
            }
            await a.set_location(MAIN)
            await presence_at(updates, alice.address, AWAY, MAIN)
        # Her last connection closed: OFFLINE, and nothing of where she was.
        await presence_at(updates, alice.address, OFFLINE, None)
        assert rest_places(location_service, bob.token, FRIENDS) == {
            alice.address: ("offline", None)
        }
        # Back online, she shares nothing until she says where she is.
        async with connect(url, alice.token) as a:
            await a.set_status(ONLINE)
            await presence_at(updates, alice.address, ONLINE, None)
            assert online_places(await b.online_friends()) == []


async def test_social_service_shares_and_shows_a_location(location_service, make_user):
    url = location_service.ws_url
    me, friend = new_identity(), new_identity()
    await befriend_signed(url, me, friend)
    async with connect_signed(url, friend) as other, connect_signed(url, me) as client:
        updates = await client.connectivity()
        await connectivity_until(updates, friend.address, ONLINE)
        shared = await other.set_location(WORLD)
        assert shared.WhichOneof("response") == "ok"
        assert place_of(shared.ok) == WORLD
        await connectivity_at(updates, friend.address, ONLINE, WORLD)
        # A subscription opened now starts from it.
        later = await client.connectivity()
        await connectivity_at(later, friend.address, ONLINE, WORLD)
        cleared = await other.set_location(None)
        assert not cleared.ok.HasField("location")
        await connectivity_at(updates, friend.address, ONLINE, None)
    # A FriendshipsService friend of the v2 user sees it too: one core, two modules.
    v1_friend = make_user()
    async with connect(url, v1_friend.token) as old:
        assert outcome(await old.update("request", friend.address)) == ("event", "")
        async with connect_signed(url, friend) as other:
            assert (await other.upsert("accept", v1_friend.address)).WhichOneof("response")
            updates = await old.subscribe_presence()
            await other.set_location(MAIN)
            await presence_at(updates, friend.address, ONLINE, MAIN)


# --- Coalescing ------------------------------------------------------------------------------


async def test_a_walking_user_reaches_friends_once_per_interval_and_a_status_change_at_once(
    location_service, make_user
):
    url = location_service.ws_url
    alice, bob = make_user(), make_user()
    await befriend(url, alice, bob)
    steps = 40
    async with connect(url, bob.token) as b, connect(url, alice.token) as a:
        updates = await b.subscribe_presence()
        await a.set_status(ONLINE)
        await presence_at(updates, alice.address, ONLINE, None)
        # A newly followed friend is read once more within a second of the follow
        # (process_channel._read_again): let that pass, it is not a publication.
        await asyncio.sleep(1.2)
        loop = asyncio.get_running_loop()
        received: list[tuple[int, Place | None]] = []
        listening = asyncio.ensure_future(collect(updates, alice.address, received))
        started = loop.time()
        # 20 steps a second, a parcel each.
        for x in range(steps):
            assert outcome(await a.set_location(("main", x, 0))) == ("presence", "")
            await asyncio.sleep(0.05)
        walked = loop.time() - started
        await asyncio.sleep(INTERVAL * 1.5)
        listening.cancel()
        # The last step always arrives; the others at most one per interval.
        assert received[-1] == (ONLINE, ("main", steps - 1, 0)), received
        assert 2 <= len(received) <= walked / INTERVAL + 2, (walked, received)

        # A step, then at once a status: the status is not held back by the step's
        # interval, and carries the step.
        await a.set_location(("main", 99, 99))
        asked = loop.time()
        await a.set_status(AWAY)
        await presence_at(updates, alice.address, AWAY, ("main", 99, 99))
        assert loop.time() - asked < INTERVAL / 2


# --- Heartbeats ------------------------------------------------------------------------------


async def test_rest_heartbeats_keep_a_user_online_and_their_silence_makes_them_offline(
    location_service, make_user
):
    url = location_service.ws_url
    carol, bob = make_user(), make_user()
    async with watching(url, bob, carol) as (_, updates):
        status, taken = http_json(
            location_service, "POST", PRESENCE_HEARTBEAT, carol.token, {"location": as_json(MAIN)}
        )
        assert status == 200, taken
        assert taken["offline_after_seconds"] == OFFLINE_AFTER
        assert (taken["presence"]["status"], taken["presence"]["location"]) == (
            "online",
            as_json(MAIN),
        )
        await presence_at(updates, carol.address, ONLINE, MAIN)
        # Beating for longer than the silence allowed keeps her online, and a beat without a
        # location keeps the one she shares.
        loop = asyncio.get_running_loop()
        beating_until = loop.time() + OFFLINE_AFTER * 1.5
        while loop.time() < beating_until:
            status, taken = http_json(location_service, "POST", PRESENCE_HEARTBEAT, carol.token, {})
            assert (status, taken["presence"]["location"]) == (200, as_json(MAIN))
            await updates.expect_nothing(within=0.5)
        # Silence: OFFLINE once the time is over, applied by the service itself.
        silent_since = loop.time()
        await presence_at(updates, carol.address, OFFLINE, None, timeout=OFFLINE_AFTER + 5)
        assert loop.time() - silent_since >= OFFLINE_AFTER - 0.5
        assert rest_places(location_service, bob.token, FRIENDS) == {
            carol.address: ("offline", None)
        }


async def test_a_heartbeat_and_a_socket_keep_a_user_online_until_both_are_gone(
    location_service, make_user
):
    url = location_service.ws_url
    alice, bob = make_user(), make_user()
    async with watching(url, bob, alice) as (_, updates):
        async with connect(url, alice.token) as socket:
            await socket.set_status(AWAY)
            await presence_at(updates, alice.address, AWAY, None)
            # A heartbeat over a connection that closes at once: the status she chose stays.
            async with connect(url, alice.token) as once:
                taken = await once.heartbeat(WORLD)
                assert outcome(taken) == ("accepted", "")
                assert taken.accepted.offline_after_seconds == OFFLINE_AFTER
                assert (taken.accepted.presence.status.type, place_of(taken.accepted.presence)) == (
                    AWAY,
                    WORLD,
                )
            await presence_at(updates, alice.address, AWAY, WORLD)
            # The heartbeat's time runs out; her socket holds her, where she was.
            await updates.expect_nothing(within=OFFLINE_AFTER + 1.5)
            async with connect(url, alice.token) as once:
                await once.heartbeat()
        # The socket closed; the heartbeat holds her until its time is over.
        await updates.expect_nothing(within=OFFLINE_AFTER / 2)
        await presence_at(updates, alice.address, OFFLINE, None, timeout=OFFLINE_AFTER + 5)


async def test_social_service_heartbeat(location_service):
    me, friend = new_identity(), new_identity()
    await befriend_signed(location_service.ws_url, me, friend)
    async with connect_signed(location_service.ws_url, me) as client:
        updates = await client.connectivity()
        async with connect_signed(location_service.ws_url, friend) as other:
            taken = await other.heartbeat(MAIN)
            assert taken.WhichOneof("response") == "ok"
            assert (taken.ok.status, place_of(taken.ok)) == (ONLINE, MAIN)
            assert taken.ok.offline_after_seconds == OFFLINE_AFTER
            await connectivity_at(updates, friend.address, ONLINE, MAIN)
        await connectivity_at(updates, friend.address, OFFLINE, None, timeout=OFFLINE_AFTER + 5)


# --- Privacy ---------------------------------------------------------------------------------


async def test_a_stranger_and_a_blocked_user_never_see_where_a_user_is(location_service, make_user):
    url = location_service.ws_url
    alice, friend, stranger, blocked = make_user(), make_user(), make_user(), make_user()
    await befriend(url, alice, friend, blocked)
    async with (
        connect(url, friend.token) as f,
        connect(url, stranger.token) as s,
        connect(url, blocked.token) as x,
        connect(url, alice.token) as a,
    ):
        friend_updates = await f.subscribe_presence()
        stranger_updates = await s.subscribe_presence()
        blocked_updates = await x.subscribe_presence()
        await a.set_status(ONLINE)
        await a.set_location(MAIN)
        await presence_at(blocked_updates, alice.address, ONLINE, MAIN)
        assert outcome(await a.update("block", blocked.address)) == ("event", "")
        # The block reads as OFFLINE once, with nothing of where she was.
        await presence_at(blocked_updates, alice.address, OFFLINE, None)

        await a.set_location(WORLD)
        async with connect(url, alice.token) as once:
            await once.heartbeat(("main", 1, 1))
        # Her friend sees each move: they were published.
        await presence_at(friend_updates, alice.address, ONLINE, ("main", 1, 1))
        for updates in (stranger_updates, blocked_updates):
            await updates.expect_nothing(within=INTERVAL)
        for watcher, client in ((stranger, s), (blocked, x)):
            pages = await client.online_friends()
            assert (addresses(pages), online_places(pages)) == ([], [])
            for path in (ONLINE_FRIENDS, FRIENDS):
                assert rest_places(location_service, watcher.token, path) == {}


# --- Bad input -------------------------------------------------------------------------------

BAD_PLACES = [
    (("", 1, 1), "realm is required"),
    (("main street", 1, 1), "letters, digits"),
    (("-main", 1, 1), "starting with a letter"),
    (("m" * 129, 1, 1), "at most 128"),
    (("main", 1001, 0), "between -1000 and 1000, not 1001"),
    (("main", 0, -(2**31)), "between -1000 and 1000"),
]


@pytest.mark.parametrize(("place", "says"), BAD_PLACES)
async def test_a_bad_location_is_refused_with_a_clear_error_everywhere(
    location_service, make_user, place, says
):
    url = location_service.ws_url
    alice = make_user()
    async with connect(url, alice.token) as a:
        await a.set_status(ONLINE)
        kind, message = outcome(await a.set_location(place))
        assert kind == "bad_request_error" and says in message, message
        kind, message = outcome(await a.heartbeat(place))
        assert kind == "bad_request_error" and says in message, message
        for method, path in (("PUT", PRESENCE_LOCATION), ("POST", PRESENCE_HEARTBEAT)):
            status, body = http_json(
                location_service, method, path, alice.token, {"location": as_json(place)}
            )
            assert status == 400, body
        # The connection goes on, and nothing was shared.
        assert place_of((await a.set_location(None)).presence) is None
    async with connect_signed(url, new_identity()) as client:
        refused = await client.set_location(place)
        assert refused.WhichOneof("response") == "invalid_request"
        assert says in refused.invalid_request.message
        assert (await client.set_location(MAIN)).WhichOneof("response") == "ok"


async def test_rest_location_needs_a_connection_and_a_well_formed_body(location_service, make_user):
    alice = make_user()
    status, body = http_json(
        location_service, "PUT", PRESENCE_LOCATION, alice.token, {"location": as_json(MAIN)}
    )
    assert (status, body["detail"]) == (
        409,
        "connect or send a heartbeat before sharing a location",
    )
    for wrong in ({"location": "main"}, {"location": {"realm": "main", "x": "far"}}, [1]):
        status, body = http_json(location_service, "PUT", PRESENCE_LOCATION, alice.token, wrong)
        assert status == 400, (wrong, body)
    status, _ = http_json(location_service, "PUT", PRESENCE_LOCATION, None, {"location": None})
    assert status == 401
    async with connect(location_service.ws_url, alice.token) as a:
        await a.set_status(ONLINE)
        status, body = http_json(
            location_service, "PUT", PRESENCE_LOCATION, alice.token, {"location": as_json(WORLD)}
        )
        assert (status, body["location"]) == (200, as_json(WORLD))
        status, body = http_json(location_service, "DELETE", PRESENCE_LOCATION, alice.token)
        assert (status, body["status"], body["location"]) == (200, "online", None)


# --- Admin -----------------------------------------------------------------------------------


def admin_pages(address: str) -> tuple[str, dict]:
    """A staff member's view of `address`: their page in the users' admin, and the live
    presence page's data for them."""
    client = Client()
    client.force_login(User.objects.create_superuser(new_address()))
    page = client.get(reverse("admin:accounts_user_change", args=[address]))
    data = client.get(reverse("admin:presence_live_data"), {"address": address})
    return page.content.decode(), data.json()


async def test_the_admin_shows_where_a_user_is(location_service, make_user):
    alice = make_user()
    async with connect(location_service.ws_url, alice.token) as a:
        await a.set_status(ONLINE)
        await a.set_location(MAIN)
        page, data = await sync_to_async(admin_pages)(alice.address)
        assert "main (10, -20)" in page
        assert data["user"]["location"] == as_json(MAIN)
        await a.set_location(None)
        page, data = await sync_to_async(admin_pages)(alice.address)
        assert "not shared" in page
        assert data["user"]["location"] is None
