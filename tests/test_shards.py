"""Several Redis shards: three Valkey servers, two service processes, users spread over the
shards. A user's keys and groups are where channels-redis places their group; presence,
subscriptions and every read work across the shards, on both channel layers; a process
killed with -9 is reaped shard by shard; a shard restarted empty affects only its users
meanwhile and is rebuilt without any client action; a shard added leaves nothing behind;
Sentinel-managed shards; a bad shard list is refused by entry, an unreachable shard named."""

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
import redis
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.test import override_settings

from presence.layer import host_of, placement_name, presence_group, ring_position, user_group
from presence.store import keys
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    FriendsClient,
    OwnRedis,
    SentinelCluster,
    Service,
    Subscription,
    addresses,
    connect,
    eventually,
    free_port,
    free_ports,
    friend_ring,
    http_raw,
    manage,
    new_address,
    running_services,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

SHARDS = 3
USERS = 36
FRIENDS_EACH_WAY = 2
# The shard restarted in the outage test: not the first, which also keeps the rate limits
# every status change counts against.
DOWN = 2
FAST = {"PRESENCE_HEARTBEAT_SECONDS": "1", "PRESENCE_PROCESS_TTL_SECONDS": "5"}


def shard_of(address: str) -> int:
    """The shard of `address`'s keys, by the rule the services apply (presence.store.shards)."""
    return ring_position(placement_name(presence_group(address)), SHARDS)


# --- The rule agrees with channels-redis's ---------------------------------------------------


@pytest.mark.parametrize("ring_size", [1, 2, 3, 4, 5, 7, 8, 16, 100])
async def test_keys_go_where_channels_redis_puts_the_users_presence_group(ring_size):
    hosts = [f"redis://127.0.0.1:{6000 + n}/0" for n in range(ring_size)]
    pubsub = RedisPubSubChannelLayer(hosts=hosts, prefix="presence-layer")
    core = RedisChannelLayer(hosts=hosts, prefix="presence-layer")
    for _ in range(2000):
        group = presence_group(new_address())
        # The pubsub layer places the group's channel name, the core layer the group.
        pubsub_host = pubsub._shards.index(pubsub._get_shard(pubsub._get_group_channel_name(group)))
        with_pubsub = ring_position(f"presence-layer__group__{group}", ring_size)
        assert with_pubsub == pubsub_host
        assert ring_position(group, ring_size) == core.consistent_hash(group)
    # And the name placed is the one this settings' layer hashes.
    assert placement_name("presence.x") == (
        "presence-layer__group__presence.x" if settings.CHANNEL_LAYER == "pubsub" else "presence.x"
    )


def test_a_users_own_group_goes_with_their_presence_group_and_is_plain_on_one_host():
    address = new_address()
    assert user_group(address) == f"user.{address}"
    layers = {"default": {**settings.CHANNEL_LAYERS["default"]}}
    layers["default"]["CONFIG"] = {**layers["default"]["CONFIG"], "hosts": ["h"] * SHARDS}
    with override_settings(CHANNEL_LAYERS=layers):
        for _ in range(300):
            address = new_address()
            assert host_of(user_group(address)) == host_of(presence_group(address))
            assert user_group(address).startswith(f"user.{address}")


# --- Three shards, two processes ------------------------------------------------------------


