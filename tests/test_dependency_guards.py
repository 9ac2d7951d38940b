"""Every override of a dependency's internals, checked against the code it was written for.

Each test fails, naming the override, when an upgrade changes what the override relies on:
the version it was checked against, the private members it touches, the signature and the
source (a digest of `inspect.getsource`) of the upstream code it replaces or leans on.
When one fails: read the override against the new upstream code, keep, change or drop it,
then update the expectation here.
"""

import hashlib
import inspect
import socket
from importlib.metadata import version

from autobahn.twisted.websocket import WebSocketAdapterProtocol, WebSocketServerFactory
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol as DaphneProtocol
from django.core.cache.backends.redis import RedisCacheClient
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.connection import HiredisRespSerializer
from twisted.internet import abstract, tcp

from presence.consumers import RpcConsumer
from presence_project import redis_clients
from presence_project.server import PresenceServer, PresenceWebSocketProtocol

# The versions every override below was read against.
AUTOBAHN = "26.10.2"
TWISTED = "26.10.0"
DAPHNE = "4.2.3"
CHANNELS = "4.3.2"
REDIS = "8.1.0"
HIREDIS = "3.5.0"
DJANGO = "5.2.19"


def digest(code: object) -> str:
    return hashlib.sha256(inspect.getsource(code).encode()).hexdigest()[:16]


class Override:
    """What one override relies on; each check fails with a message naming it."""

    def __init__(self, ours: str, theirs: str) -> None:
        self.ours = ours
        self.theirs = theirs

    def message(self, what: str) -> str:
        return (
            f"{self.ours} overrides {self.theirs}: {what}. Read the override against the new "
            "code, keep, change or drop it, then update this test's expectation."
        )

    def pinned(self, distribution: str, checked: str) -> None:
        installed = version(distribution)
        assert installed == checked, self.message(
            f"{distribution} is {installed}, the override was checked against {checked}"
        )

    def unchanged(self, code: object, checked: str) -> None:
        """`code` (a function or class) has the source the override was written against."""
        name = f"{code.__module__.partition('.')[0]}'s {code.__qualname__}"
        actual = digest(code)
        assert actual == checked, self.message(
            f"{name} changed (source digest {actual}, checked against {checked})"
        )

    def resolves(self, cls: type, name: str, owner: type) -> None:
        """Without the override, `cls.name` would be `owner`'s: nothing between them that the
        override would silently skip."""
        found = inspect.getattr_static(cls, name)
        expected = inspect.getattr_static(owner, name)
        assert found is expected, self.message(
            f"{cls.__qualname__}.{name} is no longer {owner.__qualname__}'s"
        )

    def signature(self, code: object, checked: str) -> None:
        actual = str(inspect.signature(code))
        assert actual == checked, self.message(
            f"{code.__qualname__}'s signature is {actual}, checked against {checked}"
        )

    def has(self, obj: object, *names: str) -> None:
        missing = [name for name in names if not hasattr(obj, name)]
        assert not missing, self.message(f"{type(obj).__qualname__} has no {', '.join(missing)}")

    def contains(self, code: object, fragment: str) -> None:
        assert fragment in inspect.getsource(code), self.message(
            f"{code.__qualname__} no longer contains {fragment!r}"
        )


class _NoReactor:
    """A stand-in reactor: the checks build transports without running anything."""


def test_websocket_options_on_the_protocol_class() -> None:
    override = Override(
        "presence_project.server (PresenceWebSocketProtocol.take_options)",
        "autobahn's WebSocketProtocol.CONFIG_ATTRS, copied into each connection by _connectionMade",
    )
    override.pinned("autobahn", AUTOBAHN)
    override.unchanged(AutobahnProtocol._connectionMade, "7ac58d8bb6c3c752")
    override.resolves(DaphneProtocol, "CONFIG_ATTRS", DaphneProtocol.__mro__[1])
    # Every option take_options reads exists on the factory daphne builds.
    factory = WebSocketServerFactory(reactor=_NoReactor())
    override.has(factory, *DaphneProtocol.CONFIG_ATTRS)
    # Frames leave at once: autobahn turns Nagle's algorithm off from one of these options.
    override.contains(WebSocketAdapterProtocol.connectionMade, "setTcpNoDelay(self.tcpNoDelay)")
    assert factory.tcpNoDelay is True, override.message("tcpNoDelay is off by default")


def test_frames_written_straight_to_the_socket() -> None:
    override = Override(
        "presence_project.server (PresenceWebSocketProtocol.sendData)",
        "autobahn's WebSocketProtocol.sendData and reads Twisted's private write buffers "
        "(transport._writeDisconnected, _tempDataBuffer, dataBuffer) and autobahn's send_queue",
    )
    override.pinned("autobahn", AUTOBAHN)
    override.pinned("Twisted", TWISTED)
    override.resolves(DaphneProtocol, "sendData", AutobahnProtocol)
    override.signature(
        AutobahnProtocol.sendData,
        "(self, data: 'bytes', sync: 'bool' = False, chopsize: 'int | None' = None) -> 'None'",
    )
    override.unchanged(AutobahnProtocol.sendData, "5dcca425b048b07e")
    override.contains(AutobahnProtocol._connectionMade, "self.send_queue = deque()")
    # What decides that nothing waits before a frame, and how Twisted writes it otherwise.
    override.unchanged(abstract.FileDescriptor.write, "3e46c97fc173bc7e")
    override.unchanged(abstract.FileDescriptor.doWrite, "a986d7b1b1054e43")
    override.unchanged(tcp.Connection.writeSomeData, "2dd0d4209260b94e")
    ours, theirs = socket.socketpair()
    with ours, theirs:
        transport = tcp.Connection(ours, None, reactor=_NoReactor())
        override.has(
            transport,
            "connected",
            "disconnecting",
            "_writeDisconnected",
            "dataBuffer",
            "_tempDataBuffer",
        )
        assert (transport.dataBuffer, transport._tempDataBuffer) == (b"", []), override.message(
            "a new transport's write buffers are not empty"
        )
        assert transport.writeSomeData(b"frame") == 5, override.message(
            "writeSomeData no longer returns the bytes it wrote"
        )
        assert theirs.recv(5) == b"frame"


