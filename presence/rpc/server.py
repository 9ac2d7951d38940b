"""One dcl-rpc connection, server side: ports, modules, unary calls and server streams.

The transport hands in frames with `handle_frame` and takes frames out through the `send`
callable; procedures take and return protobuf messages and never see a frame.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from typing import Any

from google.protobuf.message import DecodeError, Message

from presence.rpc import dcl_rpc_pb2 as pb
from presence.rpc import wire
from presence.rpc.feed import Feed
from presence.rpc.wire import MessageType

logger = logging.getLogger(__name__)

Send = Callable[[bytes], Awaitable[None]]
# A procedure takes the session's context (what the transport knows of the client) and the
# request.
UnaryHandler = Callable[[Any, Message], Awaitable[Message]]
StreamHandler = Callable[[Any, Message], AsyncIterator[Message]]
FeedHandler = Callable[[Any, Message], Awaitable[Feed[Any, Any]]]
# Turns what a procedure raised into the message it answers with (a response, or a stream's
# last item): for services whose responses carry their errors. Given the procedure's name.
ErrorAnswer = Callable[[Exception, str], Message]


# Messages a client waits an answer for.
_ANSWERED = {MessageType.REQUEST, MessageType.CREATE_PORT, MessageType.REQUEST_MODULE}


class ErrorCode(IntEnum):
    """`error_code` of REMOTE_ERROR_RESPONSE (@dcl/rpc itself always sends 0)."""

    BAD_MESSAGE = 400
    UNAUTHORIZED = 401
    NOT_FOUND = 404
    TOO_MANY = 429
    INTERNAL = 500
    NOT_IMPLEMENTED = 501


class RemoteProcedureError(Exception):
    """Raised by a procedure to answer with a REMOTE_ERROR_RESPONSE carrying this message."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.BAD_MESSAGE) -> None:
        super().__init__(message)
        self.code = code


class Kind(IntEnum):
    UNARY = 1
    STREAM = 2  # an async generator, one item pulled per ack
    FEED = 3  # a presence.rpc.feed.Feed, pushing its items


@dataclass(frozen=True)
class Procedure:
    name: str
    request_type: type[Message]
    handler: UnaryHandler | StreamHandler | FeedHandler
    kind: Kind
    answer_error: ErrorAnswer | None = None


@dataclass(frozen=True)
class RpcModule:
    name: str
    procedures: tuple[Procedure, ...]


@dataclass(frozen=True)
class Limits:
    max_ports: int = 16
    max_concurrent_requests: int = 64


@dataclass(frozen=True, slots=True)
class CallEnd:
    """A call as it ended (a stream when it closed), for the transport's observer."""

    module: str
    procedure: str
    kind: Kind
    # The response, a stream's last item or the feed; None when the call failed.
    result: object
    # The remote error it was answered with, if any.
    error: ErrorCode | None
    # Stopped from outside: the client cancelled it, or the connection closed.
    cancelled: bool
    seconds: float


Observer = Callable[[CallEnd], None]

# (module, procedure) of the call the running task serves, for log records.
current_call: ContextVar[tuple[str, str] | None] = ContextVar("current_call", default=None)


@dataclass
class _Port:
    name: str
    procedures: dict[int, Procedure] = field(default_factory=dict)
    module_of: dict[int, str] = field(default_factory=dict)
    modules: dict[str, dict[int, str]] = field(default_factory=dict)


@dataclass
class _Call:
    port_id: int
    task: asyncio.Task[None]
    result: object = None
    error: ErrorCode | None = None
    # For a generator stream: the sequence id whose ack it waits for, and the waiter.
    awaited_sequence: int | None = None
    ack: asyncio.Future[bool] | None = None
    # For a feed, once open.
    feed: Feed[Any, Any] | None = None