@pytest.fixture
def shard_servers() -> Iterator[list[OwnRedis]]:
    servers = [OwnRedis(port, secrets.token_hex(12)) for port in free_ports(SHARDS)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def shard_env(servers: list[OwnRedis]) -> dict[str, str]:
    urls = [server.url for server in servers]
    return {"REDIS_SHARDS": ",".join(urls), "REDIS_URL": urls[0], **FAST}


@pytest.fixture
def layer() -> str:
    """The services' channel layer; a test may parametrize it."""
    return "pubsub"


@pytest.fixture
def two_services(tmp_path, shard_servers, layer) -> Iterator[list[Service]]:
    env = {**shard_env(shard_servers), "CHANNEL_LAYER": layer}
    backend = {"pubsub": "pubsub.RedisPubSubChannelLayer", "core": "core.RedisChannelLayer"}
    # This process places users as the services do.
    placing = {
        "BACKEND": f"channels_redis.{backend[layer]}",
        "CONFIG": {"prefix": "presence-layer"},
    }
    with (
        override_settings(CHANNEL_LAYERS={"default": placing}),
        running_services(tmp_path, 2, env) as services,
    ):
        yield services


@dataclass
class Member:
    """A user of the ring, connected to one of the processes with a presence subscription."""

    address: str
    token: str
    friends: set[str]
    service: Service
    client: FriendsClient | None = None
    view: Subscription | None = None

    @property
    def shard(self) -> int:
        return shard_of(self.address)


def ring_with_a_quiet_corner() -> list[tuple[str, str, set[str]]]:
    """friend_ring's users, drawn until every shard holds some and a few users off the
    restarted shard have no friend on it either."""
    while True:
        ring = friend_ring(USERS, FRIENDS_EACH_WAY)
        held = [sum(shard_of(a) == s for a, _, _ in ring) for s in range(SHARDS)]
        quiet = [
            a
            for a, _, friends in ring
            if shard_of(a) != DOWN and all(shard_of(f) != DOWN for f in friends)
        ]
        if min(held) >= 4 and len(quiet) >= 2:
            return ring


async def join_all(stack: AsyncExitStack, services: list[Service]) -> list[Member]:
    ring = ring_with_a_quiet_corner()
    members = [
        Member(address, token, friends, services[i % len(services)])
        for i, (address, token, friends) in enumerate(ring)
    ]
    for member in members:
        member.client = await stack.enter_async_context(
            connect(member.service.ws_url, member.token)
        )
        member.view = await member.client.subscribe_presence()
        stack.callback(member.view.cancel)
    for i, member in enumerate(members):
        response = await member.client.set_status(AWAY if i % 3 == 0 else ONLINE)
        assert response.WhichOneof("response") == "status", response
    return members


def truth_of(members: list[Member]) -> dict[str, int]:
    """What everyone's status is after join_all."""
    return {m.address: AWAY if i % 3 == 0 else ONLINE for i, m in enumerate(members)}


async def settle(member: Member, truth: dict[str, int], deadline: float) -> None:
    """Read `member`'s pushed updates until its view of its friends is `truth`."""
    while any(member.view.view.get(f, OFFLINE) != truth[f] for f in member.friends):
        left = deadline - time.monotonic()
        if left <= 0:
            wrong = {
                f: (member.view.view.get(f, OFFLINE), truth[f])
                for f in member.friends
                if member.view.view.get(f, OFFLINE) != truth[f]
            }
            raise AssertionError(f"{member.address} sees (seen, true) {wrong}")
        try:
            await member.view.next(left)
        except TimeoutError:
            continue


async def views_right(members: list[Member], truth: dict[str, int], within: float) -> None:
    deadline = time.monotonic() + within
    await asyncio.gather(*(settle(m, truth, deadline) for m in members))


def visible_friends(member: Member, truth: dict[str, int]) -> list[str]:
    return sorted(f for f in member.friends if truth[f] != OFFLINE)


async def online_friends_right(members: list[Member], truth: dict[str, int]) -> bool:
    listed = await asyncio.gather(*(m.client.online_friends() for m in members))
    return all(
        sorted(addresses(pages)) == visible_friends(m, truth)
        for m, pages in zip(members, listed, strict=True)
    )


def rest(service: Service, path: str, token: str) -> tuple[int, dict]:
    status, _, body = http_raw("GET", service.http_url + path, token)
    return status, json.loads(body)


def shard_contents(server: OwnRedis, key: str) -> set[str]:
    with redis.Redis.from_url(server.url, decode_responses=True) as client:
        kind = client.type(key)
        return set(client.hkeys(key) if kind == "hash" else client.smembers(key))


def groups_held(server: OwnRedis, kind: str, layer: str) -> set[str]:
    """The addresses of the `kind` groups (presence, user) that `server` holds: those some
    process listens to (pubsub layer), or whose members it keeps (core layer)."""
    with redis.Redis.from_url(server.url, decode_responses=True) as client:
        if layer == "pubsub":
            names = client.pubsub_channels(f"presence-layer__group__{kind}.*")
        else:
            names = client.keys(f"presence-layer:group:{kind}.*")
    return {name.split(".")[1] for name in names}


@pytest.mark.parametrize("layer", ["pubsub", "core"])
async def test_presence_subscriptions_and_reads_across_three_shards_and_crash_reaping(
    two_services, shard_servers, make_user, layer
):
    staff = make_user(staff=True)
    async with AsyncExitStack() as stack:
        members = await join_all(stack, two_services)
        truth = truth_of(members)
        # Users of every shard, on both processes.
        assert {(m.shard, m.service.port) for m in members} == {
            (s, service.port) for s in range(SHARDS) for service in two_services
        }
        await views_right(members, truth, within=20)
        assert await online_friends_right(members, truth)

        # Each user's keys and both their groups are on their shard, and only there; both
        # processes beat on every shard.
        for shard, server in enumerate(shard_servers):
            mine = {m.address for m in members if m.shard == shard}
            assert groups_held(server, "presence", layer) == mine
            assert groups_held(server, "user", layer) == mine
            assert shard_contents(server, keys.VISIBLE) == mine
            assert {
                a.split(" ")[0]
                for p in shard_contents(server, keys.PROCESSES)
                for a in shard_contents(server, keys.PROCESS_CONNECTIONS.format(p))
            } == mine
            assert len(shard_contents(server, keys.PROCESSES)) == 2

        # The REST online list, and the staff list merged over the shards with paging.
        for member in members[:6]:
            status, body = await asyncio.to_thread(
                rest, member.service, "/api/v1/friends/online/?limit=100", member.token
            )
            assert status == 200, body
            assert sorted(r["address"] for r in body["results"]) == visible_friends(member, truth)
        everyone = sorted(truth)
        paged: list[str] = []
        for offset in range(0, USERS + 7, 7):
            status, body = await asyncio.to_thread(
                rest,
                two_services[0],
                f"/api/v1/presence/online/?limit=7&offset={offset}",
                staff.token,
            )
            assert status == 200, body
            assert body["count"] == USERS
            paged += [r["address"] for r in body["results"]]
        assert paged == everyone
        statuses = {r["address"]: r["status"] for r in body["results"]}
        assert all(statuses[a] == ("away" if truth[a] == AWAY else "online") for a in statuses)

        # A status change on each shard reaches friends on both processes.
        changers = [next(m for m in members if m.shard == s) for s in range(SHARDS)]
        for changer in changers:
            assert (await changer.client.set_status(AWAY)).WhichOneof("response") == "status"
            truth[changer.address] = AWAY
        await views_right(members, truth, within=10)

        # One process dies: its users, on every shard, go OFFLINE for their friends.
        victim = two_services[1]
        victim.process.kill()
        victim.process.wait()
        killed_at = time.monotonic()
        survivors = [m for m in members if m.service is not victim]
        for member in members:
            if member.service is victim:
                truth[member.address] = OFFLINE
        assert {m.shard for m in members if m.service is victim} == set(range(SHARDS))
        await views_right(survivors, truth, within=30)
        reaped_after = time.monotonic() - killed_at
        await eventually(lambda: online_friends_right(survivors, truth))
        for shard, server in enumerate(shard_servers):
            assert shard_contents(server, keys.VISIBLE) == {
                m.address for m in survivors if m.shard == shard
            }
        print(
            f"\n3 shards, {layer} layer: a killed process's users OFFLINE for friends "
            f"{reaped_after:.1f} s after the kill"
        )
        for member in members:
            if member.service is victim:
                member.client.ws.transport.abort()


async def test_restarting_one_shard_affects_only_its_users_and_is_rebuilt(
    two_services, shard_servers
):
    down = shard_servers[DOWN]
    async with AsyncExitStack() as stack:
        members = await join_all(stack, two_services)
        truth = truth_of(members)
        await views_right(members, truth, within=20)
        marks = [service.log_mark() for service in two_services]

        down.stop()
        # Its users' calls fail fast and clearly; the connections stay open.
        theirs = [m for m in members if m.shard == DOWN]
        others = [m for m in members if m.shard != DOWN]
        started = time.monotonic()
        # (The status it already has: the connection keeps the last choice and restores it.)
        failed = await theirs[0].client.set_status(truth[theirs[0].address])
        assert failed.WhichOneof("response") == "internal_server_error"
        assert time.monotonic() - started < 8
        # Everyone else changes status, and their friends see it, wherever they are.
        for member in others:
            response = await member.client.set_status(OFFLINE if truth[member.address] else AWAY)
            assert response.WhichOneof("response") == "status", response
            truth[member.address] = OFFLINE if truth[member.address] else AWAY
        await views_right(members, truth, within=15)
        # Reads that need no user of the shard succeed; those that do fail clearly.
        quiet = [m for m in others if all(shard_of(f) != DOWN for f in m.friends)]
        assert await online_friends_right(quiet, truth)
        needing = next(m for m in others if any(shard_of(f) == DOWN for f in m.friends))
        answer = await needing.client.online_friends()
        assert [page.WhichOneof("response") for page in answer] == ["internal_server_error"]

        # A user of the shard leaves during the outage: nobody can be told yet.
        leaver = theirs[1]
        leaver.view.cancel()
        await leaver.client.ws.close()
        truth[leaver.address] = OFFLINE

        # The processes stay ready, naming the shard, without its password.
        for service in two_services:
            status, _, body = await asyncio.to_thread(http_raw, "GET", service.http_url + "/readyz")
            assert status == 200, body
            redis_check = json.loads(body)["checks"]["redis"]
            assert redis_check.startswith(f"Redis at 127.0.0.1:{down.port} (shard {DOWN}): "), body
            assert down.password not in body.decode()

        await asyncio.sleep(2)
        down.start()
        # Without any client action, the shard is rebuilt from the live connections.
        live = [m for m in members if m is not leaver]
        await views_right(live, truth, within=20)
        await eventually(lambda: online_friends_right(live, truth), timeout=15)
        assert shard_contents(down, keys.VISIBLE) == {
            m.address for m in live if m.shard == DOWN and truth[m.address] != OFFLINE
        }
        assert (await theirs[0].client.set_status(AWAY)).WhichOneof("response") == "status"
        truth[theirs[0].address] = AWAY
        await views_right(live, truth, within=10)

        for service, mark in zip(two_services, marks, strict=True):
            rebuilt = sum(m.service is service and m.shard == DOWN for m in live)
            line = (
                f"rebuilt presence of {rebuilt} live connections on Redis at "
                f"127.0.0.1:{down.port} (shard {DOWN}) after a Redis outage"
            )
            # The line ends the rebuild: it may come a round after friends' views are right,
            # when a catch-up that read a shard still reconnecting is retried.
            await service.logs(line, since=mark, within=10)
            logged = service.logged_since(mark)
            assert f"housekeeping failed on Redis at 127.0.0.1:{down.port} (shard {DOWN})" in logged
            # Only the shard restarted is rebuilt: the others' rounds did not fail with it.
            for up in set(range(SHARDS)) - {DOWN}:
                assert f"(shard {up}) after a Redis outage" not in logged, logged
            assert down.password not in logged
            assert service.process.poll() is None


async def test_a_shard_down_at_shutdown_is_named_and_the_others_are_retired(
    tmp_path, shard_servers
):
    """A process stopping while one shard is away retires itself from the others, tells
    friends there, and names the one it could not reach (its connections there are reaped
    once the shard is back)."""
    down = shard_servers[DOWN]
    env = {**shard_env(shard_servers), "PRESENCE_DRAIN_SECONDS": "0"}
    env["PRESENCE_RESTART_GRACE_SECONDS"] = "0"
    with running_services(tmp_path, 2, env) as services:
        stopping, staying = services
        async with AsyncExitStack() as stack:
            members = await join_all(stack, services)
            truth = truth_of(members)
            await views_right(members, truth, within=20)
            mark = stopping.log_mark()

            down.stop()
            stopping.process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(stopping.process.wait, 30) == 0
            logged = stopping.logged_since(mark)
            assert (
                f"retiring this process on Redis at 127.0.0.1:{down.port} (shard {DOWN}) "
                "failed" in logged
            ), logged
            retired = sum(m.service is stopping and m.shard != DOWN for m in members)
            assert f"disconnected {retired} connections that did not come back" in logged
            assert down.password not in logged
            # Friends on the other process see those users leave.
            for member in members:
                if member.service is stopping and member.shard != DOWN:
                    truth[member.address] = OFFLINE
            watching = [m for m in members if m.service is staying and m.shard != DOWN]
            await views_right(
                watching,
                {a: s for a, s in truth.items() if shard_of(a) != DOWN}
                | {a: s for a, s in truth_of(members).items() if shard_of(a) == DOWN},
                within=15,
            )


async def test_adding_a_shard_moves_users_and_leaves_nothing_behind(tmp_path, shard_servers):
    """A process on two shards dies (kill -9); one on three takes over. The users the new
    shard takes are reaped from their old shard without a word to friends, and everyone's
    presence is read where it lives now."""
    ring = friend_ring(24, 1)
    before = {a: ring_position(placement_name(presence_group(a)), 2) for a, _, _ in ring}
    moved = {a for a in before if before[a] != shard_of(a)}
    assert moved
    old = start_service(tmp_path, shard_env(shard_servers[:2]))
    async with AsyncExitStack() as stack:
        for _, token, _ in ring:
            client = await stack.enter_async_context(connect(old.ws_url, token))
            assert (await client.set_status(ONLINE)).WhichOneof("response") == "status"
        for shard, server in enumerate(shard_servers[:2]):
            assert shard_contents(server, keys.VISIBLE) == {a for a in before if before[a] == shard}
        old.process.kill()
        old.process.wait()
    new = start_service(tmp_path, shard_env(shard_servers))
    try:
        async with AsyncExitStack() as stack:
            members = [Member(a, t, f, new) for a, t, f in ring]
            for member in members:
                member.client = await stack.enter_async_context(connect(new.ws_url, member.token))
                member.view = await member.client.subscribe_presence()
                stack.callback(member.view.cancel)
            truth = {m.address: AWAY if i % 2 == 0 else ONLINE for i, m in enumerate(members)}
            for member in members:
                response = await member.client.set_status(truth[member.address])
                assert response.WhichOneof("response") == "status", response

            def reaped() -> bool:
                return all(
                    len(shard_contents(server, keys.PROCESSES)) == 1 for server in shard_servers[:2]
                )

            await eventually(lambda: asyncio.to_thread(reaped), timeout=30)
            await views_right(members, truth, within=10)
            assert await online_friends_right(members, truth)
            for shard, server in enumerate(shard_servers):
                mine = {m.address for m in members if m.shard == shard}
                assert shard_contents(server, keys.VISIBLE) == mine
                assert shard_contents(server, keys.CHOSEN) == mine
        print(f"\nadding a third shard to two moved {len(moved)} of {len(ring)} users")
    finally:
        stop_service(new)


async def test_sentinel_managed_shards_one_master_name_each(tmp_path, make_user):
    cluster = SentinelCluster(tmp_path)
    try:
        cluster.start()
        ports = [cluster.primary_port, cluster.add_primary("presence-b")]
        env = {**cluster.service_env, "REDIS_SENTINEL_MASTER": "presence,presence-b"}
        users = [make_user() for _ in range(16)]
        where = {
            u.address: ring_position(placement_name(presence_group(u.address)), 2) for u in users
        }
        assert set(where.values()) == {0, 1}
        with running_services(tmp_path, 2, env) as services:
            async with AsyncExitStack() as stack:
                for i, user in enumerate(users):
                    client = await stack.enter_async_context(
                        connect(services[i % 2].ws_url, user.token)
                    )
                    assert (await client.set_status(ONLINE)).WhichOneof("response") == "status"
                for shard, port in enumerate(ports):
                    with cluster.data(port) as primary:
                        assert set(primary.hkeys(keys.VISIBLE)) == {
                            a for a in where if where[a] == shard
                        }
            status, _, body = await asyncio.to_thread(
                http_raw, "GET", services[0].http_url + "/readyz"
            )
            assert status == 200, body
    finally:
        cluster.stop()


# --- Bad shard lists ------------------------------------------------------------------------


def test_a_duplicate_shard_stops_the_start_with_the_entry_named_without_its_password():
    password = secrets.token_hex(8)
    shards = [
        f"redis://presence:{password}@127.0.0.1:7001/0",
        "redis://127.0.0.1:7002/0",
        f"redis://other:{password}@127.0.0.1:7002/1",
    ]
    env = {**os.environ, "REDIS_SHARDS": ",".join(shards), "REDIS_URL": shards[0]}
    started = subprocess.run(
        [sys.executable, "-m", "presence_project.server", "-p", str(free_port())],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert (
        "ImproperlyConfigured: REDIS_SHARDS: entry 3 ('redis://127.0.0.1:7002/1') names the "
        "same server as entry 2: each shard must be a server of its own"
    ) in started.stderr, started.stderr
    assert password not in started.stderr + started.stdout


@pytest.mark.parametrize(
    ("env", "refusal"),
    [
        (
            {"REDIS_SHARDS": "redis://:{pw}@127.0.0.1:7001/0,,redis://127.0.0.1:7002/0"},
            "REDIS_SHARDS: entry 2 of 3 is empty",
        ),
        (
            {"REDIS_SHARDS": "redis://127.0.0.1:7001/0,presence:{pw}@127.0.0.1:7002"},
            "REDIS_SHARDS: '127.0.0.1:7002' is not a redis://, rediss:// or unix:// URL",
        ),
        (
            {
                "REDIS_SHARDS": "redis://127.0.0.1:7001/0,redis://127.0.0.1:7002/0",
                "REDIS_URL": "redis://:{pw}@127.0.0.1:7003/0",
            },
            "REDIS_URL and REDIS_SHARDS disagree",
        ),
        (
            {
                "REDIS_SHARDS": "redis://127.0.0.1:7001/0,redis://127.0.0.1:7002/0",
                "REDIS_SENTINELS": "127.0.0.1:26379",
                "REDIS_SENTINEL_MASTER": "a,b",
            },
            "REDIS_SHARDS and REDIS_SENTINELS do not mix",
        ),
        (
            {
                "REDIS_SENTINELS": "127.0.0.1:26379",
                "REDIS_SENTINEL_MASTER": "a, b ,a",
                "REDIS_URL": "redis://:{pw}@unused/0",
            },
            "REDIS_SENTINEL_MASTER: entry 3 ('a') names the same server as entry 1",
        ),
    ],
)
def test_a_bad_shard_list_is_refused_by_entry_without_passwords(env, refusal):
    password = secrets.token_hex(8)
    filled = {"REDIS_URL": "", **{k: v.replace("{pw}", password) for k, v in env.items()}}
    checked = manage("check", env=filled)
    assert checked.returncode != 0
    assert f"ImproperlyConfigured: {refusal}" in checked.stderr, checked.stderr
    assert password not in checked.stderr + checked.stdout


async def test_an_unreachable_shard_at_start_is_named_and_only_its_users_wait(
    tmp_path, shard_servers
):
    absent = shard_servers[DOWN]
    absent.stop()
    running = start_service(tmp_path, shard_env(shard_servers))
    try:
        ring = ring_with_a_quiet_corner()
        members = [Member(a, t, f, running) for a, t, f in ring]
        others = [m for m in members if m.shard != DOWN]
        theirs = [m for m in members if m.shard == DOWN]
        async with AsyncExitStack() as stack:
            for member in others + theirs[:1]:
                member.client = await stack.enter_async_context(
                    connect(running.ws_url, member.token)
                )
            for member in others:
                response = await member.client.set_status(ONLINE)
                assert response.WhichOneof("response") == "status", response
            failed = await theirs[0].client.set_status(ONLINE)
            assert failed.WhichOneof("response") == "internal_server_error"
            truth = {m.address: ONLINE if m.shard != DOWN else OFFLINE for m in members}
            quiet = [m for m in others if all(shard_of(f) != DOWN for f in m.friends)]
            assert await online_friends_right(quiet, truth)
            status, _, body = await asyncio.to_thread(http_raw, "GET", running.http_url + "/readyz")
            assert status == 200, body
            assert f"127.0.0.1:{absent.port} (shard {DOWN})" in json.loads(body)["checks"]["redis"]

            absent.start()
            await eventually(lambda: _status_set(theirs[0].client), timeout=15)
            truth[theirs[0].address] = ONLINE
            await eventually(lambda: online_friends_right(others, truth), timeout=15)
        logged = running.logged_since(0)
        assert f"housekeeping failed on Redis at 127.0.0.1:{absent.port} (shard {DOWN})" in logged
        assert "readiness: redis is failing: Redis at 127.0.0.1:" in logged
        assert absent.password not in logged
        assert running.process.poll() is None
    finally:
        stop_service(running)


async def _status_set(client: FriendsClient) -> bool:
    return (await client.set_status(ONLINE)).WhichOneof("response") == "status"
