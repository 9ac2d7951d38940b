"""Every override of a dependency's internals, checked against the code it was written for.

Each check fails, naming the override, when an upgrade changes what the override relies on:
the version it was checked against, the private members it touches, the signature and the
source (a digest of `inspect.getsource`) of the upstream code it replaces or leans on.
When one fails: read the override against the new upstream code, keep, change or drop it,
then update the expectation here.
"""

import hashlib
import inspect
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version

import pytest
from autobahn import util as autobahn_util
from autobahn.twisted.websocket import WebSocketAdapterProtocol, WebSocketServerFactory
from autobahn.websocket import protocol as autobahn_protocol
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from daphne.http_protocol import WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol as DaphneProtocol
from django.core.cache.backends.redis import RedisCacheClient
from redis import connection as redis_connection
from redis.asyncio import connection as async_connection
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.connection import HiredisRespSerializer
from twisted.internet import abstract, endpoints, tcp
from twisted.web import http

from presence.consumers import RpcConsumer
from presence_project import redis_clients
from presence_project.server import PresenceServer

# The versions every override below was read against.
AUTOBAHN = {"autobahn": "26.10.2"}
TWISTED = {"Twisted": "26.10.0"}
DAPHNE = {"daphne": "4.2.3"}
CHANNELS = {"channels": "4.3.2"}
REDIS = {"redis": "8.1.0"}
HIREDIS = {"hiredis": "3.5.0"}
DJANGO = {"Django": "5.2.19"}


def digest(code: object) -> str:
    return hashlib.sha256(inspect.getsource(code).encode()).hexdigest()[:16]


# Upstream code, named by where it lives (a class or module) and its name there: looked up
# when checked, so that what is checked is what the override meets.
Code = tuple[object, str]


def _lookup(code: Code) -> object:
    owner, name = code
    return getattr(owner, name)


def _name(code: Code) -> str:
    """As "autobahn's WebSocketProtocol.sendData"."""
    owner, name = code
    if inspect.ismodule(owner):
        return f"{owner.__name__.partition('.')[0]}'s {name}"
    return f"{owner.__module__.partition('.')[0]}'s {owner.__qualname__}.{name}"


@dataclass(frozen=True)
class Override:
    """One override and what it relies on; each check fails with a message naming it."""

    ours: str
    theirs: str
    pins: dict[str, str]
    # Without the override, cls.name would be owner's: nothing between them that the
    # override would silently skip.
    resolves: tuple[tuple[type, str, type], ...] = ()
    signatures: dict[Code, str] = field(default_factory=dict)
    # Upstream functions or classes with the source the override was written against.
    sources: dict[Code, str] = field(default_factory=dict)
    fragments: tuple[tuple[Code, str], ...] = ()

    def message(self, what: str) -> str:
        return (
            f"{self.ours} overrides {self.theirs}: {what}. Read the override against the new "
            "code, keep, change or drop it, then update this test's expectation."
        )

    def check(self) -> None:
        for distribution, checked in self.pins.items():
            installed = version(distribution)
            assert installed == checked, self.message(
                f"{distribution} is {installed}, the override was checked against {checked}"
            )
        for cls, name, owner in self.resolves:
            found, expected = inspect.getattr_static(cls, name), inspect.getattr_static(owner, name)
            assert found is expected, self.message(
                f"{cls.__qualname__}.{name} is no longer {owner.__qualname__}'s"
            )
        for code, checked in self.signatures.items():
            actual = str(inspect.signature(_lookup(code)))
            assert actual == checked, self.message(
                f"{_name(code)}'s signature is {actual}, checked against {checked}"
            )
        for code, checked in self.sources.items():
            actual = digest(_lookup(code))
            assert actual == checked, self.message(
                f"{_name(code)} changed (source digest {actual}, checked against {checked})"
            )
        for code, fragment in self.fragments:
            assert fragment in inspect.getsource(_lookup(code)), self.message(
                f"{_name(code)} no longer contains {fragment!r}"
            )

    def has(self, obj: object, *names: str) -> None:
        missing = [name for name in names if not hasattr(obj, name)]
        assert not missing, self.message(f"{type(obj).__qualname__} has no {', '.join(missing)}")


