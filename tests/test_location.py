"""Where my friends are (issue 18 point 1), through a real service: a user shares a realm and
a parcel over both RPC modules and REST; friends, and only friends, see it in their updates
and online answers; a walking user reaches friends at most once per interval; heartbeats
keep a client without a socket online until they stop."""

import asyncio

import pytest

from tests.signing import new_identity
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
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
    outcome,
    place_of,
    presence_at,
    service_with,
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
LOCATION = "/api/v1/presence/location/"
HEARTBEAT = "/api/v1/presence/heartbeat/"


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
    await befriend(url, alice, bob)
    async with connect(url, bob.token) as b:
        updates = await b.subscribe_presence()
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
