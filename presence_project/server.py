"""Run daphne for this project, with the WebSocket limits taken from settings.

    python -m presence_project.server -b 127.0.0.1 -p 8000

Frames over PRESENCE_MAX_FRAME_BYTES are refused by daphne's WebSocket layer itself, which
closes with 1009 (message too big) before buffering them; the application cannot send that
code. Any other daphne option can be added to the command line.

On SIGTERM (or SIGINT) the process drains before it exits (docs/scaling.md, "Deploys").
"""

# Sets the event loop before daphne.server, imported below, creates its loop.
from presence_project import event_loop  # noqa: F401

# isort: split

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from autobahn.util import encode_truncate
from daphne.cli import CommandLineInterface
from daphne.http_protocol import WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer, tcp
from twisted.internet.interfaces import IListeningPort
from twisted.internet.tcp import Connection, Port

from presence.admission import SET_UP
from presence.conf import presence_settings
from presence.observability import connection_log_level
from presence_project.shutdown import CLOSE_SERVICE_RESTART

logger = logging.getLogger(__name__)


class PresenceWebSocketProtocol(WebSocketProtocol):
    """Daphne's WebSocket protocol, changed where autobahn's and Twisted's defaults cost the
    service; tests/test_dependency_guards.py fails when an upgrade changes what these rely on."""

    # Without it: autobahn copies every option into each new connection and formats them all.
    @classmethod
    def take_options(cls, factory: Any) -> None:
        """Hold the factory's WebSocket options on the class, once: autobahn copies only the
        options a connection does not have already, and pretty-prints the lot for a debug
        message it then drops."""
        for name in WebSocketProtocol.CONFIG_ATTRS:
            value = getattr(factory, name)
            # A function (perMessageCompressionAccept) must not become a method.
            setattr(cls, name, staticmethod(value) if callable(value) else value)
        cls.CONFIG_ATTRS = ()

    # Without it: clients never read why they were closed, and a frame sent late raises.
    def handle_reply(self, message: dict[str, Any]) -> None:
        """Daphne drops the reason of an ASGI websocket.close; clients should read why they
        were closed (which signature was refused, for instance), as the ASGI spec allows.

        A frame sent once the socket is closing or closed is dropped: the client is gone or
        going, its disconnect is on its way to the consumer, and daphne would raise instead,
        failing whatever the session was sending (a stream's update as the client hung up)."""
        kind = message.get("type")
        if kind == "websocket.send" and self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            return
        if kind == "websocket.close" and self.state != self.STATE_CONNECTING:
            code = message.get("code")
            reason = message.get("reason")
            if code == CLOSE_SERVICE_RESTART:
                # sendClose raises for codes an application may not choose (only 1000 and
                # 3000-4999): 1012 is the server's own, and goes out a step below.
                self.sendCloseFrame(code=code, reasonUtf8=encode_truncate(reason, 123))
            else:
                self.sendClose(code=1000 if code is None else code, reason=reason)
        else:
            super().handle_reply(message)

    # Without it: every frame waits for the reactor's next pass, and fan-out latency grows.
    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """Write a frame to the socket at once when nothing is waiting before it, as asyncio
        transports do; the rest, if the socket takes only part, goes through Twisted.

        Twisted only buffers a write and sends it when the reactor next finds the socket
        writable: for every frame, a writer registered and removed in epoll and a pass of
        the reactor's dispatch, and the frame leaves the process only after every other
        ready callback has run. Fan-out sends one frame to each of many sockets.
        """
        transport = self.transport
        if (
            isinstance(transport, Connection)
            and not (sync or chopsize or self.send_queue)
            and transport.connected
            and not transport.disconnecting
            and not transport._writeDisconnected
            and not transport.dataBuffer
            and not transport._tempDataBuffer
        ):
            written = transport.writeSomeData(data)
            if isinstance(written, int):
                if written == len(data):
                    return
                data = data[written:]
        super().sendData(data, sync, chopsize)


class PreciseTimers:
    """autobahn's per-connection deadlines (the opening and closing handshakes, pings), each
    on the event loop at its own time.

    The factory's default, txaio's batched timer, rounds every deadline down to a whole
    second of the clock: a 1 s deadline passes anywhere from at once to 1 s later. A
    connection whose handshake starts just before a second turns is dropped before its
    application could accept it, and a close handshake is cut before the peer could answer."""

    def call_later(
        self, delay: float, func: Callable[..., object], *args: Any, **kwargs: Any
    ) -> asyncio.TimerHandle:
        # autobahn only ever cancels what this returns (tests/test_dependency_guards.py
        # checks its calls), which an asyncio handle takes at any time, even after it ran.
        return asyncio.get_running_loop().call_later(delay, partial(func, *args, **kwargs))


