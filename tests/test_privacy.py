"""Who may see me (issue 18, point 2): per-user sharing through REST and RPC, and a friend
who may not see a user getting exactly what they would get were the user offline, on every
surface, live, across processes."""

import asyncio
import json

import pytest
from django.test import Client

from accounts.models import User as UserModel
from accounts.services import issue_token
from friendships.services import set_sharing
from friendships.sharing import Sharing
from presence.protocol import friendships_service_pb2 as pb
from presence.store import keys
from tests.signing import new_identity
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    PRESENCE_HEARTBEAT,
    PRESENCE_SHARING,
    PRESENCE_STATUS,
    User,
    addresses,
    armed,
    befriend_in_store,
    connect,
    connect_signed,
    eventually,
    http_get,
    http_json,
    http_raw,
    new_address,
    now_ms,
    outcome,
    place_of,
    presence_at,
    running_services,
)

pytestmark = pytest.mark.django_db(transaction=True)


def put_sharing(service, user: User, **wanted) -> tuple[int, dict]:
    status, _, body = http_raw(
        "PUT",
        service.http_url + PRESENCE_SHARING,
        user.token,
        headers={"Content-Type": "application/json"},
        timeout=20,
        data=json.dumps(wanted).encode(),
    )
    return status, json.loads(body)


def hide_from(service, owner: User, *hidden: User) -> None:
    status, body = put_sharing(
        service,
        owner,
        presence="except",
        presence_list=[h.address for h in hidden],
        location="all",
    )
    assert status == 200, body


def share_with_all(service, owner: User) -> None:
    assert put_sharing(service, owner, presence="all", location="all")[0] == 200


def test_sharing_defaults_to_all_friends_and_lists_hold_friends_only(service, make_user):
    owner, friend, stranger = make_user(), make_user(), make_user()
    befriend_in_store(owner.address, friend.address)
    assert http_get(service, PRESENCE_SHARING, owner.token) == (
        200,
        {"presence": "all", "presence_list": [], "location": "all", "location_list": []},
    )

    status, body = put_sharing(
        service, owner, presence="only", presence_list=[stranger.address], location="all"
    )
    assert status == 400
    assert body["detail"] == (
        f"the presence list holds friends only; not a friend of yours: {stranger.address}"
    )
    assert put_sharing(service, owner, presence="sometimes", location="all")[0] == 400
    assert http_get(service, PRESENCE_SHARING, owner.token)[1]["presence"] == "all"

    status, body = put_sharing(
        service,
        owner,
        presence="only",
        presence_list=[friend.address.upper().replace("0X", "0x")],
        location="nobody",
    )
    assert (status, body) == (
        200,
        {
            "presence": "only",
            "presence_list": [friend.address],
            "location": "nobody",
            "location_list": [],
        },
    )
    assert http_get(service, PRESENCE_SHARING, owner.token) == (200, body)


async def test_sharing_through_rpc(service, make_user):
    owner, friend, stranger = make_user(), make_user(), make_user()
    befriend_in_store(owner.address, friend.address)
    async with connect(service.ws_url, owner.token) as client:
        got = await client.call("GetPresenceSharing", client._payload(), pb.PresenceSharingResponse)
        assert got.sharing == pb.PresenceSharing()

        wanted = pb.PresenceSharing(
            presence=pb.PresenceSharing.PRESENCE_EXCEPT_LISTED,
            presence_list=[pb.User(address=friend.address)],
            location=pb.PresenceSharing.LOCATION_ONLY_LISTED,
            location_list=[pb.User(address=friend.address)],
        )
        request = pb.SetPresenceSharingPayload(synapse_token=owner.token, sharing=wanted)
        answer = await client.call("SetPresenceSharing", request, pb.PresenceSharingResponse)
        assert answer.sharing == wanted
        got = await client.call("GetPresenceSharing", client._payload(), pb.PresenceSharingResponse)
        assert got.sharing == wanted

        wanted.presence_list.append(pb.User(address=stranger.address))
        request = pb.SetPresenceSharingPayload(synapse_token=owner.token, sharing=wanted)
        refused = await client.call("SetPresenceSharing", request, pb.PresenceSharingResponse)
        assert refused.WhichOneof("response") == "bad_request_error"
        assert stranger.address in refused.bad_request_error.message
        wanted.presence = 7
        request = pb.SetPresenceSharingPayload(synapse_token=owner.token, sharing=wanted)
        refused = await client.call("SetPresenceSharing", request, pb.PresenceSharingResponse)
        assert refused.bad_request_error.message == "unknown presence audience 7"


