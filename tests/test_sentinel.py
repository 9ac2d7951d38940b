"""Redis behind Sentinel: two service processes, a primary killed with -9 under load, a
replica promoted, and every friend's view exact again without any client action."""

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field

import pytest

from tests.signing import new_identity
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    FriendsClient,
    SentinelCluster,
    Subscription,
    addresses,
    befriend,
    connect,
    eventually,
    friend_ring,
    http_raw,
    manage,
    running_services,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 200
FRIENDS_EACH_WAY = 3
# Users who leave, and users who arrive, in the moment before the kill whose writes the
# replica never receives.
LEAVERS = range(0, 20)
JOINERS = range(20, 40)
CHURNERS = range(40, 80)
FAST_HOUSEKEEPING = {"PRESENCE_HEARTBEAT_SECONDS": "1", "PRESENCE_PROCESS_TTL_SECONDS": "10"}
# Long enough between two heartbeats for the whole failover: the processes' housekeeping
# never meets an error, so only the new server's identity tells them to rebuild.
SLOW_HOUSEKEEPING = {"PRESENCE_HEARTBEAT_SECONDS": "8", "PRESENCE_PROCESS_TTL_SECONDS": "30"}
FAILOVER_WINDOW_SECONDS = 4.0


@pytest.fixture
def cluster(tmp_path):
    running = SentinelCluster(tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(params=["fast", "slow", "fast-core-layer"])
def housekeeping(request) -> dict[str, str]:
    """The services' settings: heartbeat, and which channel layer (both take Sentinel)."""
    return {
        "fast": {**FAST_HOUSEKEEPING, "CHANNEL_LAYER": "pubsub"},
        "slow": {**SLOW_HOUSEKEEPING, "CHANNEL_LAYER": "pubsub"},
        "fast-core-layer": {**FAST_HOUSEKEEPING, "CHANNEL_LAYER": "core"},
    }[request.param]


@pytest.fixture
def sentinel_services(tmp_path, cluster, housekeeping):
    # The churners change status faster than a user may in production.
    env = {**cluster.service_env, **housekeeping, "PRESENCE_STATUS_CHANGES_PER_MINUTE": "100000"}
    with running_services(tmp_path, 2, env) as services:
        yield services


@dataclass
class Client:
    address: str
    token: str
    friends: set[str]
    url: str
    status: int = OFFLINE
    client: FriendsClient | None = None
    view: Subscription | None = None
    failures: list[tuple[str, float]] = field(default_factory=list)
    _connection: object = None
    _reader: asyncio.Task[None] | None = None

    async def join(self) -> None:
        self._connection = connect(self.url, self.token)
        self.client = await self._connection.__aenter__()
        self.view = await self.client.subscribe_presence()
        self._reader = asyncio.ensure_future(self._read(self.view))
        await self.set(ONLINE)

    @staticmethod
    async def _read(view: Subscription) -> None:
        while True:
            try:
                await view.next(timeout=60)
            except TimeoutError:
                continue

    async def leave(self) -> None:
        self._reader.cancel()
        self.view.cancel()
        await self._connection.__aexit__(None, None, None)
        self.client = self.view = None
        self.status = OFFLINE

    async def set(self, status: int) -> bool:
        """Set a status; a failure is recorded with how long it took to come."""
        started = time.monotonic()
        response = await self.client.set_status(status)
        kind = response.WhichOneof("response")
        if kind == "status":
            self.status = status
            return True
        self.failures.append((kind, time.monotonic() - started))
        return False

    async def set_until_done(self, status: int) -> None:
        await eventually(lambda: self.set(status), timeout=30)

    def wrong(self, truth: dict[str, int]) -> list[tuple[str, str, int, int]]:
        if self.view is None:
            return []
        return [
            (self.address, friend, self.view.view.get(friend, OFFLINE), truth[friend])
            for friend in self.friends
            if self.view.view.get(friend, OFFLINE) != truth[friend]
        ]


def build_graph(urls: list[str]) -> list[Client]:
    return [
        Client(address, token, friends, urls[i % len(urls)])
        for i, (address, token, friends) in enumerate(friend_ring(CLIENTS, FRIENDS_EACH_WAY))
    ]


async def online_friends_wrong(client: Client, truth: dict[str, int]) -> list[tuple]:
    """GetOnlineFriends against the truth: what Redis holds, not only what was pushed."""
    if client.client is None:
        return []
    expected = sorted(friend for friend in client.friends if truth[friend] != OFFLINE)
    try:
        listed = sorted(addresses(await client.client.online_friends()))
    except Exception as exc:
        return [(client.address, repr(exc))]
    return [] if listed == expected else [(client.address, "online friends", listed, expected)]


async def all_views_right(clients: list[Client], within: float) -> None:
    """Return once every connected client's pushed view and online friends equal the truth;
    fail after `within` seconds."""
    started = time.monotonic()
    truth = {client.address: client.status for client in clients}
    while True:
        wrong = [entry for client in clients for entry in client.wrong(truth)]
        if not wrong:
            listed = await asyncio.gather(*(online_friends_wrong(c, truth) for c in clients))
            wrong = [entry for entries in listed for entry in entries]
        if not wrong:
            return
        if time.monotonic() - started > within:
            raise AssertionError(f"{len(wrong)} wrong views, e.g. {wrong[:5]}")
        await asyncio.sleep(0.2)


async def churn(clients: list[Client], stop: asyncio.Event) -> None:
    """Each churner flips between AWAY and ONLINE, as fast as calls return, until `stop`."""

    async def one(client: Client) -> None:
        status = AWAY
        while not stop.is_set():
            await client.set(status)
            status = ONLINE if status == AWAY else AWAY
            await asyncio.sleep(0.05)

    await asyncio.gather(*(one(client) for client in clients))


def wait_between_heartbeats(cluster: SentinelCluster, interval: float) -> None:
    """Return at the start of FAILOVER_WINDOW_SECONDS in which no process beats."""
    with cluster.data(cluster.primary_port) as primary:
        beats = [
            json.loads(primary.get(key))["at_ms"] / 1000
            for key in primary.keys("presence:heartbeat:*")
        ]
    assert beats, "no heartbeat in Redis"
    now = time.time()
    upcoming = sorted(beat + k * interval for beat in beats for k in range(1, 4))
    for start in (beat + 0.2 for beat in upcoming):
        if start > now and not any(start < b < start + FAILOVER_WINDOW_SECONDS for b in upcoming):
            time.sleep(start - now)
            return
    raise AssertionError(f"no quiet window between heartbeats {upcoming}")


def lose_the_next_writes(cluster: SentinelCluster) -> None:
    """Make sure the replica never gets the writes that follow: freeze it, then fill the
    replication link with a large value so that what follows stays in the primary's memory,
    which the kill loses. A marker written first tells whether the loss happened."""
    os.kill(cluster.processes[cluster.replica_port].pid, signal.SIGSTOP)
    with cluster.data(cluster.primary_port) as primary:
        for part in range(4):
            primary.set(f"test:filler:{part}", b"x" * 8_000_000)
        primary.set("test:lost-marker", 1)


async def test_failover_under_load_reconnects_and_rebuilds_the_truth(
    cluster, sentinel_services, housekeeping
):
    clients = build_graph([service.ws_url for service in sentinel_services])
    try:
        await failover_under_load(cluster, clients, housekeeping)
        for service in sentinel_services:
            status, _, body = await asyncio.to_thread(http_raw, "GET", service.http_url + "/readyz")
            assert status == 200, body
    finally:
        await asyncio.gather(*(c.leave() for c in clients if c.client is not None))


async def failover_under_load(
    cluster: SentinelCluster, clients: list[Client], housekeeping: dict[str, str]
) -> None:
    joiners = [clients[i] for i in JOINERS]
    leavers = [clients[i] for i in LEAVERS]
    churners = [clients[i] for i in CHURNERS]
    await asyncio.gather(*(c.join() for c in clients if c not in joiners))
    await all_views_right(clients, within=30)

    stop_churn = asyncio.Event()
    load = asyncio.ensure_future(churn(churners, stop_churn))
    await asyncio.sleep(1.0)

    interval = float(housekeeping["PRESENCE_HEARTBEAT_SECONDS"])
    if interval > FAILOVER_WINDOW_SECONDS:
        await asyncio.to_thread(wait_between_heartbeats, cluster, interval)
    # Writes the replica will lack: users leave and others arrive just before the kill.
    await asyncio.to_thread(lose_the_next_writes, cluster)
    await asyncio.gather(*(c.leave() for c in leavers), *(c.join() for c in joiners))
    old_primary = cluster.primary_port
    os.kill(cluster.processes[old_primary].pid, signal.SIGKILL)
    killed_at = time.monotonic()
    os.kill(cluster.processes[cluster.replica_port].pid, signal.SIGCONT)

    while cluster.primary_as_sentinels_say() == old_primary:
        assert time.monotonic() - killed_at < 30, f"no promotion:\n{cluster}"
        await asyncio.sleep(0.1)
    promoted_at = time.monotonic()
    with cluster.data(cluster.replica_port) as promoted:
        assert promoted.get("test:lost-marker") is None, "the replica got every write"

    # The load goes on a little past the promotion; then each churner settles on a status.
    await asyncio.sleep(1.0)
    stop_churn.set()
    await load
    await asyncio.gather(
        *(c.set_until_done(ONLINE if i % 2 else AWAY) for i, c in enumerate(churners))
    )
    await all_views_right(clients, within=30)
    recovered_at = time.monotonic()

    failures = [failure for client in clients for failure in client.failures]
    print(
        f"\nSentinel failover, {CLIENTS} clients on 2 processes, heartbeat every "
        f"{housekeeping['PRESENCE_HEARTBEAT_SECONDS']} s, {housekeeping['CHANNEL_LAYER']} "
        "layer: promotion "
        f"{promoted_at - killed_at:.1f} s after the kill; every view correct "
        f"{recovered_at - killed_at:.1f} s after the kill "
        f"({recovered_at - promoted_at:.1f} s after the promotion); "
        f"{len(failures)} calls failed during the failover, slowest answer "
        f"{max((took for _, took in failures), default=0):.2f} s"
    )
    assert failures, "no call met the failover"
    assert {kind for kind, _ in failures} == {"internal_server_error"}
    assert max(took for _, took in failures) < 5
    assert recovered_at - promoted_at < 15
    # The connections lived through it.
    for client in clients:
        if client.client is not None:
            assert client.client.ws.close_code is None


async def test_sentinel_naming_an_unreachable_primary_is_unready_not_wrong(
    tmp_path, cluster, make_user
):
    running = start_service(tmp_path, {**cluster.service_env, **FAST_HOUSEKEEPING})
    try:
        alice, bob = make_user(), make_user()
        await befriend(running.ws_url, alice, bob)
        async with connect(running.ws_url, bob.token) as b:
            view = await b.subscribe_presence()
            async with connect(running.ws_url, alice.token) as a:
                assert (await a.set_status(ONLINE)).WhichOneof("response") == "status"
                await view.presence_until(alice.address, ONLINE)
            await view.presence_until(alice.address, OFFLINE)
            # Signing in (the replay store) and REST (DRF's throttle, in the cache) go
            # through the sentinels too: REDIS_URL's host does not exist.
            signed = new_identity().headers("post", "/api/v1/auth/token")
            for expected in (201, 401):
                status, _, body = await asyncio.to_thread(
                    http_raw, "POST", running.http_url + "/api/v1/auth/token", None, signed
                )
                assert status == expected, body
            assert b"used already" in body
            status, _, body = await asyncio.to_thread(
                http_raw, "GET", running.http_url + "/api/v1/friends/online/", bob.token
            )
            assert (status, json.loads(body)["count"]) == (200, 0), body
            # Commands find the primary through the sentinels too.
            command = await asyncio.to_thread(
                manage, "presence", "user", bob.address, "--json", env=cluster.service_env
            )
            assert command.returncode == 0, command.stderr
            assert json.loads(command.stdout)["connections"], command.stdout

            # Every data server gone, the sentinels up: they keep naming a primary that
            # does not answer (a failover needs a replica to promote).
            mark = running.log_mark()
            for port in (cluster.replica_port, cluster.primary_port):
                os.kill(cluster.processes[port].pid, signal.SIGKILL)
            status, _, body = await asyncio.to_thread(http_raw, "GET", running.http_url + "/readyz")
            assert status == 503
            checks = json.loads(body)["checks"]
            assert checks["redis"].startswith("the Sentinel primary 'presence' (sentinels ")
            assert cluster.password not in body.decode()
            assert cluster.sentinel_password not in body.decode()

            # Calls fail clearly; nothing pretends alice is online; the process lives.
            async with connect(running.ws_url, alice.token) as a:
                during = await a.set_status(ONLINE)
                assert during.WhichOneof("response") == "internal_server_error"
            assert (await b.set_status(ONLINE)).WhichOneof("response") == "internal_server_error"
            await view.expect_nothing(1.0)
            assert running.process.poll() is None
            status, _, _ = await asyncio.to_thread(http_raw, "GET", running.http_url + "/healthz")
            assert status == 200
            await asyncio.sleep(1.5)
            logged = running.logged_since(mark)
            assert "readiness: redis is failing: the Sentinel primary 'presence'" in logged
            assert "presence housekeeping failed on the Sentinel primary 'presence'" in logged
            assert cluster.password not in logged
            assert cluster.sentinel_password not in logged

            # No sentinel answers either: the same, saying so.
            for port in cluster.sentinel_ports:
                os.kill(cluster.processes[port].pid, signal.SIGKILL)
            status, _, body = await asyncio.to_thread(http_raw, "GET", running.http_url + "/readyz")
            assert status == 503
            assert "MasterNotFoundError: No master found for 'presence'" in body.decode()
            assert (await b.set_status(AWAY)).WhichOneof("response") == "internal_server_error"
            assert running.process.poll() is None
    finally:
        stop_service(running)