TAKE_OPTIONS = Override(
    "presence_project.server (PresenceWebSocketProtocol.take_options)",
    "autobahn's WebSocketProtocol.CONFIG_ATTRS, copied into each connection by _connectionMade",
    AUTOBAHN,
    resolves=((DaphneProtocol, "CONFIG_ATTRS", DaphneProtocol.__mro__[1]),),
    sources={(AutobahnProtocol, "_connectionMade"): "7ac58d8bb6c3c752"},
    # Frames leave at once: autobahn turns Nagle's algorithm off from one of these options.
    fragments=(((WebSocketAdapterProtocol, "connectionMade"), "setTcpNoDelay(self.tcpNoDelay)"),),
)
SEND_DATA = Override(
    "presence_project.server (PresenceWebSocketProtocol.sendData)",
    "autobahn's WebSocketProtocol.sendData and reads Twisted's private write buffers "
    "(transport._writeDisconnected, _tempDataBuffer, dataBuffer) and autobahn's send_queue",
    AUTOBAHN | TWISTED,
    resolves=((DaphneProtocol, "sendData", AutobahnProtocol),),
    signatures={
        (AutobahnProtocol, "sendData"): (
            "(self, data: 'bytes', sync: 'bool' = False, chopsize: 'int | None' = None) -> 'None'"
        ),
    },
    # What decides that nothing waits before a frame, and how Twisted writes it otherwise.
    sources={
        (AutobahnProtocol, "sendData"): "5dcca425b048b07e",
        (abstract.FileDescriptor, "write"): "3e46c97fc173bc7e",
        (abstract.FileDescriptor, "doWrite"): "a986d7b1b1054e43",
        (tcp.Connection, "writeSomeData"): "2dd0d4209260b94e",
    },
    fragments=(((AutobahnProtocol, "_connectionMade"), "self.send_queue = deque()"),),
)
HANDLE_REPLY = Override(
    "presence_project.server (PresenceWebSocketProtocol.handle_reply)",
    "daphne's WebSocketProtocol.handle_reply, and autobahn's sendCloseFrame for 1012",
    DAPHNE | AUTOBAHN,
    signatures={
        (DaphneProtocol, "handle_reply"): "(self, message)",
        (AutobahnProtocol, "sendClose"): (
            "(self, code: 'int | None' = None, reason: 'str | None' = None) -> 'None'"
        ),
        (AutobahnProtocol, "sendCloseFrame"): (
            "(self, code: 'int | None' = None, reasonUtf8: 'bytes | None' = None, "
            "isReply: 'bool' = False) -> 'None'"
        ),
    },
    sources={
        (DaphneProtocol, "handle_reply"): "5331423b1cf2016a",
        # 1012 (service restart) goes out through sendCloseFrame, its reason cut as
        # sendClose cuts it.
        (AutobahnProtocol, "sendCloseFrame"): "a511406d6b0d711e",
        (autobahn_util, "encode_truncate"): "fd79f5669f739be5",
    },
    fragments=(
        *(
            ((autobahn_protocol, "WebSocketProtocol"), f"{state} = ")
            for state in ("STATE_CONNECTING", "STATE_CLOSING", "STATE_CLOSED")
        ),
        # The codes sendClose refuses; when it takes 1012, the override's branch can go.
        ((AutobahnProtocol, "sendClose"), "if code != 1000 and not (3000 <= code <= 4999):"),
        ((AutobahnProtocol, "sendClose"), "reasonUtf8 = encode_truncate(reason, 123)"),
    ),
)
LISTEN_SUCCESS = Override(
    "presence_project.server (PresenceServer.listen_success)",
    "daphne's Server.listen_success",
    DAPHNE | AUTOBAHN,
    signatures={(Server, "listen_success"): "(self, port)"},
    # The factory exists, with its options set, before the first port listens.
    sources={(Server, "listen_success"): "0aa2ef7d71380301", (Server, "run"): "447c6bd42c62e98c"},
    fragments=(((WebSocketServerFactory, "setProtocolOptions"), "failByDrop"),),
)
PRECISE_TIMERS = Override(
    "presence_project.server (PreciseTimers, set by PresenceServer.listen_success)",
    "autobahn's WebSocketServerFactory._batched_timer (txaio's batched timer)",
    AUTOBAHN | {"txaio": "26.6.1"},
    fragments=(
        # The factory's timer is the one every connection's deadlines go through.
        (
            (autobahn_protocol.WebSocketServerFactory, "__init__"),
            "self._batched_timer = txaio.make_batched_timer(",
        ),
        (
            (autobahn_protocol.WebSocketProtocol, "_connectionMade"),
            "self.openHandshakeTimeoutCall = self.factory._batched_timer.call_later(",
        ),
    ),
)
KILL_ALL_APPLICATIONS = Override(
    "presence_project.server (PresenceServer.kill_all_applications, _requests_answered)",
    "daphne's Server.kill_all_applications, and reads Server.connections for HTTP requests",
    DAPHNE,
    resolves=((PresenceServer, "run", Server),),
    signatures={(Server, "kill_all_applications"): "(self)"},
    sources={
        (Server, "kill_all_applications"): "4e1618c6f7871758",
        # A request is in `connections` from its start, marked "disconnected" once answered.
        (Server, "protocol_disconnected"): "c1f5fe8cdedc09dc",
        (WebRequest, "finish"): "7e03ef03e35b5b66",
        (WebRequest, "connectionLost"): "9276daf5807184c8",
    },
    fragments=(
        (
            (Server, "run"),
            'addSystemEventTrigger("before", "shutdown", self.kill_all_applications)',
        ),
        ((WebRequest, "__init__"), "self.server.protocol_connected(self)"),
        ((Server, "__init__"), "self.application_close_timeout = application_close_timeout"),
    ),
)
LISTEN_BACKLOG = Override(
    "presence_project.server (PresenceServer.__init__, with_backlog)",
    "daphne's Server.endpoints, each description given a backlog in Twisted's syntax",
    DAPHNE | TWISTED,
    signatures={
        (endpoints, "_parseTCP"): "(factory, port, interface='', backlog=50)",
        (endpoints, "_parseUNIX"): "(factory, address, mode='666', backlog=50, lockfile=True)",
    },
    # daphne listens on exactly the descriptions in self.endpoints, after __init__.
    fragments=(
        ((Server, "run"), "for socket_description in self.endpoints:"),
        ((Server, "run"), "serverFromString(reactor, str(socket_description))"),
    ),
)
ADMISSION_PACING = Override(
    "presence_project.server (AdmissionPacing, PacedConnection; PresenceServer."
    "protocol_disconnected, create_application)",
    "Twisted's tcp.Server (a subclass, built through the transport each TCP port calls), "
    "Port.numberAccepts, stopReading and startReading; daphne's Server.protocol_disconnected and "
    "create_application",
    DAPHNE | TWISTED,
    signatures={
        (tcp.Server, "__init__"): (
            "(self, sock: 'socket.socket', protocol: 'IProtocol', client: 'tuple[object, ...]', "
            "server: 'Port', sessionno: 'int', reactor: 'IReactorFDSet') -> 'None'"
        ),
        (Server, "protocol_disconnected"): "(self, protocol)",
        (Server, "create_application"): "(self, protocol, scope)",
    },
    sources={
        (tcp.Server, "__init__"): "fbf83f6f693d6860",
        (tcp.Connection, "connectionLost"): "dd7a9a87035a2084",
        # A port accepts while it is a reader of the reactor's, up to numberAccepts a pass.
        (tcp.Port, "doRead"): "d240fc123090ee23",
        (abstract.FileDescriptor, "stopReading"): "d6dc9ec5ee8d7cf5",
        (abstract.FileDescriptor, "startReading"): "21aaf12bba935445",
        (Server, "create_application"): "f1e300b4ecf636c8",
    },
    fragments=(
        ((tcp.Port, "doRead"), "transport = self.transport("),
        ((tcp, "Port"), "transport = Server"),
        # A request handed over to a WebSocket has no transport when daphne lets it go.
        ((WebRequest, "process"), "transport, self.transport = self.transport, None"),
        ((WebRequest, "finish"), "self.server.protocol_disconnected(self)"),
        ((http.Request, "__init__"), "self.transport = self.channel.transport"),
        ((Server, "__init__"), "self.websocket_handshake_timeout = websocket_handshake_timeout"),
    ),
)
HIREDIS_PACKING = Override(
    "presence_project.redis_clients (_HiredisPacking, _PackedConnection)",
    "redis-py's asyncio AbstractConnection.pack_command with its HiredisRespSerializer",
    REDIS | HIREDIS,
    resolves=tuple(
        (connection_class, "pack_command", redis_clients._HiredisPacking)
        for connection_class in (
            redis_clients._PackedConnection,
            redis_clients._PackedSentinelConnection,
        )
    ),
    signatures={
        (AbstractConnection, "pack_command"): (
            "(self, *args: Union[bytes, bytearray, memoryview, str, int, float]) -> List[bytes]"
        ),
    },
    sources={
        (AbstractConnection, "pack_command"): "9a0e503fdcf56314",
        (redis_connection, "HiredisRespSerializer"): "c1f036f017b02728",
    },
    fragments=(((AbstractConnection, "send_command"), "self.pack_command(*args)"),),
)
BLOCKING_SENTINEL_POOL = Override(
    "presence_project.redis_clients (_BlockingSentinelPool)",
    "redis-py's asyncio SentinelConnectionPool and BlockingConnectionPool, combined",
    REDIS,
    # The sentinel pool leaves getting and releasing connections to the pool after it.
    resolves=tuple(
        (redis_clients._BlockingSentinelPool, name, BlockingConnectionPool)
        for name in ("get_connection", "release")
    ),
    sources={
        (SentinelConnectionPool, "__init__"): "9732690888bacccc",
        (async_connection, "BlockingConnectionPool"): "6870b4d5d8027946",
    },
)
CACHE_POOL = Override(
    "presence_project.cache (ProcessConnectionPool.from_url)",
    "redis-py's ConnectionPool.from_url, which Django's RedisCacheClient calls",
    DJANGO,
    fragments=(((RedisCacheClient, "_get_connection_pool"), "self._pool_class.from_url("),),
)
CONSUMER_LOOP = Override(
    "presence.consumers (RpcConsumer.__call__ and dispatch)",
    "Channels' AsyncConsumer.__call__ and AsyncConsumer.dispatch",
    CHANNELS,
    resolves=tuple(
        (AsyncWebsocketConsumer, name, AsyncConsumer) for name in ("__call__", "dispatch")
    ),
    # Sending ends in AsyncConsumer.send, which calls the base_send RpcConsumer.__call__ sets.
    sources={
        (AsyncConsumer, "__call__"): "e52238720872dbc3",
        (AsyncConsumer, "dispatch"): "39f34e7d4fb0f655",
        (AsyncConsumer, "send"): "bc80485d75ed3e04",
    },
    fragments=(((AsyncWebsocketConsumer, "send"), "await super().send("),),
)
OVERRIDES = [
    TAKE_OPTIONS,
    SEND_DATA,
    HANDLE_REPLY,
    LISTEN_SUCCESS,
    PRECISE_TIMERS,
    KILL_ALL_APPLICATIONS,
    LISTEN_BACKLOG,
    ADMISSION_PACING,
    HIREDIS_PACKING,
    BLOCKING_SENTINEL_POOL,
    CACHE_POOL,
    CONSUMER_LOOP,
]