async def _items(subscription, within: float = 0.8) -> list[bytes]:
    """Every item `subscription` receives in `within` seconds, encoded again."""
    items = []
    while True:
        try:
            items.append((await subscription.next(within)).SerializeToString())
        except TimeoutError:
            return items


async def _everything_seen_by(service, viewer: User, identity) -> dict[str, object]:
    """What `viewer` reads of their friends on every surface: RPC online friends and both
    modules' subscription snapshots, REST friends (whole and paged) and online friends."""
    seen: dict[str, object] = {}
    async with connect(service.ws_url, viewer.token) as client:
        pages = await client.online_friends()
        seen["rpc online friends"] = [page.SerializeToString() for page in pages]
        seen["rpc snapshot"] = await _items(await client.subscribe_presence())
    async with connect_signed(service.ws_url, identity) as social:
        seen["v2 snapshot"] = await _items(await social.connectivity())
    for path in (
        "/api/v1/friends/online/",
        "/api/v1/friends/",
        "/api/v1/friends/?limit=1&offset=1",
        "/api/v1/friends/online/?limit=1&offset=0",
    ):
        status, _, body = http_raw("GET", service.http_url + path, viewer.token)
        seen[path] = (status, body)
    return seen


async def test_a_hidden_friend_reads_exactly_as_an_offline_one_on_every_surface(service, make_user):
    """The viewer's every read, while the owner is online but hidden from them, is byte for
    byte what it was while the owner was truly offline; another friend sees the owner."""
    identity = new_identity()
    viewer = User(identity.address, issue_token(identity.address))
    owner, anchor, other = make_user(), make_user(), make_user()
    for friend in (owner, anchor):
        befriend_in_store(viewer.address, friend.address)
    befriend_in_store(other.address, owner.address)
    async with connect(service.ws_url, anchor.token) as anchor_client:
        await anchor_client.set_status(ONLINE)
        # The owner was online once: a last_seen that a leak would move.
        async with connect(service.ws_url, owner.token) as owner_client:
            await owner_client.set_status(ONLINE)
        offline = await _everything_seen_by(service, viewer, identity)

        hide_from(service, owner, viewer)
        # Hidden, the owner shows everything a friend can see: a device kind, a status
        # message and a location.
        async with connect(f"{service.ws_url}?device=mobile", owner.token) as owner_client:
            await owner_client.set_status(ONLINE)
            status, _ = http_json(
                service, "PUT", PRESENCE_STATUS, owner.token, {"message": "hidden"}
            )
            assert status == 200
            assert outcome(await owner_client.set_location(("main", 3, 4))) == ("presence", "")
            async with connect(service.ws_url, other.token) as other_client:
                assert addresses(await other_client.online_friends()) == [owner.address]
            (row,) = http_get(service, "/api/v1/friends/online/", other.token)[1]["results"]
            shown = (row["message"], row["devices"], row["location"])
            assert shown == ("hidden", ["mobile"], {"realm": "main", "x": 3, "y": 4})
            await asyncio.sleep(0.3)
            hidden = await _everything_seen_by(service, viewer, identity)
            await owner_client.set_status(AWAY)
            hidden_away = await _everything_seen_by(service, viewer, identity)

    assert hidden == offline
    assert hidden_away == offline
    # The surfaces did show something: the anchor, online, and both friends in the lists.
    assert len(offline["rpc snapshot"]) >= 1 and len(offline["v2 snapshot"]) == 1
    assert json.loads(offline["/api/v1/friends/"][1])["count"] == 2


