"""A lean RFC 6455 WebSocket client for the load processes.

Thousands of connections per process on a 2-core machine: the `websockets` client costs
several times more CPU per frame than this one, and that cost would land in the measured
latencies. It speaks plain WebSocket (binary frames, masked as the RFC requires, pings
answered, no extensions), so the service sees exactly what any client sends; the dcl-rpc
bytes on top come from presence.rpc.wire through presence.rpc.client.RpcClient.
"""

import asyncio
import base64
import hashlib
import os
import random
from collections import deque
from collections.abc import Callable

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_BINARY, _TEXT, _CONTINUATION, _CLOSE, _PING, _PONG = 0x2, 0x1, 0x0, 0x8, 0x9, 0xA


class ConnectionClosed(Exception):
    """The server closed the connection, or the socket went away."""


def _mask(payload: bytes) -> bytes:
    # A fresh key per frame, as the RFC asks, from the process's PRNG: os.urandom is a system
    # call per frame.
    key = random.getrandbits(32).to_bytes(4, "big")
    size = len(payload)
    if not size:
        return key
    stream = (key * (size // 4 + 1))[:size]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")
    return key + masked.to_bytes(size, "big")


def _frame(opcode: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + _mask(payload)


_READ_SIZE = 65536


class WebSocket(asyncio.BufferedProtocol):
    """One client connection: `send(bytes)` and `recv()`, as RpcClient expects.

    It reads into a buffer of its own: a plain Protocol gets a new bytes object of asyncio's
    256 KiB read size for every read, which made most of the clients' time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._incoming = bytearray(_READ_SIZE)
        self._buffer = bytearray()
        self._handshake: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._messages: deque[bytes | str] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._fragments: list[bytes] = []
        self._fragment_opcode = _BINARY
        self.closed: BaseException | None = None
        self.close_code: int | None = None
        # Takes a binary message inside the socket's callback, before recv() would see it;
        # True when it consumed the message.
        self.intercept: Callable[[bytes], bool] | None = None

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._incoming)

    def buffer_updated(self, nbytes: int) -> None:
        self._buffer += memoryview(self._incoming)[:nbytes]
        if not self._handshake.done():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._handshake.set_result(bytes(self._buffer[:end]))
            del self._buffer[: end + 4]
        self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionClosed(f"closed with code {self.close_code}"))

    # --- Frames --------------------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self._buffer
        position, available = 0, len(buffer)
        while available - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            size, head = second & 0x7F, 2
            if size == 126:
                if available - position < 4:
                    break
                size, head = int.from_bytes(buffer[position + 2 : position + 4], "big"), 4
            elif size == 127:
                if available - position < 10:
                    break
                size, head = int.from_bytes(buffer[position + 2 : position + 10], "big"), 10
            if available - position < head + size:
                break
            payload = bytes(buffer[position + head : position + head + size])
            position += head + size
            self._handle(first & 0x0F, bool(first & 0x80), payload)
        del buffer[:position]

    def _handle(self, opcode: int, final: bool, payload: bytes) -> None:
        if opcode in (_BINARY, _TEXT):
            self._fragment_opcode = opcode
            self._fragments = [payload]
        elif opcode == _CONTINUATION:
            self._fragments.append(payload)
        elif opcode == _PING:
            self._write(_frame(_PONG, payload))
            return
        elif opcode == _CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self._write(_frame(_CLOSE, payload[:2]))
            if self._transport is not None:
                self._transport.close()
            return
        else:
            return
        if final:
            whole = b"".join(self._fragments)
            self._fragments = []
            if self._fragment_opcode == _BINARY and self.intercept and self.intercept(whole):
                return
            self._messages.append(whole.decode() if self._fragment_opcode == _TEXT else whole)
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _fail(self, exc: BaseException) -> None:
        if self.closed is None:
            self.closed = exc
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionClosed(str(exc)))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- The connection API ----------------------------------------------------------------

    async def send(self, message: bytes) -> None:
        self.send_now(message)

    def send_now(self, message: bytes) -> None:
        """Send a binary message from synchronous code (an intercept)."""
        if self.closed is not None:
            raise ConnectionClosed(str(self.closed))
        self._write(_frame(_BINARY, message))

    async def recv(self) -> bytes | str:
        while not self._messages:
            if self.closed is not None:
                raise ConnectionClosed(str(self.closed))
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        return self._messages.popleft()

    async def close(self, timeout: float = 2.0) -> None:
        """Close as a well-behaved client does: a close frame, then wait for the server's."""
        if self._transport is None or self._transport.is_closing():
            return
        self._write(_frame(_CLOSE, (1000).to_bytes(2, "big")))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.closed is None and loop.time() < deadline:
            self._waiter = loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, deadline - loop.time())
            except TimeoutError:
                break
            finally:
                self._waiter = None
        self._transport.close()


async def connect(host: str, port: int, path: str = "/", timeout: float = 10.0) -> WebSocket:
    """Open a WebSocket to ws://host:port/path and finish the opening handshake."""
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(loop.create_connection(WebSocket, host, port), timeout)
    key = base64.b64encode(os.urandom(16))
    protocol._write(
        b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (path.encode(), host.encode(), port, key)
    )
    try:
        head = await asyncio.wait_for(protocol._handshake, timeout)
    except BaseException:
        if protocol._transport is not None:
            protocol._transport.close()
        raise
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    status_line, _, headers = head.partition(b"\r\n")
    if status_line.split()[1:2] != [b"101"] or accept not in headers:
        if protocol._transport is not None:
            protocol._transport.close()
        raise ConnectionClosed(f"handshake refused: {status_line.decode(errors='replace')}")
    return protocol
