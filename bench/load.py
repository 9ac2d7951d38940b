"""Client processes: many dcl-rpc connections each, driven by commands from the runner.

A worker runs in its own process (pinned to the load cores), holds its users' connections
on one event loop and answers one command at a time over a pipe. Times are taken with
time.monotonic_ns(), which is one clock for every process of the machine, so a request
sent by one worker and an update received by another can be subtracted.
"""

import asyncio
import contextlib
import http.client
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench import wsclient
from bench.system import die_with_parent
from presence.protocol import friendships_service_pb2 as pb
from presence.rpc import wire
from presence.rpc.client import RemoteError, RpcClient
from presence.rpc.wire import MessageType

ONLINE, OFFLINE, AWAY = 0, 1, 2
MODULE = "FriendshipsService"


@dataclass(frozen=True)
class User:
    address: str
    token: str
    friends: frozenset[str]
    port: int


@dataclass
class Peer:
    """One user's connection and what its presence subscription has shown it."""

    user: User
    ws: wsclient.WebSocket
    rpc: RpcClient
    port_id: int
    procedures: dict[str, int]
    view: dict[str, int] = field(default_factory=dict)
    first_item: asyncio.Event = field(default_factory=asyncio.Event)
    subscription: "PresenceItems | None" = None
    changing: bool = False
    status: int = OFFLINE
    errors: int = 0
    # The parcel x the peer last shared (its walk along a row of Genesis City).
    x: int = 0

    async def call(self, name: str, request: Any) -> bytes:
        return await self.rpc.call(self.port_id, self.procedures[name], request.SerializeToString())

    async def set_status(self, status: int) -> None:
        raw = await self.call("SetPresenceStatus", pb.StatusPayload(status=pb.Status(type=status)))
        response = pb.StatusResponse.FromString(raw)
        if response.WhichOneof("response") != "status":
            raise RemoteError(0, f"SetPresenceStatus answered {response}")
        self.status = status

    async def step(self) -> None:
        """Walk one parcel and share it (SetLocation)."""
        x = self.x + 1 if self.x < 150 else -150
        request = pb.LocationPayload(location=pb.Location(realm="main", x=x, y=0))
        response = pb.LocationResponse.FromString(await self.call("SetLocation", request))
        if response.WhichOneof("response") != "presence":
            raise RemoteError(0, f"SetLocation answered {response}")
        self.x = x

    @property
    def subscribed(self) -> bool:
        """Its presence subscription is open (and the connection too)."""
        return self.subscription is not None and self.subscription.open and not self.ws.closed

    async def close(self) -> None:
        await self.rpc.close()
        await self.ws.close()


class PresenceItems:
    """A peer's presence subscription, read inside the socket's callback: each item is
    handed to the worker and acked at once (the same frames @dcl/rpc sends), with no task
    switch, so that the clients cost little per update and do not hide the server's cost.
    Anything else on the connection (the stream's end, errors) goes on to the RpcClient."""

    def __init__(self, worker: "Worker", peer: Peer, number: int, port_id: int) -> None:
        self.worker, self.peer = worker, peer
        self.number, self.port_id = number, port_id
        self.open = True

    def start(self) -> None:
        """Ask for the first item (the stream's offer, sequence 0, has arrived)."""
        self.peer.ws.intercept = self
        self.peer.ws.send_now(wire.stream_ack(self.number, self.port_id, 0))

    def __call__(self, data: bytes) -> bool:
        try:
            frame = wire.decode(data)
        except wire.MalformedFrame:
            return False
        if frame.number != self.number:
            return False
        message = frame.message
        if frame.type != MessageType.STREAM_MESSAGE or message.closed:  # type: ignore[union-attr]
            self.open = False
            return False
        self.worker.received(self.peer, message.payload, time.monotonic_ns())  # type: ignore[union-attr]
        self.peer.ws.send_now(wire.stream_ack(self.number, self.port_id, message.sequence_id))  # type: ignore[union-attr]
        return True