async def test_hiding_and_showing_take_effect_live_across_processes(tmp_path, make_user):
    """The viewer, on one process, is told OFFLINE when the owner, on another, hides from
    them, hears nothing while hidden, and gets the real presence once shown again; a friend
    still allowed hears every real change and nothing of the sharing changes."""
    viewer, owner, other = make_user(), make_user(), make_user()
    befriend_in_store(viewer.address, owner.address)
    befriend_in_store(other.address, owner.address)
    with running_services(tmp_path, 2) as (first, second):
        async with (
            connect(first.ws_url, viewer.token) as viewer_client,
            connect(first.ws_url, other.token) as other_client,
            connect(second.ws_url, owner.token) as owner_client,
        ):
            viewer_view = await viewer_client.subscribe_presence()
            other_view = await other_client.subscribe_presence()
            await owner_client.set_status(ONLINE)
            await viewer_view.presence_until(owner.address, ONLINE)
            await other_view.presence_until(owner.address, ONLINE)
            before = http_get(second, "/api/v1/friends/", viewer.token)[1]["results"]
            online_since = before[0]["last_seen"]

            hide_from(second, owner, viewer)
            item = await viewer_view.next()
            (update,) = item.updates.users
            assert (update.user.address, update.status.type) == (owner.address, OFFLINE)
            assert update.last_seen > online_since
            frozen = update.last_seen
            await other_view.expect_nothing(0.5)

            await owner_client.set_status(AWAY)
            await other_view.presence_until(owner.address, AWAY)
            await owner_client.set_status(ONLINE)
            await other_view.presence_until(owner.address, ONLINE)
            await viewer_view.expect_nothing(0.5)
            for service in (first, second):
                (shown,) = http_get(service, "/api/v1/friends/", viewer.token)[1]["results"]
                assert (shown["status"], shown["last_seen"]) == ("offline", frozen)

            share_with_all(first, owner)
            await viewer_view.presence_until(owner.address, ONLINE)
            await other_view.expect_nothing(0.5)
            (shown,) = http_get(first, "/api/v1/friends/", viewer.token)[1]["results"]
            assert shown["status"] == "online"


async def test_close_friends_only_and_a_last_seen_that_does_not_move(service, make_user):
    owner, close, other = make_user(), make_user(), make_user()
    for friend in (close, other):
        befriend_in_store(owner.address, friend.address)
    status, _ = put_sharing(
        service, owner, presence="only", presence_list=[close.address], location="all"
    )
    assert status == 200
    frozen = http_get(service, "/api/v1/friends/", other.token)[1]["results"][0]
    for _ in range(2):
        async with connect(service.ws_url, owner.token) as owner_client:
            await owner_client.set_status(ONLINE)
            async with connect(service.ws_url, close.token) as close_client:
                assert addresses(await close_client.online_friends()) == [owner.address]
            async with connect(service.ws_url, other.token) as other_client:
                assert addresses(await other_client.online_friends()) == []
        await asyncio.sleep(0.05)
    assert http_get(service, "/api/v1/friends/", other.token)[1]["results"][0] == frozen
    shown = http_get(service, "/api/v1/friends/", close.token)[1]["results"][0]
    assert shown["last_seen"] != frozen["last_seen"]


async def test_a_list_entry_applies_again_when_the_friendship_comes_back(service, make_user):
    owner, viewer = make_user(), make_user()
    befriend_in_store(owner.address, viewer.address)
    hide_from(service, owner, viewer)
    async with connect(service.ws_url, owner.token) as owner_client:
        await owner_client.set_status(ONLINE)
        assert outcome(await owner_client.update("delete", viewer.address)) == ("event", "")
        assert http_get(service, PRESENCE_SHARING, owner.token)[1]["presence_list"] == []
        befriend_in_store(viewer.address, owner.address)
        assert http_get(service, PRESENCE_SHARING, owner.token)[1]["presence_list"] == [
            viewer.address
        ]
        async with connect(service.ws_url, viewer.token) as viewer_client:
            assert addresses(await viewer_client.online_friends()) == []


