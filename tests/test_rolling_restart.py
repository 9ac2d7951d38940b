"""Deploys without flapping: a process given SIGTERM drains, stops listening, closes its
WebSockets with 1012 and a reason, and keeps their users counted for the grace period, so
that users who reconnect to another process meanwhile never show OFFLINE to friends, and
those who do not go OFFLINE after it. A rolling restart of three processes behind HAProxy
under 500 subscribed clients, then each piece of the shutdown on its own."""

import asyncio
import json
import random
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import redis
import websockets
from django.conf import settings
from websockets.exceptions import ConnectionClosed, WebSocketException

from presence.rpc.client import StreamClosed
from presence.store import keys
from presence_project.shutdown import CLOSE_SERVICE_RESTART, REASON
from tests.held_page_urls import HELD_PAGE
from tests.support import (
    OFFLINE,
    ONLINE,
    Service,
    Subscription,
    User,
    befriend,
    closed_with,
    connect,
    eventually,
    friend_ring,
    haproxy,
    http_raw,
    outcome,
    presences_of,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

USERS = 500
# Every tenth user gives up when its connection is closed; the others reconnect.
GIVES_UP_EVERY = 10
# Above HAProxy's two failed probes a second apart (deploy/haproxy.cfg), so that the
# balancer sends a draining process no new clients before it stops listening.
DRAIN_SECONDS = 3
# Longer than the default, so that the slowest of hundreds of clients reconnecting at once
# on a shared, loaded machine is back within it.
GRACE_SECONDS = 8
RESTARTING = {
    "PRESENCE_DRAIN_SECONDS": str(DRAIN_SECONDS),
    "PRESENCE_RESTART_GRACE_SECONDS": str(GRACE_SECONDS),
}
# How late this test's loop may note a close, with 500 clients on it.
LATENESS = 1.0


@dataclass(frozen=True)
class Close:
    at: float
    code: int | None
    reason: str | None


@dataclass
class Client:
    """A user's client: subscribed to its friends' presence, ONLINE, and on a new connection
    shortly after the server closes its own, unless it is one that gives up (`returns`
    False). It keeps every presence entry it receives, snapshots included."""

    address: str
    token: str
    friends: set[str]
    returns: bool
    # (when, friend, status) of every entry received.
    seen: list[tuple[float, str, int]] = field(default_factory=list)
    closes: list[Close] = field(default_factory=list)
    # When each connection had set the user ONLINE.
    online_at: list[float] = field(default_factory=list)
    # Connections that could not be opened: none are expected.
    failures: list[str] = field(default_factory=list)
    view: dict[str, int] = field(default_factory=dict)
    connected: bool = False

    async def run(self, url: str, ready: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            ws = None
            try:
                async with connect(url, self.token) as client:
                    ws = client.ws
                    await self._follow(client, ready)
            except (StreamClosed, OSError, TimeoutError, WebSocketException) as exc:
                if ws is None:
                    self.failures.append(repr(exc))
            self.connected = False
            if ws is not None:
                self.closes.append(Close(loop.time(), ws.close_code, ws.close_reason))
            if not self.returns:
                return
            # Clients spread their reconnections, as real ones back off with jitter.
            await asyncio.sleep(random.uniform(0.05, 0.5))

    async def _follow(self, client: object, ready: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        subscription = await client.subscribe_presence()
        try:
            assert outcome(await client.set_status(ONLINE)) == ("status", "")
            self.online_at.append(loop.time())
            self.view, self.connected = subscription.view, True
            ready.set()
            while True:
                item = await subscription.next(timeout=3600)
                now = loop.time()
                self.seen += [(now, friend, status) for friend, status in presences_of(item)]
        finally:
            subscription.cancel()

    def closed_since(self, moment: float) -> list[Close]:
        return [close for close in self.closes if close.at >= moment]


def here(clients: list[Client]) -> set[str]:
    """Users whose friends must see them ONLINE: all but those who gave up."""
    return {c.address for c in clients if c.returns or not c.closes}


def wrong_views(clients: list[Client]) -> list[tuple[str, str, int]]:
    online = here(clients)
    return [
        (client.address, friend, client.view.get(friend, OFFLINE))
        for client in clients
        if client.connected
        for friend in client.friends
        if client.view.get(friend, OFFLINE) != (ONLINE if friend in online else OFFLINE)
    ]


async def told_offline(leavers: list[Client], clients: list[Client]) -> bool:
    """Whether every friend of `leavers` has been told they are OFFLINE; failing if one was
    told before the grace period was over."""
    by_address = {c.address: c for c in clients}
    for leaver in leavers:
        earliest = leaver.closes[0].at + GRACE_SECONDS - LATENESS
        for friend in leaver.friends:
            told = [
                when
                for when, whom, status in by_address[friend].seen
                if (whom, status) == (leaver.address, OFFLINE)
            ]
            if not told:
                return False
            assert min(told) >= earliest, (leaver.address, friend, min(told) - earliest)
    return True


async def refused(port: int, within: float) -> None:
    """Return once nothing listens on `port` any more."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return
        writer.close()
        assert loop.time() < deadline, f"port {port} still listens after {within} s"
        await asyncio.sleep(0.1)


async def balancer_sends_to(log: Path, number: int, times: int) -> None:
    """Return once HAProxy has brought server presence-<number> up `times` times."""
    line = f"presence/presence-{number} is UP"

    async def up() -> bool:
        text = await asyncio.to_thread(log.read_text, errors="replace")
        return text.count(line) >= times

    await eventually(up, timeout=15, interval=0.2)


async def test_rolling_restart_under_500_clients_shows_no_spurious_offline(tmp_path):
    loop = asyncio.get_running_loop()
    services = [start_service(tmp_path, RESTARTING) for _ in range(3)]
    clients = [
        Client(address, token, friends, returns=i % GIVES_UP_EVERY != 0)
        for i, (address, token, friends) in enumerate(friend_ring(USERS, 2))
    ]
    returners = {c.address for c in clients if c.returns}
    runs: list[asyncio.Task[None]] = []
    log = tmp_path / "haproxy.log"
    try:
        with haproxy([s.port for s in services], log) as url:
            for start in range(0, USERS, 50):
                batch = [asyncio.Event() for _ in clients[start : start + 50]]
                for client, ready in zip(clients[start : start + 50], batch, strict=True):
                    runs.append(asyncio.ensure_future(client.run(url, ready)))
                await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in batch)), 30)

            async def views_right() -> bool:
                return not wrong_views(clients)

            await eventually(views_right, timeout=15)
            reconnect_times: list[float] = []

            for number, old in enumerate(list(services), start=1):
                began = loop.time()
                old.process.send_signal(signal.SIGTERM)
                # It drains, stops listening, and its replacement takes the port meanwhile.
                await refused(old.port, within=DRAIN_SECONDS + 5)
                replacement = await asyncio.to_thread(
                    start_service, tmp_path, RESTARTING, (), old.port
                )
                services[number - 1] = replacement
                # The old one exits once the grace period is over.
                assert await asyncio.to_thread(old.process.wait, GRACE_SECONDS + 15) == 0
                assert "did not come back" in old.log_tail(), old.log_tail()

                moved = [c for c in clients if c.closed_since(began)]
                assert moved, f"restart {number}: no client was connected to the process"
                # Each saw one close, 1012 with the reason, and no other client any.
                closes = {(c.address, close) for c in moved for close in c.closed_since(began)}
                assert len(closes) == len(moved), closes
                wrong = [
                    (address, close.code, close.reason)
                    for address, close in closes
                    if (close.code, close.reason) != (CLOSE_SERVICE_RESTART, REASON)
                ]
                assert not wrong, wrong
                # Those who come back do so within the grace period.
                for client in moved:
                    if client.returns:
                        closed = client.closed_since(began)[0].at
                        back = [at for at in client.online_at if at > closed]
                        assert back, f"{client.address} did not reconnect"
                        reconnect_times.append(back[0] - closed)
                assert max(reconnect_times) < GRACE_SECONDS, max(reconnect_times)

                # Friends of those who did not come back see them OFFLINE, and only once
                # the grace period is over.
                gone = [c for c in moved if not c.returns]
                await eventually(partial(told_offline, gone, clients), timeout=10)
                # The replacement takes clients before the next process drains.
                await balancer_sends_to(log, number, times=1)
                await eventually(views_right, timeout=10)

            assert all(c.closes for c in clients if not c.returns), "a leaver was never moved"
            # Nobody ever saw a user who came back in time go OFFLINE: no update said so,
            # and no snapshot left them out (they never change after the start, so a
            # reconnected client's view holds them only if its snapshot did).
            spurious = [
                (c.address, whom, when)
                for c in clients
                for when, whom, status in c.seen
                if whom in returners and status == OFFLINE
            ]
            assert not spurious, spurious[:10]
            assert not wrong_views(clients)
            failures = [(c.address, c.failures) for c in clients if c.failures]
            assert not failures, failures[:10]
            ordered = sorted(reconnect_times)
            print(
                f"{len(ordered)} reconnections, ONLINE again after the close in "
                f"{ordered[len(ordered) // 2]:.2f} s (median), "
                f"{ordered[len(ordered) * 9 // 10]:.2f} s (p90), {ordered[-1]:.2f} s (slowest); "
                f"grace {GRACE_SECONDS} s"
            )
            assert all(not run.done() for run, c in zip(runs, clients, strict=True) if c.returns)
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for running in services:
            stop_service(running)


def _kept_alive(port: int) -> socket.socket:
    """A connection that served one HTTP/1.1 request and stays open for another."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    status, _ = _request(sock, "/healthz")
    assert status == 200
    return sock


def _request(sock: socket.socket, path: str) -> tuple[int, bytes]:
    """(status, body) of a GET on an open connection, its body read by Content-Length."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers["content-length"]):
        body += sock.recv(4096)
    return int(lines[0].split()[1]), body


def _registered(service: Service) -> list[str]:
    """What Redis holds of `service`'s process: its name among the processes, its heartbeat."""
    pid = f":{service.process.pid}#"
    with redis.Redis.from_url(settings.REDIS_URL, decode_responses=True) as client:
        names = [p for p in client.smembers(keys.PROCESSES) if pid in p]
        beats = [k for k in client.keys(keys.HEARTBEAT.format("*")) if pid in k]
    return names + beats


def _connections_of(address: str) -> set[str]:
    with redis.Redis.from_url(settings.REDIS_URL, decode_responses=True) as client:
        return client.smembers(keys.CONNECTIONS.format(address))


async def test_a_draining_process_refuses_new_connections_then_exits(tmp_path, make_user):
    """After the drain: the port is closed; a connection kept open from before gets 503 for
    a request and 1012 for a WebSocket, with the reason; an open WebSocket is closed with
    1012; its user stays counted for the grace period, then the process disconnects it and
    deregisters; a request in flight all along is answered; then the process exits."""
    env = {
        "PRESENCE_DRAIN_SECONDS": "1",
        "PRESENCE_RESTART_GRACE_SECONDS": "2",
        # A page that holds its request until tmp_path/release exists.
        "DJANGO_SETTINGS_MODULE": "tests.held_page_settings",
        "HELD_PAGE_DIR": str(tmp_path),
    }
    running = start_service(tmp_path, env)
    alice = make_user()
    try:
        for_request = await asyncio.to_thread(_kept_alive, running.port)
        for_websocket = await asyncio.to_thread(_kept_alive, running.port)
        held = asyncio.ensure_future(
            asyncio.to_thread(http_raw, "GET", f"{running.http_url}/{HELD_PAGE}", timeout=60)
        )
        await eventually(partial(asyncio.to_thread, (tmp_path / "started").exists))
        async with connect(running.ws_url, alice.token) as client:
            assert outcome(await client.set_status(ONLINE)) == ("status", "")
            assert _registered(running)
            running.process.send_signal(signal.SIGTERM)
            assert await closed_with(client.ws, within=6) == CLOSE_SERVICE_RESTART
            assert client.ws.close_reason == REASON
        # Counted still: a reconnection elsewhere would show friends nothing.
        assert len(_connections_of(alice.address)) == 1
        await refused(running.port, within=3)

        status, body = await asyncio.to_thread(_request, for_request, "/api/v1/friends/")
        assert (status, json.loads(body)) == (503, {"detail": REASON})
        async with websockets.connect(running.ws_url, sock=for_websocket) as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert (ws.close_code, ws.close_reason) == (CLOSE_SERVICE_RESTART, REASON)

        # Disconnected after the grace period, and gone from Redis without being reaped.
        async def handed_over() -> bool:
            return "disconnected 1 connections that did not come back" in running.log_tail()

        await eventually(handed_over, timeout=10)
        assert _connections_of(alice.address) == set()
        assert _registered(running) == []
        # The request in flight is waited for, then answered, and the process exits.
        await asyncio.sleep(1)
        assert running.process.poll() is None and not held.done()
        (tmp_path / "release").touch()
        assert (await held)[::2] == (200, b"released")
        assert await asyncio.to_thread(running.process.wait, 10) == 0
        for_request.close()
    finally:
        (tmp_path / "release").touch()
        stop_service(running)


@asynccontextmanager
async def closed_for_restart(
    tmp_path: Path, make_user: Callable[[], User], env: dict[str, str]
) -> AsyncIterator[tuple[Service, Subscription, User]]:
    """Alice ONLINE on a process with `env` and Bob, her friend, watching from another; the
    first gets SIGTERM and closes Alice's connection with 1012. Yields (that process, Bob's
    subscription, Alice)."""
    fast = {"PRESENCE_HEARTBEAT_SECONDS": "1", "PRESENCE_PROCESS_TTL_SECONDS": "2"}
    stopping, other = start_service(tmp_path, {**fast, **env}), start_service(tmp_path, fast)
    alice, bob = make_user(), make_user()
    try:
        await befriend(other.ws_url, alice, bob)
        async with connect(other.ws_url, bob.token) as watcher:
            updates = await watcher.subscribe_presence()
            async with connect(stopping.ws_url, alice.token) as client:
                assert outcome(await client.set_status(ONLINE)) == ("status", "")
                await updates.presence_until(alice.address, ONLINE)
                stopping.process.send_signal(signal.SIGTERM)
                assert await closed_with(client.ws) == CLOSE_SERVICE_RESTART
            yield stopping, updates, alice
            updates.cancel()
    finally:
        stop_service(stopping)
        stop_service(other)


async def test_a_process_killed_during_its_grace_period_is_reaped(tmp_path, make_user):
    """kill -9 after the 1012 closes: the process is reaped as any dead one, and friends see
    its users OFFLINE long before its grace period would have ended."""
    grace = {"PRESENCE_RESTART_GRACE_SECONDS": "60"}
    async with closed_for_restart(tmp_path, make_user, grace) as (doomed, updates, alice):
        await updates.expect_nothing(within=1)
        doomed.process.kill()
        killed = asyncio.get_running_loop().time()
        await updates.presence_until(alice.address, OFFLINE, timeout=10)
        assert asyncio.get_running_loop().time() - killed < 10


async def test_an_offline_waiting_to_be_coalesced_goes_out_before_exit(tmp_path, make_user):
    """The disconnection after the grace period falls within the user's coalescing window:
    the process sends it before it exits, or friends would never see the user leave."""
    env = {"PRESENCE_STATUS_COALESCE_MS": "60000", "PRESENCE_RESTART_GRACE_SECONDS": "1"}
    async with closed_for_restart(tmp_path, make_user, env) as (leaving, updates, alice):
        assert await asyncio.to_thread(leaving.process.wait, 10) == 0
        await updates.presence_until(alice.address, OFFLINE, timeout=5)