_access = logging.getLogger("daphne.access")
_ACCESS_ACTIONS = {
    ("http", "complete"): "HTTP",
    ("websocket", "connecting"): "WSCONNECTING",
    ("websocket", "rejected"): "WSREJECT",
    ("websocket", "connected"): "WSCONNECT",
    ("websocket", "disconnected"): "WSDISCONNECT",
}


def access_log(protocol: str, action: str, details: dict[str, object]) -> None:
    """Daphne's access log as log records (its own writes NCSA lines to stdout), without
    query strings: a client may put a token in one, and daphne's HTTP path keeps it."""
    kind = _ACCESS_ACTIONS.get((protocol, action))
    if kind is None:
        return
    path = str(details.get("path", "")).partition("?")[0]
    if kind == "HTTP":
        _access.info(
            "%s %s %s %s", details.get("client"), details["method"], path, details["status"]
        )
    else:
        # A WebSocket's lines are its connection's (presence.observability).
        _access.log(connection_log_level(), "%s %s %s", details.get("client"), kind, path)


# Endpoint kinds whose description takes a listen backlog (Twisted's default is 50).
_BACKLOG_KINDS = ("tcp", "tcp6", "ssl", "unix")
_SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


def with_backlog(endpoint: str, backlog: int) -> str:
    """A listening endpoint's description with `backlog`, unless it names one itself."""
    kind = endpoint.partition(":")[0]
    if kind not in _BACKLOG_KINDS or ":backlog=" in endpoint:
        return endpoint
    return f"{endpoint}:backlog={backlog}"


def _warn_if_capped(backlog: int) -> None:
    if _SOMAXCONN.exists() and int(_SOMAXCONN.read_text()) < backlog:
        logger.warning(
            "the kernel caps the listen backlog at net.core.somaxconn = %s, below "
            "PRESENCE_LISTEN_BACKLOG = %d: in a reconnect storm, clients beyond it retry "
            "after 1 s, 3 s, ...",
            _SOMAXCONN.read_text().strip(),
            backlog,
        )