async def test_the_mirror_comes_back_after_redis_loses_it(service, make_user, redis_client):
    owner, viewer = make_user(), make_user()
    befriend_in_store(owner.address, viewer.address)
    hide_from(service, owner, viewer)
    redis_client.delete(keys.SHARING, keys.SHARING_LOADED)

    async def reloaded() -> bool:
        return redis_client.hget(keys.SHARING, owner.address) is not None

    await eventually(reloaded, timeout=20)
    async with connect(service.ws_url, owner.token) as owner_client:
        await owner_client.set_status(ONLINE)
        async with connect(service.ws_url, viewer.token) as viewer_client:
            assert addresses(await viewer_client.online_friends()) == []


async def test_a_hidden_friend_hears_nothing_through_social_service_v2(service, make_user):
    identity = new_identity()
    viewer = User(identity.address, issue_token(identity.address))
    owner, anchor = make_user(), make_user()
    for friend in (owner, anchor):
        befriend_in_store(viewer.address, friend.address)
    hide_from(service, owner, viewer)
    seen: list[tuple[str, int]] = []

    async def until(address: str, status: int) -> None:
        while seen[-1:] != [(address, status)]:
            update = await updates.next()
            seen.append((update.friend.address, update.status))

    async with connect_signed(service.ws_url, identity) as social:
        updates = await social.connectivity()
        async with connect(service.ws_url, owner.token) as owner_client:
            await owner_client.set_status(ONLINE)
            async with connect(service.ws_url, anchor.token) as anchor_client:
                await anchor_client.set_status(ONLINE)
                await until(anchor.address, ONLINE)
            await until(anchor.address, OFFLINE)
    assert seen == [(anchor.address, ONLINE), (anchor.address, OFFLINE)]