def test_close_reason_and_late_frames() -> None:
    override = Override(
        "presence_project.server (PresenceWebSocketProtocol.handle_reply)",
        "daphne's WebSocketProtocol.handle_reply",
    )
    override.pinned("daphne", DAPHNE)
    override.pinned("autobahn", AUTOBAHN)
    override.signature(DaphneProtocol.handle_reply, "(self, message)")
    override.unchanged(DaphneProtocol.handle_reply, "5331423b1cf2016a")
    override.signature(
        AutobahnProtocol.sendClose,
        "(self, code: 'int | None' = None, reason: 'str | None' = None) -> 'None'",
    )
    override.has(PresenceWebSocketProtocol, "STATE_CONNECTING", "STATE_CLOSING", "STATE_CLOSED")


def test_protocol_installed_when_listening() -> None:
    override = Override(
        "presence_project.server (PresenceServer.listen_success)",
        "daphne's Server.listen_success",
    )
    override.pinned("daphne", DAPHNE)
    override.signature(Server.listen_success, "(self, port)")
    override.unchanged(Server.listen_success, "0aa2ef7d71380301")
    # The factory exists, with its options set, before the first port listens.
    override.unchanged(Server.run, "447c6bd42c62e98c")
    override.contains(WebSocketServerFactory.setProtocolOptions, "failByDrop")


def test_drain_before_shutdown() -> None:
    override = Override(
        "presence_project.server (PresenceServer.kill_all_applications)",
        "daphne's Server.kill_all_applications",
    )
    override.pinned("daphne", DAPHNE)
    override.signature(Server.kill_all_applications, "(self)")
    override.unchanged(Server.kill_all_applications, "4e1618c6f7871758")
    override.contains(
        Server.run, 'addSystemEventTrigger("before", "shutdown", self.kill_all_applications)'
    )
    override.resolves(PresenceServer, "run", Server)


def test_commands_packed_by_hiredis() -> None:
    override = Override(
        "presence_project.redis_clients (_HiredisPacking, _PackedConnection)",
        "redis-py's asyncio AbstractConnection.pack_command with its HiredisRespSerializer",
    )
    override.pinned("redis", REDIS)
    override.pinned("hiredis", HIREDIS)
    override.signature(
        AbstractConnection.pack_command,
        "(self, *args: Union[bytes, bytearray, memoryview, str, int, float]) -> List[bytes]",
    )
    override.unchanged(AbstractConnection.pack_command, "9a0e503fdcf56314")
    override.unchanged(HiredisRespSerializer, "c1f036f017b02728")
    override.contains(AbstractConnection.send_command, "self.pack_command(*args)")
    for connection_class in (
        redis_clients._PackedConnection,
        redis_clients._PackedSentinelConnection,
    ):
        override.resolves(connection_class, "pack_command", redis_clients._HiredisPacking)
    assert HiredisRespSerializer().pack("HMGET", "key", "a", 1) == [
        b"*4\r\n$5\r\nHMGET\r\n$3\r\nkey\r\n$1\r\na\r\n$1\r\n1\r\n"
    ], override.message("HiredisRespSerializer packs differently")


def test_sentinel_pool_that_waits() -> None:
    override = Override(
        "presence_project.redis_clients (_BlockingSentinelPool)",
        "redis-py's asyncio SentinelConnectionPool and BlockingConnectionPool, combined",
    )
    override.pinned("redis", REDIS)
    override.unchanged(SentinelConnectionPool.__init__, "9732690888bacccc")
    override.unchanged(BlockingConnectionPool, "6870b4d5d8027946")
    # The sentinel pool leaves getting and releasing connections to the pool after it.
    for name in ("get_connection", "release"):
        override.resolves(redis_clients._BlockingSentinelPool, name, BlockingConnectionPool)


def test_one_pool_per_process_for_the_cache() -> None:
    override = Override(
        "presence_project.cache (ProcessConnectionPool.from_url)",
        "redis-py's ConnectionPool.from_url, which Django's RedisCacheClient calls",
    )
    override.pinned("Django", DJANGO)
    override.contains(RedisCacheClient._get_connection_pool, "self._pool_class.from_url(")


def test_consumer_loop_without_channel_or_task_per_message() -> None:
    override = Override(
        "presence.consumers (RpcConsumer.__call__ and dispatch)",
        "Channels' AsyncConsumer.__call__ and AsyncConsumer.dispatch",
    )
    override.pinned("channels", CHANNELS)
    for name in ("__call__", "dispatch"):
        override.resolves(AsyncWebsocketConsumer, name, AsyncConsumer)
    override.unchanged(AsyncConsumer.__call__, "e52238720872dbc3")
    override.unchanged(AsyncConsumer.dispatch, "39f34e7d4fb0f655")
    # Sending ends in AsyncConsumer.send, which calls the base_send RpcConsumer.__call__ sets.
    override.contains(AsyncWebsocketConsumer.send, "await super().send(")
    override.unchanged(AsyncConsumer.send, "bc80485d75ed3e04")
    for name in ("__call__", "dispatch"):
        assert name in vars(RpcConsumer), (
            f"presence.consumers.RpcConsumer no longer overrides {name}: drop its guard here"
        )