class RpcServerSession:
    """Serves the given modules to one client until `close`.

    Modules are shared by every connection of the process; each call gets this session's
    `context` as its first argument, so a connection costs no procedures of its own.
    `observe`, if given, is told of each call as it ends; `active`, if given, of every frame
    the client sends but a stream ack: the client doing something, rather than only taking
    what it is sent.
    """

    def __init__(
        self,
        send: Send,
        modules: Mapping[str, RpcModule],
        limits: Limits,
        context: Any = None,
        observe: Observer | None = None,
        active: Callable[[], None] | None = None,
    ) -> None:
        self._send = send
        self._observe = observe
        self._active = active
        self._modules = modules
        self._context = context
        self._limits = limits
        self._ports: dict[int, _Port] = {}
        self._last_port_id = 0
        self._calls: dict[int, _Call] = {}
        self._closed = False

    async def open(self) -> None:
        await self._send(wire.server_ready())

    async def close(self) -> None:
        """Stop every call and stream; nothing is sent afterwards."""
        self._closed = True
        tasks = [call.task for call in self._calls.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._calls.clear()
        self._ports.clear()

    @property
    def open_calls(self) -> int:
        return len(self._calls)

    async def handle_frame(self, data: bytes) -> None:
        """Handle one binary frame. Never raises for anything a client can send."""
        try:
            frame = wire.decode(data)
        except wire.MalformedFrame as exc:
            await self._error(exc.number, ErrorCode.BAD_MESSAGE, str(exc))
            return
        handler = self._handlers.get(frame.type)
        if handler is None:
            await self._error(
                frame.number,
                ErrorCode.BAD_MESSAGE,
                f"a client may not send {frame.type.name} messages",
            )
            return
        if self._active is not None and frame.type != MessageType.STREAM_ACK:
            self._active()
        await handler(self, frame.number, frame.message)

    async def refuse_frame(self, data: bytes, reason: str) -> None:
        """Drop a frame the transport will not serve; a call gets its answer, so no one hangs."""
        try:
            frame = wire.decode(data)
        except wire.MalformedFrame:
            return
        if frame.type in _ANSWERED:
            await self._error(frame.number, ErrorCode.TOO_MANY, reason)

    async def reject_text_frame(self) -> None:
        await self._error(
            0, ErrorCode.BAD_MESSAGE, "dcl-rpc frames are binary; text is not accepted"
        )

    # --- Ports and modules ---------------------------------------------------------------

    async def _create_port(self, number: int, message: pb.CreatePort) -> None:
        if len(self._ports) >= self._limits.max_ports:
            await self._error(
                number, ErrorCode.TOO_MANY, f"at most {self._limits.max_ports} ports per connection"
            )
            return
        self._last_port_id += 1
        self._ports[self._last_port_id] = _Port(name=message.port_name)
        await self._send_open(wire.create_port_response(number, self._last_port_id))

    async def _request_module(self, number: int, message: pb.RequestModule) -> None:
        port = self._ports.get(message.port_id)
        if port is None:
            await self._error(number, ErrorCode.NOT_FOUND, f"cannot find port {message.port_id}")
            return
        listing = port.modules.get(message.module_name)
        if listing is None:
            module = self._modules.get(message.module_name)
            if module is None:
                await self._error(
                    number,
                    ErrorCode.NOT_FOUND,
                    f"module {message.module_name!r} is not available; "
                    f"available: {', '.join(sorted(self._modules))}",
                )
                return
            listing = {}
            for procedure in module.procedures:
                procedure_id = len(port.procedures) + 1
                port.procedures[procedure_id] = procedure
                port.module_of[procedure_id] = module.name
                listing[procedure_id] = procedure.name
            port.modules[message.module_name] = listing
        await self._send_open(wire.request_module_response(number, message.port_id, listing))

    async def _destroy_port(self, number: int, message: pb.DestroyPort) -> None:
        if self._ports.pop(message.port_id, None) is None:
            return
        for call in [c for c in self._calls.values() if c.port_id == message.port_id]:
            call.task.cancel()

    # --- Calls ---------------------------------------------------------------------------

    async def _request(self, number: int, message: pb.Request) -> None:
        port = self._ports.get(message.port_id)
        if port is None:
            await self._error(number, ErrorCode.NOT_FOUND, "invalid portId")
            return
        procedure = port.procedures.get(message.procedure_id)
        if procedure is None:
            await self._error(
                number,
                ErrorCode.NOT_FOUND,
                f"procedure {message.procedure_id} is not loaded on port {message.port_id}",
            )
            return
        if message.client_stream:
            await self._error(number, ErrorCode.BAD_MESSAGE, "client streams are not supported")
            return
        if number in self._calls:
            await self._error(number, ErrorCode.BAD_MESSAGE, f"message number {number} is in use")
            return
        if len(self._calls) >= self._limits.max_concurrent_requests:
            await self._error(
                number,
                ErrorCode.TOO_MANY,
                f"at most {self._limits.max_concurrent_requests} calls and streams may be open",
            )
            return
        try:
            argument = procedure.request_type.FromString(message.payload)
        except DecodeError:
            await self._error(
                number,
                ErrorCode.BAD_MESSAGE,
                f"the payload is not a {procedure.request_type.__name__} for {procedure.name}",
            )
            return
        module = port.module_of[message.procedure_id]
        task = asyncio.create_task(self._serve(number, module, procedure, argument))
        self._calls[number] = _Call(port_id=message.port_id, task=task)
        task.add_done_callback(lambda _: self._forget(number, task))

    def _forget(self, number: int, task: asyncio.Task[None]) -> None:
        call = self._calls.get(number)
        if call is not None and call.task is task:
            del self._calls[number]

    async def _serve(
        self, number: int, module: str, procedure: Procedure, argument: Message
    ) -> None:
        """Run a call in its own task, and tell the observer how it ended."""
        current_call.set((module, procedure.name))
        call = self._calls[number]
        started = time.perf_counter()
        cancelled = False
        try:
            await self._runners[procedure.kind](self, number, call, procedure, argument)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if self._observe is not None:
                self._observe(
                    CallEnd(
                        module,
                        procedure.name,
                        procedure.kind,
                        call.result,
                        call.error,
                        cancelled,
                        time.perf_counter() - started,
                    )
                )

    async def _fail(self, number: int, call: _Call, code: ErrorCode, message: str) -> None:
        call.error = code
        await self._error(number, code, message)

    async def _failed(
        self, exc: Exception, number: int, call: _Call, procedure: Procedure
    ) -> Message | None:
        """The message a call that raised `exc` answers with, if its procedure maps errors to
        messages; otherwise the call is answered with a remote error here, and None."""
        if isinstance(exc, RemoteProcedureError):
            await self._fail(number, call, exc.code, str(exc))
            return None
        if procedure.answer_error is not None:
            return procedure.answer_error(exc, procedure.name)
        logger.error("procedure %s failed", procedure.name, exc_info=exc)
        await self._fail(number, call, ErrorCode.INTERNAL, f"{procedure.name} failed on the server")
        return None

    async def _run_unary(
        self, number: int, call: _Call, procedure: Procedure, argument: Message
    ) -> None:
        try:
            result = await procedure.handler(self._context, argument)
        except Exception as exc:
            result = await self._failed(exc, number, call, procedure)
            if result is None:
                return
        call.result = result
        await self._send_open(wire.response(number, result.SerializeToString()))

    async def _run_stream(
        self, number: int, call: _Call, procedure: Procedure, argument: Message
    ) -> None:
        """Offer the stream, then send one item per ack, as @dcl/rpc servers do; an error
        the procedure maps is its last item."""
        items = procedure.handler(self._context, argument)
        port_id = call.port_id
        sequence = 0
        try:
            await self._send_open(wire.stream_message(number, port_id, sequence))
            if not await self._acked(number, sequence):
                return
            while True:
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    item = await self._failed(exc, number, call, procedure)
                    if item is None:
                        return
                sequence += 1
                call.result = item
                await self._send_open(
                    wire.stream_message(number, port_id, sequence, item.SerializeToString())
                )
                if not await self._acked(number, sequence):
                    return
            await self._send_open(wire.stream_message(number, port_id, sequence, closed=True))
        finally:
            await items.aclose()

    async def _acked(self, number: int, sequence: int) -> bool:
        """Wait for the client to ask for the next item (True) or cancel (False)."""
        call = self._calls[number]
        call.awaited_sequence = sequence
        call.ack = asyncio.get_running_loop().create_future()
        try:
            return await call.ack
        finally:
            call.awaited_sequence = None
            call.ack = None

    async def _run_feed(
        self, number: int, call: _Call, procedure: Procedure, argument: Message
    ) -> None:
        """Open the feed and offer the stream; then acks and the feed push the items, and
        this task only waits for the stream to end. A feed that fails to open sends the
        procedure's error message as its one item."""
        port_id = call.port_id
        try:
            feed = await procedure.handler(self._context, argument)
            call.result = feed
        except Exception as exc:
            error = await self._failed(exc, number, call, procedure)
            if error is None:
                return
            call.result = error
            feed = Feed.of_one(error)
        try:
            call.feed = feed
            # Started before the stream is offered: the client's first ack may come at once.
            feed.start(partial(self._send_item, number, port_id))
            await self._send_open(wire.stream_message(number, port_id, 0))
            await feed.finished()
            await self._send_open(wire.stream_message(number, port_id, feed.sequence, closed=True))
        except Exception:
            logger.exception("stream %s failed", procedure.name)
            await self._fail(
                number, call, ErrorCode.INTERNAL, f"{procedure.name} failed on the server"
            )
        finally:
            await feed.close()

    async def _send_item(self, number: int, port_id: int, sequence: int, item: bytes) -> None:
        await self._send_open(wire.stream_message(number, port_id, sequence, item))

    async def _stream_signal(self, number: int, message: pb.StreamMessage) -> None:
        call = self._calls.get(number)
        if message.closed:
            # A cancel may cross the server's own end of the stream: then there is nothing to do.
            if call is not None:
                if call.ack is not None and not call.ack.done():
                    call.ack.set_result(False)
                else:
                    call.task.cancel()
            return
        if call is not None and call.feed is not None:
            if await call.feed.ack(message.sequence_id):
                return
        elif call is not None and call.ack is not None:
            if message.sequence_id == call.awaited_sequence and not call.ack.done():
                call.ack.set_result(True)
            return
        await self._error(number, ErrorCode.NOT_FOUND, f"no open stream {number} awaits an ack")

    # --- Sending -------------------------------------------------------------------------

    async def _send_open(self, data: bytes) -> None:
        if not self._closed:
            await self._send(data)

    async def _error(self, number: int, code: ErrorCode, message: str) -> None:
        await self._send_open(wire.remote_error(number, code, message))

    _runners: Mapping[Kind, Callable[..., Awaitable[None]]] = {
        Kind.UNARY: _run_unary,
        Kind.STREAM: _run_stream,
        Kind.FEED: _run_feed,
    }

    _handlers: Mapping[MessageType, Callable[..., Awaitable[None]]] = {
        MessageType.CREATE_PORT: _create_port,
        MessageType.REQUEST_MODULE: _request_module,
        MessageType.DESTROY_PORT: _destroy_port,
        MessageType.REQUEST: _request,
        MessageType.STREAM_ACK: _stream_signal,
        MessageType.STREAM_MESSAGE: _stream_signal,
    }


def unary(
    name: str,
    request_type: type[Message],
    handler: UnaryHandler,
    answer_error: ErrorAnswer | None = None,
) -> Procedure:
    return Procedure(name, request_type, handler, Kind.UNARY, answer_error)


def server_stream(
    name: str,
    request_type: type[Message],
    handler: StreamHandler,
    answer_error: ErrorAnswer | None = None,
) -> Procedure:
    return Procedure(name, request_type, handler, Kind.STREAM, answer_error)


def server_feed(
    name: str,
    request_type: type[Message],
    handler: FeedHandler,
    answer_error: ErrorAnswer | None = None,
) -> Procedure:
    """A server stream served from a Feed: for streams that wait on events, such as
    presence changes, where a generator would cost a task switch per item and per ack."""
    return Procedure(name, request_type, handler, Kind.FEED, answer_error)


__all__ = [
    "CallEnd",
    "ErrorAnswer",
    "ErrorCode",
    "Feed",
    "Kind",
    "Limits",
    "Observer",
    "Procedure",
    "RemoteProcedureError",
    "RpcModule",
    "RpcServerSession",
    "current_call",
    "server_feed",
    "server_stream",
    "unary",
]
