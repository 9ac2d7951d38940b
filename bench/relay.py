"""The floor: the same presence fan-out with nothing but `websockets` and Redis pub/sub.

    python -m bench.relay --port 9000 --redis-url redis://127.0.0.1:6379/0 --graph graph.json
    python -m bench.relay --server daphne ...    (the same, served by the service's daphne)

A minimal dcl-rpc server for the two procedures the benchmark drives, SetPresenceStatus and
SubscribeFriendshipPresenceUpdates, with the service's stream semantics (one item per ack;
while the client has not acked, the latest state per friend waits) and none of its work:
no database, no presence state, no channel layer. A status change is one PUBLISH on the
user's channel; each process SUBSCRIBEs once to every channel its connections follow and
hands each message to those connections. A subscription's first item is what the process
heard of the friends since it started (the service reads it from Redis). The token comes
in the URL (`?access_token=`) or, as ADR-246 has it, in the subscription's payload. What
the service costs above this is the price of its features and of its framework.

With `--server daphne`, the same relay is an ASGI application behind the service's own
server (presence_project.server: daphne, Twisted, autobahn, uvloop, admission pacing): what
the fixed stack's WebSocket server costs with none of the service's work.
"""

import argparse
import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from presence.admission import SET_UP
from presence.protocol import friendships_service_pb2 as fs
from presence.rpc import dcl_rpc_pb2 as rpc
from presence.rpc import wire
from presence.rpc.wire import MessageType

SET_STATUS, SUBSCRIBE = 1, 2
_tasks: set[asyncio.Task[None]] = set()  # sends and the reader, referenced while they run
PROCEDURES = {SET_STATUS: "SetPresenceStatus", SUBSCRIBE: "SubscribeFriendshipPresenceUpdates"}


class Connection(Protocol):
    """A server-side WebSocket as the relay uses it: a `websockets` connection, or an ASGI
    one (AsgiConnection)."""

    async def send(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


def _spawn(call: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(call)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def channel_of(address: str) -> str:
    return f"relay:{address}"


class Stream:
    """One open presence subscription: what waits for the client's next ack."""

    def __init__(self, connection: Connection, number: int, port_id: int) -> None:
        self.connection = connection
        self.number = number
        self.port_id = port_id
        self.sequence = 0
        self.asked = False
        self.pending: dict[str, fs.UserPresence] = {}

    def offer(self, presence: fs.UserPresence) -> None:
        self.pending.pop(presence.user.address, None)
        self.pending[presence.user.address] = presence
        self.flush()

    def acked(self, sequence: int) -> None:
        if sequence == self.sequence:
            self.asked = True
            self.flush()

    def flush(self) -> None:
        # The first item (the snapshot) goes out even when empty: the client waits for it.
        if not self.asked or (self.sequence and not self.pending):
            return
        self.asked = False
        self.sequence += 1
        item = fs.SubscribeFriendshipPresenceUpdatesResponse(
            updates=fs.FriendshipPresenceUpdates(users=list(self.pending.values()))
        )
        self.pending.clear()
        frame = wire.stream_message(
            self.number, self.port_id, self.sequence, item.SerializeToString()
        )
        _spawn(self.connection.send(frame))


class Relay:
    def __init__(self, redis_url: str, graph: dict[str, dict]) -> None:
        self.redis = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url))
        self.pubsub = self.redis.pubsub()
        self.tokens: dict[str, str] = graph["tokens"]
        self.friends: dict[str, list[str]] = graph["friends"]
        self.followers: dict[str, set[Stream]] = {}
        # Each followed user's latest publication: a new subscription's snapshot.
        self.latest: dict[str, fs.UserPresence] = {}

    async def start(self) -> None:
        # A channel nobody publishes on keeps the reader's subscription alive from the start.
        await self.pubsub.subscribe(channel_of(""))
        _spawn(self._read())

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] != "message":
                continue
            channel = message["channel"].decode()
            presence = self.latest[channel] = fs.UserPresence.FromString(message["data"])
            for stream in self.followers.get(channel, ()):
                stream.offer(presence)

    async def follow(self, stream: Stream, address: str) -> None:
        new = []
        for friend in self.friends.get(address, []):
            channel = channel_of(friend)
            if channel not in self.followers:
                self.followers[channel] = set()
                new.append(channel)
            self.followers[channel].add(stream)
        if new:
            await self.pubsub.subscribe(*new)
        for friend in self.friends.get(address, []):
            presence = self.latest.get(channel_of(friend))
            if presence is not None:
                stream.pending[friend] = presence

    def unfollow(self, stream: Stream, address: str) -> None:
        # Channels stay subscribed: connections come back, and a floor keeps no bookkeeping.
        for friend in self.friends.get(address, []):
            self.followers.get(channel_of(friend), set()).discard(stream)

    async def publish(self, address: str, status: int) -> None:
        presence = fs.UserPresence(
            user=fs.User(address=address),
            status=fs.Status(type=status),
            last_seen=int(time.time() * 1000),
        )
        await self.redis.publish(channel_of(address), presence.SerializeToString())

    async def serve(
        self,
        connection: Connection,
        query: str,
        on_signed_in: Callable[[], None] | None = None,
    ) -> None:
        """Serve one connection until it ends; `on_signed_in` is called once its user is
        known (admission pacing's set-up)."""
        token = (parse_qs(query).get("access_token") or [None])[0]
        address = self.tokens.get(token) if token else None
        if token and address is None:
            await connection.close(4001, "unknown token")
            return
        if address is not None and on_signed_in is not None:
            on_signed_in()
        streams: dict[int, Stream] = {}
        await connection.send(wire.server_ready())
        try:
            async for data in connection:
                frame = wire.decode(data)  # type: ignore[arg-type]
                message = frame.message
                if frame.type == MessageType.CREATE_PORT:
                    await connection.send(wire.create_port_response(frame.number, 1))
                elif frame.type == MessageType.REQUEST_MODULE:
                    await connection.send(wire.request_module_response(frame.number, 1, PROCEDURES))
                elif frame.type == MessageType.REQUEST:
                    known = address
                    address = await self._request(
                        connection, streams, address, frame.number, message
                    )
                    if known is None and address is not None and on_signed_in is not None:
                        on_signed_in()
                elif frame.type in (MessageType.STREAM_ACK, MessageType.STREAM_MESSAGE):
                    signal: rpc.StreamMessage = message  # type: ignore[assignment]
                    stream = streams.get(frame.number)
                    if stream is not None and signal.closed and address is not None:
                        self.unfollow(streams.pop(frame.number), address)
                    elif stream is not None:
                        stream.acked(signal.sequence_id)
        except ConnectionClosed:
            pass  # A client that goes without a closing handshake: nothing to report.
        finally:
            for stream in streams.values():
                if address is not None:
                    self.unfollow(stream, address)

    async def _request(
        self,
        connection: Connection,
        streams: dict[int, Stream],
        address: str | None,
        number: int,
        message: object,
    ) -> str | None:
        """Serve one call; the connection's address, which a subscription's token may set."""
        request: rpc.Request = message  # type: ignore[assignment]
        if address is None and request.procedure_id == SUBSCRIBE:
            address = self.tokens.get(fs.Payload.FromString(request.payload).synapse_token)
        if address is None:
            await connection.close(4001, "unknown token")
            return None
        if request.procedure_id == SET_STATUS:
            status = fs.StatusPayload.FromString(request.payload).status.type
            await self.publish(address, status)
            reply = fs.StatusResponse(status=fs.Status(type=status))
            await connection.send(wire.response(number, reply.SerializeToString()))
        elif request.procedure_id == SUBSCRIBE:
            stream = streams[number] = Stream(connection, number, request.port_id)
            await self.follow(stream, address)
            await connection.send(wire.stream_message(number, request.port_id, 0))
        return address