class AdmissionPacing:
    """Accept connections only as fast as they are set up.

    Twisted accepts every queued connection at once, so in a reconnect storm every
    per-connection deadline (daphne's accept timeout, the sign-in deadline, Redis reads)
    starts for all of them together, and a process starved by the lot misses them all. At
    `limit` TCP connections accepted but not yet set up (a WebSocket signed in, an HTTP
    request answered, or the connection gone), the ports stop reading: the rest wait in the
    kernel's listen queue, where no deadline runs. A connection holds its place for
    `hold_seconds` at most, so that clients that never sign in cannot keep the process from
    accepting."""

    def __init__(self, limit: int, hold_seconds: float) -> None:
        self.limit = limit
        self.batch = max(1, limit // 10)
        self.hold_seconds = hold_seconds
        self.ports: list[Port] = []
        self.pending: dict[object, asyncio.TimerHandle] = {}
        self.paused = False

    def pace(self, port: Port) -> None:
        """Count the connections `port` accepts (a TCP port's; others are left alone)."""
        if port.transport is tcp.Server:
            # A port builds each accepted connection by calling its transport class.
            port.transport = partial(PacedConnection, self)
            self.ports.append(port)

    def enter(self, connection: tcp.Server) -> None:
        hold = asyncio.get_running_loop().call_later(self.hold_seconds, self.leave, connection)
        self.pending[connection] = hold
        if not self.paused and len(self.pending) >= self.limit:
            self.paused = True
            for port in self.ports:
                port.stopReading()

    def leave(self, connection: object) -> None:
        hold = self.pending.pop(connection, None)
        if hold is None:
            return
        hold.cancel()
        # Resuming when a tenth of the places are free, not one: accepts come in batches,
        # not one for each pass of the reactor with the port added and removed each time.
        if self.paused and len(self.pending) <= self.limit - self.batch:
            self.paused = False
            for port in self.ports:
                # A port that stopped listening (drain) stays stopped.
                if port.connected and not port.disconnecting:
                    # Twisted accepts up to numberAccepts in one pass, and grows it.
                    port.numberAccepts = self.limit - len(self.pending)
                    port.startReading()


class PacedConnection(tcp.Server):
    """A connection a paced port accepted, counted from its accept to its end."""

    def __init__(self, pacing: AdmissionPacing, *args: Any) -> None:
        self.pacing = pacing
        super().__init__(*args)
        pacing.enter(self)

    def connectionLost(self, reason: Any) -> None:
        self.pacing.leave(self)
        super().connectionLost(reason)


class PresenceServer(Server):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ports: list[IListeningPort] = []
        # Without it: a reconnect storm overflows Twisted's listen queue of 50 while the
        # process is idle, and the kernel drops the rest until the clients' SYNs retry.
        backlog = presence_settings().listen_backlog
        self.endpoints = [with_backlog(endpoint, backlog) for endpoint in self.endpoints]
        _warn_if_capped(backlog)
        limit = presence_settings().max_connecting
        # With no accept timeout (-1), a place is held as long as the sign-in deadline.
        hold = self.websocket_handshake_timeout
        if hold <= 0:
            hold = presence_settings().auth_timeout_seconds
        self.pacing = AdmissionPacing(limit, hold) if limit else None
        if self.action_logger is not None:
            # Through logging, as every other line (LOG_FORMAT), and without query strings.
            self.action_logger = access_log

    # Without it: oversized frames end in a dropped TCP connection and none of the above applies.
    def listen_success(self, port: Any) -> None:
        # Fail a connection (an oversized frame) with a close frame carrying 1009, instead of
        # the WebSocket library's default of dropping TCP, which clients see as 1006.
        self.ws_factory.setProtocolOptions(failByDrop=False)
        # Without it: handshake deadlines pass up to a second early (PreciseTimers).
        self.ws_factory._batched_timer = PreciseTimers()
        PresenceWebSocketProtocol.take_options(self.ws_factory)
        self.ws_factory.protocol = PresenceWebSocketProtocol
        self.ports.append(port)
        if self.pacing is not None and isinstance(port, Port):
            self.pacing.pace(port)
        super().listen_success(port)

    # Without it: an HTTP connection holds its place in admission pacing until it closes.
    def protocol_disconnected(self, protocol: Any) -> None:
        """An HTTP request answered or handed over to a WebSocket, or a WebSocket gone: an
        answered request's connection is set up (a handed-over one has no transport left)."""
        super().protocol_disconnected(protocol)
        if self.pacing is not None and isinstance(protocol, WebRequest):
            self.pacing.leave(protocol.transport)

    # Without it: a reconnect storm is accepted whole, and its deadlines all run at once.
    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        """A WebSocket's application gets a call for when its connection is set up."""
        if self.pacing is not None and scope["type"] == "websocket":
            set_up = partial(self.pacing.leave, protocol.transport)
            scope = {**scope, "extensions": {**scope.get("extensions", {}), SET_UP: set_up}}
        return super().create_application(protocol, scope)

    # Without it: SIGTERM cuts every connection at once, before the load balancer stops
    # sending more, and friends see each of their users go OFFLINE, then come back.
    def kill_all_applications(self) -> defer.Deferred:
        """On shutdown (SIGTERM, SIGINT), drain first; then daphne's own step cancels what
        is left."""
        drained = defer.Deferred.fromFuture(asyncio.ensure_future(self._drain()))
        cancel_the_rest = super().kill_all_applications
        drained.addCallback(lambda _: cancel_the_rest())
        return drained

    async def _drain(self) -> None:
        """/readyz answers 503 and everything is served as before for
        PRESENCE_DRAIN_SECONDS, so that load balancers stop sending clients; then the
        process stops listening, closes its WebSockets with 1012 and lets its HTTP requests
        in flight finish, keeps the closed connections counted in Redis for
        PRESENCE_RESTART_GRACE_SECONDS, disconnects those whose users did not come back,
        and returns."""
        # After daphne installed its reactor: importing them at the top could install
        # Twisted's default one first.
        from presence.delivery import process
        from presence_project import shutdown

        shutdown.enter(shutdown.Phase.DRAINING)
        seconds = presence_settings().drain_seconds
        if seconds > 0:
            logger.warning("shutting down: draining for %d s", seconds)
            await asyncio.sleep(seconds)
        shutdown.enter(shutdown.Phase.REFUSING)
        for port in self.ports:
            port.stopListening()

        async def connections() -> None:
            closed = await process.restart(shutdown.REASON, self.application_close_timeout)
            logger.warning("stopped listening; closed %d signed-in connections", closed)
            await process.hand_over(presence_settings().restart_grace_seconds if closed else 0)

        await asyncio.gather(connections(), self._requests_answered())

    async def _requests_answered(self) -> None:
        """Return once no HTTP request is in flight, or after daphne's
        --application-close-timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.application_close_timeout
        while loop.time() < deadline:
            if not any(
                not isinstance(protocol, WebSocketProtocol) and "disconnected" not in details
                for protocol, details in list(self.connections.items())
            ):
                return
            await asyncio.sleep(0.1)
        logger.warning("HTTP requests still in flight after %g s", self.application_close_timeout)


class PresenceCommandLine(CommandLineInterface):
    server_class = PresenceServer


def main(argv: list[str], application: str = "presence_project.asgi:application") -> None:
    """Run daphne with `argv`, serving `application` (another one: bench/relay.py's floor)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "presence_project.settings")

    limit = str(presence_settings().max_frame_bytes)
    PresenceCommandLine().run(
        [
            "--websocket-max-message-size",
            limit,
            "--websocket-max-frame-size",
            limit,
            *argv,
            application,
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
