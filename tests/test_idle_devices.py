"""Idle connections turn a user AWAY by themselves, and a user's several devices (issue 18,
points 5 and 6), through real daphne processes, WebSocket clients and HTTP."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import NamedTuple

import pytest
import redis
import websockets
from django.test import Client
from django.urls import reverse

from accounts.models import User as UserModel
from tests.signing import new_identity
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    PRESENCE_HEARTBEAT,
    FriendsClient,
    Subscription,
    User,
    befriend,
    befriend_signed,
    closed_with,
    connect,
    connect_signed,
    eventually,
    friend_online,
    http_get,
    http_json,
    new_address,
    running_service,
    running_services,
    service_with,
)

pytestmark = pytest.mark.django_db(transaction=True)

IDLE = 2
ENV = {"PRESENCE_IDLE_AWAY_SECONDS": str(IDLE), "PRESENCE_HEARTBEAT_SECONDS": "1"}
# The idle timer looks every tenth of IDLE; the change then crosses Redis and the layer.
LATE = 1.5

idle_service = service_with(ENV)

DESKTOP, WEB = ("desktop",), ("web",)


class Watched(NamedTuple):
    user: User
    friend: User
    updates: Subscription
    client: FriendsClient


def on(url: str, device: str) -> str:
    return f"{url}?device={device}"


async def keep_busy(client: object, seconds: float) -> None:
    """Calls from `client` every 0.3 s for `seconds`: the connection is never idle."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await client.request_events()
        await asyncio.sleep(0.3)


async def rest_friends(service: object, token: str) -> dict[str, tuple[str, list[str]]]:
    status, body = await asyncio.to_thread(http_get, service, "/api/v1/friends/", token)
    assert status == 200, body
    return {f["address"]: (f["status"], f["devices"]) for f in body["results"]}


@asynccontextmanager
async def watched(url: str, make_user: Callable[[], User]) -> AsyncIterator[Watched]:
    """A user ONLINE on a desktop at `url`, watched by a friend's presence subscription."""
    user, friend = make_user(), make_user()
    await befriend(url, user, friend)
    async with friend_online(url, friend, url, user) as (updates, client):
        assert updates.devices[user.address] == DESKTOP
        yield Watched(user, friend, updates, client)


async def test_idle_user_shows_away_then_online_on_activity(idle_service, make_user):
    async with watched(idle_service.ws_url, make_user) as (alice, bob, updates, a):
        active_at = time.monotonic()
        await updates.presence_until(alice.address, AWAY, timeout=IDLE + LATE + 2)
        assert time.monotonic() - active_at >= IDLE - 0.2
        assert updates.devices[alice.address] == DESKTOP
        assert (await rest_friends(idle_service, bob.token))[alice.address] == (
            "away",
            ["desktop"],
        )
        # Any call is activity: ONLINE again at once, not at the next timer round.
        asked_at = time.monotonic()
        await a.request_events()
        await updates.presence_until(alice.address, ONLINE, timeout=LATE)
        assert time.monotonic() - asked_at < LATE