@pytest.mark.parametrize("override", OVERRIDES, ids=lambda override: override.ours)
def test_override_matches_its_dependency(override: Override) -> None:
    override.check()


class _NoReactor:
    """A stand-in reactor: the checks build factories and transports without running them."""


def test_every_option_taken_exists_on_the_factory() -> None:
    factory = WebSocketServerFactory(reactor=_NoReactor())
    TAKE_OPTIONS.has(factory, *DaphneProtocol.CONFIG_ATTRS)
    assert factory.tcpNoDelay is True, TAKE_OPTIONS.message("tcpNoDelay is off by default")


def test_twisted_transport_has_the_buffers_send_data_reads() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        transport = tcp.Connection(ours, None, reactor=_NoReactor())
        SEND_DATA.has(
            transport,
            "connected",
            "disconnecting",
            "_writeDisconnected",
            "dataBuffer",
            "_tempDataBuffer",
        )
        assert (transport.dataBuffer, transport._tempDataBuffer) == (b"", []), SEND_DATA.message(
            "a new transport's write buffers are not empty"
        )
        assert transport.writeSomeData(b"frame") == 5, SEND_DATA.message(
            "writeSomeData no longer returns the bytes it wrote"
        )
        assert theirs.recv(5) == b"frame"


def test_autobahn_only_cancels_what_its_timer_returns() -> None:
    used = set(
        re.findall(r"(?:TimeoutCall|PendingCall)\.(\w+)\(", inspect.getsource(autobahn_protocol))
    )
    assert used == {"cancel"}, PRECISE_TIMERS.message(
        f"autobahn calls {sorted(used)} on its deadlines' handles, not only cancel"
    )


def test_hiredis_packs_as_redis_expects() -> None:
    assert HiredisRespSerializer().pack("HMGET", "key", "a", 1) == [
        b"*4\r\n$5\r\nHMGET\r\n$3\r\nkey\r\n$1\r\na\r\n$1\r\n1\r\n"
    ], HIREDIS_PACKING.message("HiredisRespSerializer packs differently")


def test_consumer_still_overrides_what_its_guard_checks() -> None:
    for name in ("__call__", "dispatch"):
        assert name in vars(RpcConsumer), (
            f"presence.consumers.RpcConsumer no longer overrides {name}: drop its guard here"
        )


def test_daphne_runs_on_uvloop() -> None:
    """presence_project.server sets uvloop's policy before daphne.server makes its loop; a
    daphne that made its loop elsewhere (or later) would leave the service on asyncio's."""
    check = (
        "import presence_project.server, daphne.server, uvloop; "
        "print(type(daphne.server.twisted_loop).__module__)"
    )
    ran = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert ran.stdout.strip().startswith("uvloop"), (
        f"daphne's event loop is {ran.stdout.strip()}, not uvloop's: presence_project.server "
        "sets the policy too late for this daphne"
    )
