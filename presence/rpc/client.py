"""A dcl-rpc client in asyncio, speaking the same bytes as @dcl/rpc's client.

For Python callers of the service: the test suite and the benchmarks. It works over any
connection with `async send(bytes)` and `async recv() -> bytes | str` (e.g. `websockets`).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from presence.rpc import dcl_rpc_pb2 as pb
from presence.rpc import wire
from presence.rpc.wire import MessageType


class Connection(Protocol):
    async def send(self, message: bytes) -> None: ...

    async def recv(self) -> bytes | str: ...


class RemoteError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"RemoteError: {message}")
        self.code = code
        self.remote_message = message


class StreamClosed(Exception):
    """The server ended the stream (or the connection went away)."""


class ClientStream:
    """A server stream; the next item is asked for (acked) only when the caller awaits it."""

    def __init__(self, client: "RpcClient", number: int, port_id: int) -> None:
        self._client = client
        self._number = number
        self._port_id = port_id
        self._frames: asyncio.Queue[wire.Frame | None] = asyncio.Queue()
        self._last_sequence = 0
        self.closed = False

    @property
    def number(self) -> int:
        """The message number of the call that opened the stream: its frames carry it."""
        return self._number

    def _deliver(self, frame: wire.Frame | None) -> None:
        self._frames.put_nowait(frame)

    async def next(self, timeout: float | None = None) -> bytes:
        """Ack the last item and return the next payload; StreamClosed at the end."""
        if self.closed:
            raise StreamClosed("the stream is closed")
        await self._client._send(wire.stream_ack(self._number, self._port_id, self._last_sequence))
        return await self.receive(timeout)

    async def receive(self, timeout: float | None = None) -> bytes:
        """Wait for an item already asked for, without acking anything."""
        frame = await asyncio.wait_for(self._frames.get(), timeout)
        if frame is None:
            self.closed = True
            raise StreamClosed(f"the connection closed: {self._client.closed_by!r}")
        if frame.type == MessageType.REMOTE_ERROR_RESPONSE:
            self.closed = True
            error: pb.RemoteError = frame.message  # type: ignore[assignment]
            raise RemoteError(error.error_code, error.error_message)
        message: pb.StreamMessage = frame.message  # type: ignore[assignment]
        self._last_sequence = message.sequence_id
        if message.closed:
            self.closed = True
            self._client._streams.pop(self._number, None)
            raise StreamClosed("the server closed the stream")
        return message.payload

    async def cancel(self) -> None:
        if not self.closed:
            self.closed = True
            self._client._streams.pop(self._number, None)
            await self._client._send(
                wire.close_stream(self._number, self._port_id, self._last_sequence)
            )

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._items()

    async def _items(self) -> AsyncIterator[bytes]:
        with contextlib.suppress(StreamClosed):
            while True:
                yield await self.next()


class RpcClient:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._last_number = 0
        self._replies: dict[int, asyncio.Future[wire.Frame]] = {}
        self._streams: dict[int, ClientStream] = {}
        self.unsolicited: asyncio.Queue[wire.Frame] = asyncio.Queue()
        self.closed_by: BaseException | None = None
        self._reader = asyncio.create_task(self._read())

    async def _send(self, data: bytes) -> None:
        await self._connection.send(data)

    def _next_number(self) -> int:
        self._last_number += 1
        return self._last_number

    async def _read(self) -> None:
        try:
            while True:
                data = await self._connection.recv()
                if isinstance(data, str):
                    continue
                frame = wire.decode(data)
                stream = self._streams.get(frame.number)
                reply = self._replies.pop(frame.number, None)
                if reply is not None and not reply.done():
                    reply.set_result(frame)
                elif stream is not None:
                    stream._deliver(frame)
                else:
                    self.unsolicited.put_nowait(frame)
        except Exception as exc:
            self.closed_by = exc
            for reply in self._replies.values():
                if not reply.done():
                    reply.set_exception(StreamClosed(f"the connection closed: {exc!r}"))
            for stream in self._streams.values():
                stream._deliver(None)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _exchange(self, number: int, data: bytes) -> wire.Frame:
        future: asyncio.Future[wire.Frame] = asyncio.get_running_loop().create_future()
        self._replies[number] = future
        await self._send(data)
        frame = await future
        if frame.type == MessageType.REMOTE_ERROR_RESPONSE:
            error: pb.RemoteError = frame.message  # type: ignore[assignment]
            raise RemoteError(error.error_code, error.error_message)
        return frame

    async def create_port(self, name: str) -> int:
        number = self._next_number()
        frame = await self._exchange(number, wire.create_port(number, name))
        return frame.message.port_id  # type: ignore[union-attr]

    async def load_module(self, port_id: int, module_name: str) -> dict[str, int]:
        number = self._next_number()
        frame = await self._exchange(number, wire.request_module(number, port_id, module_name))
        message: Any = frame.message
        return {p.procedure_name: p.procedure_id for p in message.procedures}

    async def call(self, port_id: int, procedure_id: int, payload: bytes) -> bytes:
        number = self._next_number()
        frame = await self._exchange(number, wire.request(number, port_id, procedure_id, payload))
        return frame.message.payload  # type: ignore[union-attr]

    async def open_stream(self, port_id: int, procedure_id: int, payload: bytes) -> ClientStream:
        """Call a streaming procedure; the returned stream has received the server's offer."""
        number = self._next_number()
        stream = ClientStream(self, number, port_id)
        frame = await self._exchange(number, wire.request(number, port_id, procedure_id, payload))
        if frame.type != MessageType.STREAM_MESSAGE:
            raise RemoteError(0, f"expected a stream, got {frame.type.name}")
        self._streams[number] = stream
        return stream

    async def destroy_port(self, port_id: int) -> None:
        await self._send(wire.destroy_port(port_id))
