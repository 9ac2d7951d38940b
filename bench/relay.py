"""The floor: the same presence fan-out with nothing but `websockets` and Redis pub/sub.

    python -m bench.relay --port 9000 --redis-url redis://127.0.0.1:6379/0 --graph graph.json

A minimal dcl-rpc server for the two procedures the benchmark drives, SetPresenceStatus and
SubscribeFriendshipPresenceUpdates, with the service's stream semantics (one item per ack;
while the client has not acked, the latest state per friend waits) and none of its work:
no database, no presence state, no channel layer. A status change is one PUBLISH on the
user's channel; each process SUBSCRIBEs once to every channel its connections follow and
hands each message to those connections. What the service costs above this is the price
of its features and of its framework.
"""

import argparse
import asyncio
import gc
import json
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from websockets.asyncio.server import ServerConnection, serve

from presence.protocol import friendships_service_pb2 as fs
from presence.rpc import dcl_rpc_pb2 as rpc
from presence.rpc import wire
from presence.rpc.wire import MessageType

SET_STATUS, SUBSCRIBE = 1, 2
_tasks: set[asyncio.Task[None]] = set()  # sends and the reader, referenced while they run
PROCEDURES = {SET_STATUS: "SetPresenceStatus", SUBSCRIBE: "SubscribeFriendshipPresenceUpdates"}


def _spawn(call: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(call)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def channel_of(address: str) -> str:
    return f"relay:{address}"


class Stream:
    """One open presence subscription: what waits for the client's next ack."""

    def __init__(self, connection: ServerConnection, number: int, port_id: int) -> None:
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
        if not (self.asked and self.pending):
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

    async def start(self) -> None:
        # A channel nobody publishes on keeps the reader's subscription alive from the start.
        await self.pubsub.subscribe(channel_of(""))
        _spawn(self._read())

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] != "message":
                continue
            streams = self.followers.get(message["channel"].decode())
            if streams:
                presence = fs.UserPresence.FromString(message["data"])
                for stream in streams:
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

    async def serve(self, connection: ServerConnection) -> None:
        query = parse_qs(urlsplit(connection.request.path).query)
        address = self.tokens.get((query.get("access_token") or [""])[0])
        if address is None:
            await connection.close(4001, "unknown token")
            return
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
                    await self._request(connection, streams, address, frame.number, message)
                elif frame.type in (MessageType.STREAM_ACK, MessageType.STREAM_MESSAGE):
                    signal: rpc.StreamMessage = message  # type: ignore[assignment]
                    stream = streams.get(frame.number)
                    if stream is not None and signal.closed:
                        self.unfollow(streams.pop(frame.number), address)
                    elif stream is not None:
                        stream.acked(signal.sequence_id)
        finally:
            for stream in streams.values():
                self.unfollow(stream, address)

    async def _request(
        self,
        connection: ServerConnection,
        streams: dict[int, Stream],
        address: str,
        number: int,
        message: object,
    ) -> None:
        request: rpc.Request = message  # type: ignore[assignment]
        if request.procedure_id == SET_STATUS:
            status = fs.StatusPayload.FromString(request.payload).status.type
            await self.publish(address, status)
            reply = fs.StatusResponse(status=fs.Status(type=status))
            await connection.send(wire.response(number, reply.SerializeToString()))
        elif request.procedure_id == SUBSCRIBE:
            stream = streams[number] = Stream(connection, number, request.port_id)
            await self.follow(stream, address)
            await connection.send(wire.stream_message(number, request.port_id, 0))


async def main(port: int, redis_url: str, graph: dict[str, dict]) -> None:
    relay = Relay(redis_url, graph)
    await relay.start()
    async with serve(
        relay.serve, "127.0.0.1", port, max_size=None, compression=None, ping_interval=None
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--graph", type=Path, required=True)
    args = parser.parse_args()
    # The service's default garbage-collector setting (PRESENCE_GC_THRESHOLD), so that the
    # floor is not held back by collections the service avoids.
    gc.set_threshold(50_000)
    asyncio.run(main(args.port, args.redis_url, json.loads(args.graph.read_text())))