def test_the_admin_shows_a_users_sharing_read_only(make_user):
    owner, close = make_user(), make_user()
    befriend_in_store(owner.address, close.address)
    admin_client = Client()
    admin_client.force_login(UserModel.objects.create_superuser(new_address()))
    set_sharing(owner.address, Sharing(presence="only", presence_list=(close.address,)))
    listing = admin_client.get("/admin/friendships/presencesharing/", {"q": owner.address.upper()})
    assert listing.status_code == 200
    assert owner.address in listing.content.decode()
    page = admin_client.get(f"/admin/friendships/presencesharing/{owner.address}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert close.address in text and "Only the chosen friends" in text
    assert 'name="_save"' not in text


async def test_a_blocked_user_or_a_stranger_never_sees_a_close_friends_presence(service, make_user):
    """A close friend who is blocked, and a stranger, see nothing, whatever the lists say."""
    owner, close, stranger = make_user(), make_user(), make_user()
    befriend_in_store(owner.address, close.address)
    status, _ = put_sharing(
        service, owner, presence="only", presence_list=[close.address], location="all"
    )
    assert status == 200
    async with connect(service.ws_url, owner.token) as owner_client:
        await owner_client.set_status(ONLINE)
        async with connect(service.ws_url, close.token) as close_client:
            assert addresses(await close_client.online_friends()) == [owner.address]
            assert outcome(await owner_client.update("block", close.address)) == ("event", "")
            assert addresses(await close_client.online_friends()) == []
        for viewer in (close, stranger):
            assert http_get(service, "/api/v1/friends/", viewer.token)[1]["count"] == 0
            async with connect(service.ws_url, viewer.token) as viewer_client:
                assert addresses(await viewer_client.online_friends()) == []


async def test_location_reaches_only_those_it_is_shared_with(service, make_user):
    """Location shared with a list: a listed friend sees it in updates and answers; another
    friend sees the presence without it (with its status message and devices), and no update
    when it moves; "nobody" hides it from both, and the sharing change keeps the message and
    devices in what it publishes."""
    owner, close, other = make_user(), make_user(), make_user()
    for friend in (close, other):
        befriend_in_store(owner.address, friend.address)
    status, _ = put_sharing(
        service, owner, presence="all", location="only", location_list=[close.address]
    )
    assert status == 200
    place = ("main", 10, -20)
    async with (
        connect(service.ws_url, close.token) as close_client,
        connect(service.ws_url, other.token) as other_client,
    ):
        close_view = await close_client.subscribe_presence()
        other_view = await other_client.subscribe_presence()
        async with connect(f"{service.ws_url}?device=mobile", owner.token) as owner_client:
            status, _ = http_json(service, "PUT", PRESENCE_STATUS, owner.token, {"message": "here"})
            assert status == 200
            await owner_client.set_status(ONLINE)
            await presence_at(close_view, owner.address, ONLINE, None)
            await presence_at(other_view, owner.address, ONLINE, None)
            assert outcome(await owner_client.set_location(place)) == ("presence", "")
            await presence_at(close_view, owner.address, ONLINE, place)
            await other_view.expect_nothing(1.5)
            for viewer, seen in ((close, place), (other, None)):
                (row,) = http_get(service, "/api/v1/friends/online/", viewer.token)[1]["results"]
                shown = row["location"] and tuple(row["location"][k] for k in ("realm", "x", "y"))
                assert (row["status"], shown) == ("online", seen)
                assert (row["message"], row["devices"]) == ("here", ["mobile"])

            assert put_sharing(service, owner, presence="all", location="nobody")[0] == 200
            item = await close_view.next()
            (update,) = item.updates.users
            assert (update.status.type, place_of(update)) == (ONLINE, None)
            assert (update.message, list(update.devices)) == ("here", ["mobile"])
            await other_view.expect_nothing(0.5)
            for viewer in (close, other):
                (row,) = http_get(service, "/api/v1/friends/", viewer.token)[1]["results"]
                assert (row["status"], row["location"]) == ("online", None)
                assert (row["message"], row["devices"]) == ("here", ["mobile"])


async def test_heartbeats_and_ends_reach_only_those_who_may_see(service, make_user):
    """A user hidden from one friend and seen by another: what their heartbeats (REST and
    RPC) and the ends housekeeping publish reaches the other friend only; the hidden one
    hears nothing and reads them offline, never seen."""
    owner, viewer, other = make_user(), make_user(), make_user()
    for friend in (viewer, other):
        befriend_in_store(owner.address, friend.address)
    hide_from(service, owner, viewer)
    async with (
        connect(service.ws_url, viewer.token) as viewer_client,
        connect(service.ws_url, other.token) as other_client,
    ):
        viewer_view = await armed(viewer_client, await viewer_client.subscribe_presence())
        other_view = await armed(other_client, await other_client.subscribe_presence())

        async def other_sees(place: tuple[str, int, int], message: str) -> None:
            while True:
                item = await other_view.next(10)
                shown = [(place_of(u), u.message) for u in item.updates.users]
                if (place, message) in shown:
                    return

        body = {"location": {"realm": "main", "x": 1, "y": 2}}
        status, _ = http_json(service, "POST", PRESENCE_HEARTBEAT, owner.token, body)
        assert status == 200
        await presence_at(other_view, owner.address, ONLINE, ("main", 1, 2))
        async with connect(service.ws_url, owner.token) as owner_client:
            answer = await owner_client.heartbeat(("main", 5, 6))
            assert answer.WhichOneof("response") == "accepted"
            await presence_at(other_view, owner.address, ONLINE, ("main", 5, 6))
        # The housekeeping ends the message: its change is published like any other.
        body = {"message": "brief", "message_until": now_ms() + 1000}
        assert http_json(service, "PUT", PRESENCE_STATUS, owner.token, body)[0] == 200
        await other_sees(("main", 5, 6), "brief")
        await other_sees(("main", 5, 6), "")
        await viewer_view.expect_nothing(0.5)
    (row,) = http_get(service, "/api/v1/friends/", viewer.token)[1]["results"]
    shown = (row["status"], row["last_seen"], row["message"], row["devices"], row["location"])
    assert shown == ("offline", None, "", [], None)
