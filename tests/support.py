"""A FriendshipsService client for tests: a real WebSocket, the project's dcl-rpc client."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import websockets
from django.apps import apps
from django.conf import settings

from presence.protocol import friendships_service_pb2 as pb
from presence.rpc.client import ClientStream, RpcClient

ONLINE, OFFLINE, AWAY = 0, 1, 2


class FriendsClient:
    def __init__(self, ws: websockets.ClientConnection, rpc: RpcClient, token: str | None) -> None:
        self.ws = ws
        self.rpc = rpc
        self.token = token
        self.port = 0
        self.procedures: dict[str, int] = {}

    async def load(self) -> "FriendsClient":
        self.port = await self.rpc.create_port("friendships")
        self.procedures = await self.rpc.load_module(self.port, "FriendshipsService")
        return self

    def _payload(self, token: str | None = None) -> pb.Payload:
        token = token if token is not None else self.token
        return pb.Payload(synapse_token=token) if token is not None else pb.Payload()

    async def call(self, name: str, request: object, response_type: type) -> object:
        raw = await self.rpc.call(self.port, self.procedures[name], request.SerializeToString())
        return response_type.FromString(raw)

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


class Subscription:
    """A live stream whose next item is always asked for, so it arrives as soon as it exists.

    For presence streams it also keeps `view`: each friend's latest status as read so far.
    """

    def __init__(self, stream: ClientStream, response_type: type) -> None:
        self.stream = stream
        self.response_type = response_type
        self.view: dict[str, int] = {}
        self._pending: asyncio.Task[bytes] = asyncio.ensure_future(stream.next())

    async def next(self, timeout: float = 5.0) -> object:
        raw = await asyncio.wait_for(asyncio.shield(self._pending), timeout)
        self._pending = asyncio.ensure_future(self.stream.next())
        item = self.response_type.FromString(raw)
        has_response = "response" in item.DESCRIPTOR.oneofs_by_name
        if has_response and item.WhichOneof("response") == "updates":
            for user in item.updates.users:
                self.view[user.user.address] = user.status.type
        return item

    async def expect_nothing(self, within: float = 0.5) -> None:
        done, _ = await asyncio.wait({self._pending}, timeout=within)
        assert not done, f"unexpected item: {self.response_type.FromString(self._pending.result())}"

    async def presence_until(self, address: str, status: int, timeout: float = 5.0) -> None:
        """Read updates until the latest status read for `address` is `status`.

        Several friends' changes can arrive in one item, so one read may answer several waits.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.view.get(address) != status:
            await self.next(max(0.01, deadline - loop.time()))


def addresses(pages: list[pb.UsersResponse]) -> list[str]:
    return [user.address for page in pages for user in page.users.users]


@asynccontextmanager
async def connect(
    url: str, token: str | None = None, query_token: bool = False
) -> AsyncIterator[FriendsClient]:
    target = f"{url}?access_token={token}" if query_token and token else url
    async with websockets.connect(target, max_size=None) as ws:
        rpc = RpcClient(ws)
        try:
            yield await FriendsClient(ws, rpc, None if query_token else token).load()
        finally:
            await rpc.close()


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


async def befriend(url: str, one: object, other: object) -> None:
    """Make `one` and `other` friends: `one` requests, `other` accepts."""
    async with connect(url, one.token) as a, connect(url, other.token) as b:
        assert outcome(await a.update("request", other.address)) == ("event", "")
        assert outcome(await b.update("accept", one.address)) == ("event", "")


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


# --- Snapshots of the state, for requests that must change nothing -------------------------


def database_rows() -> dict[str, list[dict]]:
    """Every row of every model."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
    }


def redis_contents(ignore: tuple[str, ...] = ()) -> dict[bytes, tuple[bytes | None, bool]]:
    """Every key of the Redis server, but those containing one of `ignore`: its serialized
    value, and whether it expires (or just did).

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
        }
    finally:
        client.close()


async def within_one_window(seconds: float) -> None:
    """Rate limits count in fixed windows of a minute: start where `seconds` still fit."""
    left = 60 - time.time() % 60
    if left < seconds:
        await asyncio.sleep(left + 0.05)
