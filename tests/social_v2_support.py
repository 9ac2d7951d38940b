"""A SocialService v2 client for tests: a real WebSocket signed in by its first frame, the
project's dcl-rpc client, the v2 messages."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import websockets
from google.protobuf import empty_pb2

from presence.protocol import social_service_v2_pb2 as pb
from presence.rpc.client import RpcClient
from tests.signing import Identity, ws_sign_in_frame
from tests.support import Subscription

MODULE = "SocialService"
ONLINE, OFFLINE, AWAY = pb.ONLINE, pb.OFFLINE, pb.AWAY


class SocialClient:
    def __init__(self, ws: websockets.ClientConnection, rpc: RpcClient) -> None:
        self.ws = ws
        self.rpc = rpc
        self.port = 0
        self.procedures: dict[str, int] = {}

    async def load(self) -> "SocialClient":
        self.port = await self.rpc.create_port("social")
        self.procedures = await self.rpc.load_module(self.port, MODULE)
        return self

    async def call(self, name: str, request: object, response_type: type) -> object:
        raw = await self.rpc.call(self.port, self.procedures[name], request.SerializeToString())
        return response_type.FromString(raw)

    async def subscribe(self, name: str, response_type: type) -> Subscription:
        """Open a stream and return once the server runs it (see tests.support.armed)."""
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
    ) -> pb.UpsertFriendshipResponse:
        body_type = getattr(pb.UpsertFriendshipPayload, f"{kind.capitalize()}Payload")
        body = body_type(user=pb.User(address=address))
        if message is not None:
            body.message = message
        request = pb.UpsertFriendshipPayload(**{kind: body})
        return await self.call("UpsertFriendship", request, pb.UpsertFriendshipResponse)

    async def friends(self, limit: int = 0, offset: int = 0) -> pb.PaginatedFriendsProfilesResponse:
        request = pb.GetFriendsPayload()
        if limit or offset:
            request.pagination.CopyFrom(pb.Pagination(limit=limit, offset=offset))
        return await self.call("GetFriends", request, pb.PaginatedFriendsProfilesResponse)

    async def mutual_friends(self, address: str) -> pb.PaginatedFriendsProfilesResponse:
        request = pb.GetMutualFriendsPayload(user=pb.User(address=address))
        return await self.call("GetMutualFriends", request, pb.PaginatedFriendsProfilesResponse)

    async def pending(self, sent: bool = False) -> pb.PaginatedFriendshipRequestsResponse:
        name = "GetSentFriendshipRequests" if sent else "GetPendingFriendshipRequests"
        return await self.call(
            name, pb.GetFriendshipRequestsPayload(), pb.PaginatedFriendshipRequestsResponse
        )

    async def status_with(self, address: str) -> pb.GetFriendshipStatusResponse:
        request = pb.GetFriendshipStatusPayload(user=pb.User(address=address))
        return await self.call("GetFriendshipStatus", request, pb.GetFriendshipStatusResponse)

    async def block(self, address: str) -> pb.BlockUserResponse:
        request = pb.BlockUserPayload(user=pb.User(address=address))
        return await self.call("BlockUser", request, pb.BlockUserResponse)

    async def unblock(self, address: str) -> pb.UnblockUserResponse:
        request = pb.UnblockUserPayload(user=pb.User(address=address))
        return await self.call("UnblockUser", request, pb.UnblockUserResponse)

    async def blocked_users(self, limit: int = 0, offset: int = 0) -> pb.GetBlockedUsersResponse:
        request = pb.GetBlockedUsersPayload()
        if limit or offset:
            request.pagination.CopyFrom(pb.Pagination(limit=limit, offset=offset))
        return await self.call("GetBlockedUsers", request, pb.GetBlockedUsersResponse)

    async def blocking_status(self) -> pb.GetBlockingStatusResponse:
        return await self.call("GetBlockingStatus", empty_pb2.Empty(), pb.GetBlockingStatusResponse)

    async def connectivity(self) -> Subscription:
        return await self.subscribe(
            "SubscribeToFriendConnectivityUpdates", pb.FriendConnectivityUpdate
        )

    async def friendship_updates(self) -> Subscription:
        return await self.subscribe("SubscribeToFriendshipUpdates", pb.FriendshipUpdate)

    async def block_updates(self) -> Subscription:
        return await self.subscribe("SubscribeToBlockUpdates", pb.BlockUpdate)


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


def profiles(response: pb.PaginatedFriendsProfilesResponse) -> list[str]:
    return [friend.address for friend in response.friends]


async def befriend_signed(url: str, one: Identity, other: Identity) -> None:
    """`one` requests, `other` accepts, both through SocialService."""
    async with connect_signed(url, one) as a, connect_signed(url, other) as b:
        assert (await a.upsert("request", other.address)).WhichOneof("response") == "accepted"
        assert (await b.upsert("accept", one.address)).WhichOneof("response") == "accepted"