async def main(port: int, redis_url: str, graph: dict[str, dict]) -> None:
    relay = Relay(redis_url, graph)
    await relay.start()

    async def handler(connection: ServerConnection) -> None:
        await relay.serve(connection, urlsplit(connection.request.path).query)

    async with serve(
        handler,
        "127.0.0.1",
        port,
        max_size=None,
        compression=None,
        ping_interval=None,
        # The service's listen queue (PRESENCE_LISTEN_BACKLOG): a burst waits in it.
        backlog=4096,
    ) as server:
        await server.serve_forever()


class AsgiConnection:
    """An ASGI WebSocket connection, accepted, as the relay uses a `websockets` one."""

    def __init__(self, receive: Callable[[], Any], send: Callable[[dict], Any]) -> None:
        self._receive = receive
        self._send = send

    async def send(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] != "websocket.receive":
                return
            yield message.get("bytes") or b""


class AsgiRelay:
    """The relay as an ASGI application, started on the server's loop at its first
    connection."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.started: asyncio.Future[None] | None = None

    async def __call__(self, scope: dict, receive: Callable[[], Any], send: Callable) -> None:
        if scope["type"] != "websocket":
            return
        if self.started is None:
            self.started = asyncio.ensure_future(self.relay.start())
        await self.started
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        set_up = scope.get("extensions", {}).get(SET_UP)
        await self.relay.serve(
            AsgiConnection(receive, send), scope["query_string"].decode("latin-1"), set_up
        )


def serve_on_daphne(port: int, redis_url: str, graph: dict[str, dict]) -> None:
    """Run the relay behind presence_project.server, the service's daphne."""
    # Imported here: it sets the event loop and installs Twisted's reactor.
    from presence_project import server

    global application
    application = AsgiRelay(Relay(redis_url, graph))
    server.main(["-b", "127.0.0.1", "-p", str(port)], application=f"{__name__}:application")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--graph", type=Path, required=True)
    parser.add_argument("--server", choices=("websockets", "daphne"), default="websockets")
    args = parser.parse_args()
    # The service's default garbage-collector setting (PRESENCE_GC_THRESHOLD), so that the
    # floor is not held back by collections the service avoids.
    gc.set_threshold(50_000)
    graph = json.loads(args.graph.read_text())
    if args.server == "daphne":
        serve_on_daphne(args.port, args.redis_url, graph)
    else:
        asyncio.run(main(args.port, args.redis_url, graph))