@dataclass
class Expectation:
    """Friends of `actor` that have not yet seen it in `status` since the round began."""

    actor: str
    status: int
    waiting: set[str]
    last_ns: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Worker:
    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.peers: dict[str, Peer] = {}
        self.recording = False
        self.receipts: list[tuple[str, int, int]] = []
        self.expectation: Expectation | None = None
        self.items = 0
        self.stream_errors = 0

    # --- Connections ---------------------------------------------------------------------

    async def _open(self, user: User, subscribe: bool) -> Peer:
        ws = await wsclient.connect("127.0.0.1", user.port, f"/?access_token={user.token}")
        rpc = RpcClient(ws)
        try:
            port_id = await rpc.create_port("bench")
            procedures = await rpc.load_module(port_id, MODULE)
        except BaseException:
            await rpc.close()
            await ws.close(0)
            raise
        peer = Peer(user, ws, rpc, port_id, procedures)
        if subscribe:
            stream = await rpc.open_stream(
                port_id,
                procedures["SubscribeFriendshipPresenceUpdates"],
                pb.Payload().SerializeToString(),
            )
            peer.subscription = PresenceItems(self, peer, stream.number, port_id)
            peer.subscription.start()
        return peer

    def received(self, peer: Peer, raw: bytes, now: int) -> None:
        """One presence item of `peer`'s subscription, read at `now`."""
        item = pb.SubscribeFriendshipPresenceUpdatesResponse.FromString(raw)
        if item.WhichOneof("response") != "updates":
            self.stream_errors += 1
            return
        self.items += 1
        expected = self.expectation
        for update in item.updates.users:
            friend, status = update.user.address, update.status.type
            peer.view[friend] = status
            if self.recording:
                self.receipts.append((friend, update.last_seen, now))
            if (
                expected is not None
                and friend == expected.actor
                and status == expected.status
                and peer.user.address in expected.waiting
            ):
                expected.waiting.discard(peer.user.address)
                expected.last_ns = max(expected.last_ns, now)
                if not expected.waiting:
                    expected.done.set()
        peer.first_item.set()

    async def open(
        self, users: list[User], subscribe: bool, wait_first: bool, concurrency: int
    ) -> dict[str, Any]:
        """Connect, authenticate, load the module and (optionally) subscribe, `concurrency`
        at a time; with wait_first, a user counts once its first presence item arrived."""
        remaining = iter(users)
        failures: list[str] = []
        started = time.monotonic_ns()

        async def lane() -> None:
            for user in remaining:
                try:
                    peer = await self._open(user, subscribe)
                    if wait_first:
                        await asyncio.wait_for(peer.first_item.wait(), 30)
                    self.peers[user.address] = peer
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return {
            "opened": len(users) - len(failures),
            "failed": len(failures),
            "errors": failures[:3],
            "started_ns": started,
            "finished_ns": time.monotonic_ns(),
        }

    async def close_all(self) -> dict[str, Any]:
        peers, self.peers = list(self.peers.values()), {}
        await _bounded(peers, lambda peer: peer.close(), 100)
        return {"closed": len(peers)}

    # --- Presence ------------------------------------------------------------------------

    async def set_all(self, status: int, addresses: list[str] | None = None) -> dict[str, Any]:
        """Set `status` on every connection, or on those of `addresses`."""
        peers = list(self.peers.values())
        if addresses is not None:
            peers = [self.peers[a] for a in addresses if a in self.peers]
        failures = 0

        async def one(peer: Peer) -> None:
            nonlocal failures
            try:
                await peer.set_status(status)
            except Exception:
                failures += 1

        await _bounded(peers, one, 100)
        return {"failed": failures}

    async def wait_views(self, status: int, timeout: float) -> dict[str, Any]:
        """Wait until every subscribed peer sees all its friends in `status`."""

        def incomplete() -> int:
            return sum(
                1
                for peer in self.peers.values()
                if peer.subscribed and any(peer.view.get(f) != status for f in peer.user.friends)
            )

        for _ in range(int(timeout * 10)):
            if not incomplete():
                break
            await asyncio.sleep(0.1)
        return {"incomplete": incomplete()}

    def expect(self, actor: str, status: int, friends: list[str]) -> dict[str, Any]:
        self.expectation = Expectation(actor, status, {f for f in friends if f in self.peers})
        if not self.expectation.waiting:
            self.expectation.done.set()
        return {}

    async def collect(self, timeout: float) -> dict[str, Any]:
        expected = self.expectation
        assert expected is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(expected.done.wait(), timeout)
        self.expectation = None
        return {"last_ns": expected.last_ns, "missing": len(expected.waiting)}

    async def set_status(self, address: str, status: int) -> dict[str, Any]:
        """One timed change: monotonic send time, and the wall-clock window (ms) in which
        the server stamped it, which names the change in last_seen."""
        peer = self.peers[address]
        before = time.time_ns() // 1_000_000
        sent = time.monotonic_ns()
        await peer.set_status(status)
        return {"sent_ns": sent, "wall": (before, time.time_ns() // 1_000_000)}

    def record(self, on: bool) -> dict[str, Any]:
        self.recording = on
        if on:
            self.receipts = []
            self.items = 0
        return {}

    def take_receipts(self) -> dict[str, Any]:
        receipts, self.receipts = self.receipts, []
        return {"receipts": receipts, "items": self.items}

    async def changes(self, rate: float, duration: float, walk: bool = False) -> dict[str, Any]:
        """Open-loop status changes at `rate` per second for `duration` seconds, round robin
        over this worker's peers, each alternating ONLINE and AWAY (with `walk`, each one
        parcel further, SetLocation). A peer whose previous change is still in flight is
        skipped (and counted): under overload the offered rate drops instead of a user's
        changes overtaking each other."""
        peers = list(self.peers.values())
        random.shuffle(peers)
        loop = asyncio.get_running_loop()
        interval = 1 / rate
        start = loop.time()
        end = start + duration
        sent: list[tuple[str, int, int, int]] = []
        failed = skipped = 0
        tasks: set[asyncio.Task[None]] = set()

        async def change(peer: Peer) -> None:
            nonlocal failed
            peer.changing = True
            status = AWAY if peer.status == ONLINE else ONLINE
            before = time.time_ns() // 1_000_000
            sent_ns = time.monotonic_ns()
            try:
                await (peer.step() if walk else peer.set_status(status))
                sent.append((peer.user.address, sent_ns, before, time.time_ns() // 1_000_000))
            except Exception:
                failed += 1
            finally:
                peer.changing = False

        index = 0
        due = start
        while due < end:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            peer = peers[index % len(peers)]
            index += 1
            due += interval
            if peer.changing:
                skipped += 1
                continue
            task = asyncio.create_task(change(peer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        return {"sent": sent, "failed": failed, "skipped": skipped}

    # --- Queries -------------------------------------------------------------------------

    async def query_rpc(self, addresses: list[str], count: int, interval: float) -> dict[str, Any]:
        """`count` GetOnlineFriends, one at a time, one every `interval` s at most, taking
        turns among the connections of `addresses` so that none exceeds the service's
        per-connection frame budget: (µs each, friends the last one returned)."""
        peers = [self.peers[address] for address in addresses]
        payload = pb.Payload().SerializeToString()
        loop = asyncio.get_running_loop()
        times, found = [], 0
        due = loop.time()
        for number in range(count):
            await asyncio.sleep(max(0.0, due - loop.time()))
            due += interval
            peer = peers[number % len(peers)]
            procedure = peer.procedures["GetOnlineFriends"]
            started = time.perf_counter_ns()
            stream = await peer.rpc.open_stream(peer.port_id, procedure, payload)
            found = 0
            async for raw in stream:
                response = pb.UsersResponse.FromString(raw)
                if response.WhichOneof("response") != "users":
                    raise RuntimeError(f"GetOnlineFriends answered {response}")
                found += len(response.users.users)
            times.append((time.perf_counter_ns() - started) / 1000)
        return {"us": times, "found": found}

    def query_rest(self, port: int, tokens: list[str], count: int, interval: float) -> dict:
        """`count` GET /api/v1/friends/online/, one at a time, one every `interval` s at most,
        taking turns among the users of `tokens` (each on its own keep-alive connection) so
        that none exceeds the REST user rate."""
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in tokens]
        times, found = [], 0
        due = time.monotonic()
        try:
            for number in range(count):
                time.sleep(max(0.0, due - time.monotonic()))
                due += interval
                connection = connections[number % len(connections)]
                headers = {"Authorization": f"Bearer {tokens[number % len(tokens)]}"}
                started = time.perf_counter_ns()
                connection.request("GET", "/api/v1/friends/online/?limit=1000", headers=headers)
                response = connection.getresponse()
                body = response.read()
                times.append((time.perf_counter_ns() - started) / 1000)
                if response.status != 200:
                    raise RuntimeError(f"REST answered {response.status}: {body[:200]!r}")
                found = len(json.loads(body)["results"])
        finally:
            for connection in connections:
                connection.close()
        return {"us": times, "found": found}

    # --- Soak ----------------------------------------------------------------------------

    async def soak(
        self, users: list[User], seconds: float, pause: float, seed: int
    ) -> dict[str, Any]:
        """Users connect, subscribe, change status and disconnect at random for `seconds`;
        then each ends connected with a random status (4 in 5) or disconnected. Returns the
        truth: the status each user's friends must see."""
        rng = random.Random(seed)
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        counts = {"connects": 0, "changes": 0, "disconnects": 0, "errors": 0}
        truth: dict[str, int] = {}
        history: dict[str, list[tuple[float, str]]] = {user.address: [] for user in users}

        def note(user: User, action: str) -> None:
            history[user.address] = [*history[user.address][-4:], (time.time(), action)]

        async def connect(user: User) -> Peer | None:
            try:
                peer = await self._open(user, subscribe=True)
                note(user, "connected")
                counts["connects"] += 1
                self.peers[user.address] = peer
                return peer
            except Exception:
                counts["errors"] += 1
                return None

        async def disconnect(peer: Peer) -> None:
            self.peers.pop(peer.user.address, None)
            await peer.close()
            note(peer.user, "disconnected")
            counts["disconnects"] += 1

        async def pause_for(seconds: float) -> None:
            """Sleep, but never past the end of the churn."""
            await asyncio.sleep(max(0.0, min(seconds, until - loop.time())))

        async def life(user: User) -> None:
            await pause_for(rng.uniform(0, pause))
            while loop.time() < until:
                peer = await connect(user)
                if peer is None:
                    await pause_for(pause)
                    continue
                for _ in range(rng.randint(1, 4)):
                    try:
                        status = rng.choice((ONLINE, AWAY, OFFLINE))
                        await peer.set_status(status)
                        note(user, f"status {status}")
                        counts["changes"] += 1
                    except Exception:
                        counts["errors"] += 1
                    await pause_for(rng.uniform(0.5, 2) * pause)
                    if loop.time() >= until:
                        break
                if loop.time() < until:
                    await disconnect(peer)
                    await pause_for(rng.uniform(0.2, 1) * pause)
            peer = self.peers.get(user.address)
            if rng.random() < 0.8:
                peer = peer or await connect(user)
                final = rng.choice((ONLINE, AWAY, OFFLINE))
                if peer is not None:
                    try:
                        await peer.set_status(final)
                        note(user, f"final status {final}")
                        truth[user.address] = final
                        return
                    except Exception:
                        counts["errors"] += 1
                        await disconnect(peer)
            elif peer is not None:
                await disconnect(peer)
            truth[user.address] = OFFLINE

        await asyncio.gather(*(life(user) for user in users))
        return {"truth": truth, "history": history, **counts}

    def views(self) -> dict[str, Any]:
        return {
            "views": {
                address: (sorted(peer.user.friends), peer.view)
                for address, peer in self.peers.items()
                if peer.subscribed
            },
            "stream_errors": self.stream_errors,
        }

    # --- The command loop ----------------------------------------------------------------

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        loop.add_reader(self.pipe.fileno(), lambda: commands.put_nowait(self.pipe.recv()))
        handlers: dict[str, Callable[..., Any]] = {
            "open": self.open,
            "close_all": self.close_all,
            "set_all": self.set_all,
            "wait_views": self.wait_views,
            "expect": self.expect,
            "collect": self.collect,
            "set_status": self.set_status,
            "record": self.record,
            "take_receipts": self.take_receipts,
            "changes": self.changes,
            "query_rpc": self.query_rpc,
            "query_rest": self.query_rest,
            "soak": self.soak,
            "views": self.views,
        }
        while True:
            name, arguments = await commands.get()
            if name == "exit":
                await self.close_all()
                self.pipe.send({})
                return
            try:
                result = handlers[name](**arguments)
                if asyncio.iscoroutine(result):
                    result = await result
                self.pipe.send(result)
            except Exception as exc:
                self.pipe.send({"error": f"{name}: {type(exc).__name__}: {exc}"})


async def _bounded(
    items: list[Any], call: Callable[[Any], Awaitable[None]], concurrency: int
) -> None:
    remaining = iter(items)

    async def lane() -> None:
        for item in remaining:
            await call(item)

    await asyncio.gather(*(lane() for _ in range(concurrency)))


def main(pipe: Connection, cpus: set[int]) -> None:
    """Entry point of a worker process."""
    die_with_parent()
    os.sched_setaffinity(0, cpus)
    asyncio.run(Worker(pipe).serve())