async def test_stream_acks_do_not_count_as_activity(idle_service, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    await befriend(idle_service.ws_url, alice, bob, carol)
    async with (
        connect(idle_service.ws_url, bob.token) as b,
        connect(idle_service.ws_url, carol.token) as c,
    ):
        watching = await b.subscribe_presence()
        async with connect(idle_service.ws_url, alice.token) as a:
            # Alice's client only takes updates (acking each) from here on.
            alice_updates = await a.subscribe_presence()
            await a.set_status(ONLINE)
            await watching.presence_until(alice.address, ONLINE)
            taken = 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + IDLE + LATE + 2
            while watching.view[alice.address] != AWAY:
                assert loop.time() < deadline, "alice never turned AWAY while only acking"
                # Carol flaps, so alice's stream gets items, and alice's client acks them.
                await c.set_status(AWAY if taken % 2 else ONLINE)
                await alice_updates.presence_until(carol.address, AWAY if taken % 2 else ONLINE)
                taken += 1
                with suppress(TimeoutError):
                    await watching.presence_until(alice.address, AWAY, timeout=0.2)
            assert taken >= 4, taken


async def test_a_chosen_away_or_offline_stays_idle_or_not(idle_service, make_user):
    async with watched(idle_service.ws_url, make_user) as (alice, bob, updates, a):
        await a.set_status(AWAY)
        await updates.presence_until(alice.address, AWAY, devices=DESKTOP)
        # Idle, then active again: a chosen AWAY shows AWAY throughout, never ONLINE.
        await asyncio.sleep(IDLE + LATE)
        await a.request_events()
        await updates.expect_nothing(within=LATE)
        # A chosen OFFLINE (appearing offline) shows nothing, devices included.
        await a.set_status(OFFLINE)
        await updates.presence_until(alice.address, OFFLINE, devices=())
        await asyncio.sleep(IDLE + LATE)
        await a.request_events()
        await updates.expect_nothing(within=LATE)
        assert (await rest_friends(idle_service, bob.token))[alice.address] == ("offline", [])


async def test_two_devices_merge_one_idle_still_online_both_idle_away(idle_service, make_user):
    async with watched(idle_service.ws_url, make_user) as (alice, bob, updates, desktop):
        async with connect(on(idle_service.ws_url, "mobile"), alice.token) as mobile:
            await mobile.request_events()
            await updates.presence_until(alice.address, ONLINE, devices=("desktop", "mobile"))
            assert (await rest_friends(idle_service, bob.token))[alice.address] == (
                "online",
                ["desktop", "mobile"],
            )
            # The desktop idles while the phone is in use: still ONLINE.
            await keep_busy(mobile, IDLE + LATE)
            await updates.expect_nothing(within=0.1)
            assert updates.view[alice.address] == ONLINE
            # Now the phone idles too: AWAY.
            await updates.presence_until(alice.address, AWAY, timeout=IDLE + LATE + 1)
            assert updates.devices[alice.address] == ("desktop", "mobile")
        # The phone is gone: the desktop alone, idle, still AWAY.
        await updates.presence_until(alice.address, AWAY, devices=DESKTOP)
        # Activity on the desktop: ONLINE.
        await desktop.request_events()
        await updates.presence_until(alice.address, ONLINE, timeout=LATE)


async def test_devices_listed_for_friends_on_v2_and_rest(idle_service, make_user):
    viewer, friend = new_identity(), new_identity()
    await befriend_signed(idle_service.ws_url, viewer, friend)
    async with connect_signed(idle_service.ws_url, viewer) as v:
        updates = await v.connectivity()
        async with connect_signed(on(idle_service.ws_url, "web"), friend):
            update = await updates.next()
            assert (update.friend.address, update.status, tuple(update.devices)) == (
                friend.address,
                ONLINE,
                WEB,
            )
            async with connect_signed(on(idle_service.ws_url, "Mobile"), friend):
                update = await updates.next()
                assert (update.status, tuple(update.devices)) == (ONLINE, ("mobile", "web"))
            update = await updates.next()
            assert (update.status, tuple(update.devices)) == (ONLINE, WEB)
        update = await updates.next()
        assert (update.status, tuple(update.devices)) == (OFFLINE, ())


async def test_non_friends_and_blocked_users_never_see_devices(idle_service, make_user):
    alice, bob, eve, mallory = make_user(), make_user(), make_user(), make_user()
    await befriend(idle_service.ws_url, alice, bob, mallory)
    async with (
        connect(idle_service.ws_url, eve.token) as e,
        connect(idle_service.ws_url, mallory.token) as m,
        connect(idle_service.ws_url, bob.token) as b,
    ):
        eve_updates = await e.subscribe_presence()
        mallory_updates = await m.subscribe_presence()
        bob_updates = await b.subscribe_presence()
        async with connect(idle_service.ws_url, alice.token) as a:
            await a.set_status(ONLINE)
            await mallory_updates.presence_until(alice.address, ONLINE, devices=DESKTOP)
            await a.update("block", mallory.address)
            await mallory_updates.presence_until(alice.address, OFFLINE, devices=())
            async with connect(on(idle_service.ws_url, "mobile"), alice.token) as phone:
                await phone.request_events()
                await bob_updates.presence_until(
                    alice.address, ONLINE, devices=("desktop", "mobile")
                )
                await mallory_updates.expect_nothing(within=0.5)
                await eve_updates.expect_nothing(within=0.1)
                for viewer in (eve, mallory):
                    assert alice.address not in await rest_friends(idle_service, viewer.token)
                status, body = await asyncio.to_thread(
                    http_get, idle_service, "/api/v1/friends/online/", eve.token
                )
                assert (status, body["results"]) == (200, [])
        assert eve.address not in eve_updates.view


async def test_an_unknown_device_kind_is_refused_with_a_reason(idle_service, make_user):
    alice = make_user()
    for said in ("fridge", "x" * 500):
        url = f"{on(idle_service.ws_url, said)}&access_token={alice.token}"
        async with websockets.connect(url) as ws:
            assert await closed_with(ws) == 4400
            assert ws.close_reason.startswith("unknown device '")
            assert ws.close_reason.endswith("say desktop, mobile or web")
    # The process goes on serving, and an empty value says nothing: a desktop.
    async with connect(f"{idle_service.ws_url}?device=", alice.token) as a:
        assert (await a.set_status(ONLINE)).status.type == ONLINE


async def test_two_processes_merge_the_connections_of_a_user(tmp_path, make_user):
    alice, bob = make_user(), make_user()
    with running_services(tmp_path, 2, ENV) as (one, two):
        await befriend(one.ws_url, alice, bob)
        async with connect(one.ws_url, bob.token) as b:
            updates = await b.subscribe_presence()
            async with (
                connect(one.ws_url, alice.token) as desktop,
                connect(on(two.ws_url, "mobile"), alice.token) as mobile,
            ):
                await desktop.set_status(ONLINE)
                # A FriendsClient's connection is its user's from its first call.
                await mobile.request_events()
                await updates.presence_until(alice.address, ONLINE, devices=("desktop", "mobile"))
                # Busy on the second process, idle on the first: ONLINE.
                await keep_busy(mobile, IDLE + LATE)
                assert updates.view[alice.address] == ONLINE
                # Idle on both: AWAY; busy again on the first: ONLINE.
                await updates.presence_until(alice.address, AWAY, timeout=IDLE + LATE + 1)
                await desktop.request_events()
                await updates.presence_until(alice.address, ONLINE, timeout=LATE)


async def test_devices_and_idle_state_come_back_after_redis_loses_everything(
    tmp_path, make_user, own_redis
):
    alice, bob = make_user(), make_user()
    env = {**ENV, "REDIS_URL": own_redis.url}
    with running_service(tmp_path, env) as running:
        await befriend(running.ws_url, alice, bob)
        async with (
            connect(running.ws_url, bob.token) as b,
            connect(running.ws_url, alice.token) as desktop,
            connect(on(running.ws_url, "web"), alice.token) as web,
        ):
            updates = await b.subscribe_presence()
            await desktop.set_status(ONLINE)
            await web.request_events()
            await updates.presence_until(alice.address, ONLINE, devices=("desktop", "web"))
            await updates.presence_until(alice.address, AWAY, timeout=IDLE + LATE + 1)
            with redis.Redis.from_url(own_redis.url) as client:
                client.flushall()

            # Rebuilt from the live connections: both devices, both still idle.
            async def restored() -> bool:
                friends = await rest_friends(running, bob.token)
                return friends[alice.address] == ("away", ["desktop", "web"])

            await eventually(restored)
            assert (updates.view[alice.address], updates.devices[alice.address]) == (
                AWAY,
                ("desktop", "web"),
            )
            await web.request_events()
            await updates.presence_until(alice.address, ONLINE, timeout=LATE)


def _admin_views(address: str) -> tuple[dict, str]:
    """The live page's data and the user's admin page for `address`, as a superuser."""
    client = Client()
    client.force_login(UserModel.objects.create_superuser(new_address()))
    data = client.get(reverse("admin:presence_live_data"), {"address": address}).json()
    page = client.get(reverse("admin:accounts_user_change", args=[address])).content.decode()
    return data["user"], page


async def test_the_admin_shows_devices_and_each_connection_idle_or_not(idle_service, make_user):
    alice = make_user()
    async with (
        connect(idle_service.ws_url, alice.token) as desktop,
        connect(on(idle_service.ws_url, "mobile"), alice.token) as mobile,
    ):
        await desktop.set_status(ONLINE)
        await keep_busy(mobile, IDLE + LATE)
        user, page = await asyncio.to_thread(_admin_views, alice.address)
        assert (user["status"], user["devices"]) == ("online", ["desktop", "mobile"])
        assert sorted(user["connection_devices"].values()) == ["desktop, idle", "mobile"]
        for connection, device in user["connection_devices"].items():
            assert f'<span class="address">{connection}</span>: {device}</li>' in page


async def test_a_heartbeat_says_its_device_over_rest_and_rpc(idle_service, make_user):
    url = idle_service.ws_url
    alice, bob = make_user(), make_user()
    await befriend(url, alice, bob)
    async with connect(url, bob.token) as watcher:
        updates = await watcher.subscribe_presence()
        # Over REST, the body says what sends the heartbeats.
        status, taken = await asyncio.to_thread(
            http_json, idle_service, "POST", PRESENCE_HEARTBEAT, alice.token, {"device": "mobile"}
        )
        assert status == 200, taken
        assert (taken["presence"]["status"], taken["presence"]["devices"]) == ("online", ["mobile"])
        await updates.presence_until(alice.address, ONLINE, devices=("mobile",))
        assert (await rest_friends(idle_service, bob.token))[alice.address] == (
            "online",
            ["mobile"],
        )
        status, refused = await asyncio.to_thread(
            http_json, idle_service, "POST", PRESENCE_HEARTBEAT, alice.token, {"device": "fridge"}
        )
        assert (status, refused) == (400, {"detail": 'device: "fridge" is not a valid choice.'})
        # Over RPC, the heartbeat is the connection's device, and holds once it has closed.
        async with connect(on(url, "web"), alice.token) as web:
            await web.heartbeat()
        await updates.presence_until(alice.address, ONLINE, devices=WEB)
        # Without a word, a heartbeat is a desktop's, as a WebSocket is.
        status, taken = await asyncio.to_thread(
            http_json, idle_service, "POST", PRESENCE_HEARTBEAT, alice.token, {}
        )
        assert taken["presence"]["devices"] == ["desktop"], taken
