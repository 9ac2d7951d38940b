"""The SocialService (decentraland.social_service.v2) procedures of friends and presence, for
one client session.

Requests carry no token: the caller is the user the connection is bound to, by a signed
first frame or a token. Everything goes through the same friendship rules, presence state
and session feeds as FriendshipsService, so a change made through one module is seen through
the other. The published procedures outside friends and presence answer a remote error.
"""

import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from django.core.exceptions import ValidationError
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from accounts.addresses import normalize_address
from friendships import selectors, services
from friendships.models import FriendshipAction, FriendshipEvent, FriendshipState
from presence import observability
from presence.conf import presence_settings
from presence.delivery.sessions import ClientSession, EventFeed, PresenceFeed
from presence.errors import BadRequest
from presence.events import FriendshipNotice, Presence
from presence.procedures.errors import answered_in
from presence.procedures.locations import location_of, put_location
from presence.protocol import social_service_v2_pb2 as pb
from presence.rpc.feed import Feed
from presence.rpc.server import (
    ErrorCode,
    RemoteProcedureError,
    RpcModule,
    server_feed,
    unary,
)
from presence.services import message_choice
from presence_project.db import database_sync_to_async
from presence_project.timestamps import ms

MODULE_NAME = "SocialService"

# Published in @dcl/protocol's SocialService but outside friends and presence.
NOT_SERVED = (
    "GetSocialSettings",
    "UpsertSocialSettings",
    "GetPrivateMessagesSettings",
    "SubscribeToCommunityMemberConnectivityUpdates",
    "StartPrivateVoiceChat",
    "AcceptPrivateVoiceChat",
    "RejectPrivateVoiceChat",
    "EndPrivateVoiceChat",
    "GetIncomingPrivateVoiceChatRequest",
    "SubscribeToPrivateVoiceChatUpdates",
    "StartCommunityVoiceChat",
    "JoinCommunityVoiceChat",
    "RequestToSpeakInCommunityVoiceChat",
    "PromoteSpeakerInCommunityVoiceChat",
    "DemoteSpeakerInCommunityVoiceChat",
    "KickPlayerFromCommunityVoiceChat",
    "RejectSpeakRequestInCommunityVoiceChat",
    "EndCommunityVoiceChat",
    "SubscribeToCommunityVoiceChatUpdates",
    "MuteSpeakerFromCommunityVoiceChat",
)

# UpsertFriendshipPayload's oneof members.
_ACTIONS = {
    "request": FriendshipAction.REQUEST,
    "accept": FriendshipAction.ACCEPT,
    "reject": FriendshipAction.REJECT,
    "delete": FriendshipAction.DELETE,
    "cancel": FriendshipAction.CANCEL,
}

# FriendshipUpdate's members besides request, named as the actions. An unblock has none:
# SubscribeToBlockUpdates tells it.
_UPDATES = {
    FriendshipAction.ACCEPT: pb.FriendshipUpdate.AcceptResponse,
    FriendshipAction.REJECT: pb.FriendshipUpdate.RejectResponse,
    FriendshipAction.DELETE: pb.FriendshipUpdate.DeleteResponse,
    FriendshipAction.CANCEL: pb.FriendshipUpdate.CancelResponse,
    FriendshipAction.BLOCK: pb.FriendshipUpdate.BlockResponse,
}

# The status of a friendship with no block between the pair, requests aside.
_STATUSES = {
    FriendshipState.ACCEPTED: pb.ACCEPTED,
    FriendshipState.REJECTED: pb.REJECTED,
    FriendshipState.CANCELLED: pb.CANCELED,
    FriendshipState.DELETED: pb.DELETED,
    FriendshipState.BLOCKED: pb.BLOCKED,
}

FriendshipRequestT = TypeVar(
    "FriendshipRequestT",
    pb.FriendshipRequestResponse,
    pb.UpsertFriendshipResponse.Accepted,
    pb.FriendshipUpdate.RequestResponse,
)


def _profile(address: str) -> pb.FriendProfile:
    """This service keeps no profiles (names, pictures live on catalysts): the address only."""
    return pb.FriendProfile(address=address)


def _request(
    message_type: type[FriendshipRequestT],
    other: str,
    created_at_ms: int,
    message: str,
    event_id: int,
) -> FriendshipRequestT:
    """A friendship request with `other`, in any of the three messages that carry one; its
    id is the id of the event that made it."""
    fields: dict[str, object] = {
        "friend": _profile(other),
        "created_at": created_at_ms,
        "id": str(event_id),
    }
    if message:
        fields["message"] = message
    return message_type(**fields)


def _window(request: Message) -> tuple[int, int]:
    """(offset, limit) of a request's optional pagination; the page size is the most."""
    size = presence_settings().page_size
    if not request.HasField("pagination"):
        return 0, size
    offset, limit = request.pagination.offset, request.pagination.limit
    return max(offset, 0), min(limit, size) if limit > 0 else size


def _pagination(total: int, offset: int, limit: int) -> pb.PaginatedResponse:
    return pb.PaginatedResponse(total=total, page=math.ceil(offset / limit) + 1)


def _profiles_page(
    addresses: Sequence[str], request: Message
) -> pb.PaginatedFriendsProfilesResponse:
    offset, limit = _window(request)
    return pb.PaginatedFriendsProfilesResponse(
        friends=[_profile(a) for a in addresses[offset : offset + limit]],
        pagination_data=_pagination(len(addresses), offset, limit),
    )


def _requests_page(
    address: str, incoming: bool, request: Message
) -> pb.PaginatedFriendshipRequestsResponse:
    outgoing, received = selectors.pending_requests(address)
    pending = received if incoming else outgoing
    offset, limit = _window(request)
    items = [
        _request(
            pb.FriendshipRequestResponse,
            f.other(address),
            ms(f.updated_at),
            f.message,
            f.request_event_id,
        )
        for f in pending[offset : offset + limit]
    ]
    return pb.PaginatedFriendshipRequestsResponse(
        requests=pb.FriendshipRequests(requests=items),
        pagination_data=_pagination(pending.count(), offset, limit),
    )


def _friendship_status(address: str, other: str) -> pb.GetFriendshipStatusResponse.Ok:
    blockers = selectors.blockers_between(address, other)
    if blockers:
        return pb.GetFriendshipStatusResponse.Ok(
            status=pb.BLOCKED if address in blockers else pb.BLOCKED_BY
        )
    friendship = selectors.friendship_between(address, other)
    if friendship is None:
        return pb.GetFriendshipStatusResponse.Ok(status=pb.NONE)
    if friendship.state != FriendshipState.REQUESTED:
        return pb.GetFriendshipStatusResponse.Ok(status=_STATUSES[friendship.state])
    ok = pb.GetFriendshipStatusResponse.Ok(
        status=pb.REQUEST_SENT if friendship.requested_by_id == address else pb.REQUEST_RECEIVED
    )
    if friendship.message:
        ok.message = friendship.message
    return ok


def _blocked_page(address: str, request: Message) -> pb.GetBlockedUsersResponse:
    blocks = selectors.blocked_by(address)
    offset, limit = _window(request)
    return pb.GetBlockedUsersResponse(
        profiles=[
            pb.BlockedUserProfile(address=b.blocked_id, blocked_at=ms(b.created_at))
            for b in blocks[offset : offset + limit]
        ],
        pagination_data=_pagination(blocks.count(), offset, limit),
    )


def _blocking_status(address: str) -> pb.GetBlockingStatusResponse:
    return pb.GetBlockingStatusResponse(
        blocked_users=list(selectors.blocked_by(address).values_list("blocked_id", flat=True)),
        blocked_by_users=selectors.blocker_addresses(address),
    )


def _friendship_update(notice: FriendshipNotice) -> pb.FriendshipUpdate | None:
    """The update a friendship event is for the user on its receiving end, if v2 has one."""
    if notice.action == FriendshipAction.REQUEST:
        return pb.FriendshipUpdate(
            request=_request(
                pb.FriendshipUpdate.RequestResponse,
                notice.actor,
                notice.created_at_ms,
                notice.message,
                notice.event_id,
            )
        )
    body = _UPDATES.get(FriendshipAction(notice.action))
    if body is None:
        return None
    return pb.FriendshipUpdate(**{notice.action: body(user=pb.User(address=notice.actor))})


async def _act(
    actor: str, other: str, action: FriendshipAction, message: str = ""
) -> FriendshipEvent:
    return await database_sync_to_async(services.apply_action)(actor, other, action, message)


def _not_served(name: str) -> Callable[[ClientSession, Message], Awaitable[Message]]:
    async def refuse(session: ClientSession, request: Message) -> Message:
        raise RemoteProcedureError(
            f"{MODULE_NAME}.{name} is not served here: this service serves friends and "
            "presence only",
            ErrorCode.NOT_IMPLEMENTED,
        )

    return refuse


def _caller(session: ClientSession) -> str:
    """The user the connection is bound to; a connection not signed in is refused."""
    if session.address is None:
        raise RemoteProcedureError(
            "this connection is not signed in: send the signed-fetch headers of get:/ "
            "as the first frame",
            ErrorCode.UNAUTHORIZED,
        )
    return session.address


async def get_friends(
    session: ClientSession, request: pb.GetFriendsPayload
) -> pb.PaginatedFriendsProfilesResponse:
    friends = await database_sync_to_async(selectors.friend_addresses)(_caller(session))
    return _profiles_page(friends, request)


async def get_mutual_friends(
    session: ClientSession,
    request: pb.GetMutualFriendsPayload,
) -> pb.PaginatedFriendsProfilesResponse:
    address = _caller(session)
    try:
        other = normalize_address(request.user.address)
    except ValidationError as exc:
        raise RemoteProcedureError(" ".join(exc.messages)) from exc
    mutual = await database_sync_to_async(selectors.mutual_friend_addresses)(address, other)
    return _profiles_page(mutual, request)


async def get_pending_requests(
    session: ClientSession,
    request: pb.GetFriendshipRequestsPayload,
) -> pb.PaginatedFriendshipRequestsResponse:
    return await database_sync_to_async(_requests_page)(_caller(session), True, request)


async def get_sent_requests(
    session: ClientSession,
    request: pb.GetFriendshipRequestsPayload,
) -> pb.PaginatedFriendshipRequestsResponse:
    return await database_sync_to_async(_requests_page)(_caller(session), False, request)


async def upsert_friendship(
    session: ClientSession, request: pb.UpsertFriendshipPayload
) -> pb.UpsertFriendshipResponse:
    address = _caller(session)
    kind = request.WhichOneof("action")
    if kind is None:
        raise BadRequest(f"action must be one of {', '.join(_ACTIONS)}")
    body = getattr(request, kind)
    other = normalize_address(body.user.address)
    message = body.message if kind == "request" and body.HasField("message") else ""
    event = await _act(address, other, _ACTIONS[kind], message)
    return pb.UpsertFriendshipResponse(
        accepted=_request(
            pb.UpsertFriendshipResponse.Accepted,
            other,
            ms(event.created_at),
            event.message,
            event.id,
        )
    )


async def get_friendship_status(
    session: ClientSession,
    request: pb.GetFriendshipStatusPayload,
) -> pb.GetFriendshipStatusResponse:
    address = _caller(session)
    other = normalize_address(request.user.address)
    status = await database_sync_to_async(_friendship_status)(address, other)
    return pb.GetFriendshipStatusResponse(accepted=status)


async def block_user(session: ClientSession, request: pb.BlockUserPayload) -> pb.BlockUserResponse:
    address = _caller(session)
    other = normalize_address(request.user.address)
    event = await _act(address, other, FriendshipAction.BLOCK)
    profile = pb.BlockedUserProfile(address=other, blocked_at=ms(event.created_at))
    return pb.BlockUserResponse(ok=pb.BlockUserResponse.Ok(profile=profile))


async def unblock_user(
    session: ClientSession, request: pb.UnblockUserPayload
) -> pb.UnblockUserResponse:
    address = _caller(session)
    other = normalize_address(request.user.address)
    await _act(address, other, FriendshipAction.UNBLOCK)
    profile = pb.BlockedUserProfile(address=other)
    return pb.UnblockUserResponse(ok=pb.UnblockUserResponse.Ok(profile=profile))


async def get_blocked_users(
    session: ClientSession, request: pb.GetBlockedUsersPayload
) -> pb.GetBlockedUsersResponse:
    return await database_sync_to_async(_blocked_page)(_caller(session), request)


async def get_blocking_status(
    session: ClientSession, request: empty_pb2.Empty
) -> pb.GetBlockingStatusResponse:
    return await database_sync_to_async(_blocking_status)(_caller(session))


def _friendship_updates(batch: list[FriendshipNotice]) -> bytes:
    (notice,) = batch
    update = _friendship_update(notice)
    assert update is not None, "the feed takes only notices that have an update"
    return update.SerializeToString()


def _block_updates(batch: list[FriendshipNotice]) -> bytes:
    (notice,) = batch
    return pb.BlockUpdate(
        address=notice.actor, is_blocked=notice.action == FriendshipAction.BLOCK
    ).SerializeToString()


def _events_feed(render: Callable[[list[FriendshipNotice]], bytes]) -> EventFeed:
    return Feed(render, per_item=1, max_pending=presence_settings().max_pending_events)


async def subscribe_to_friendship_updates(
    session: ClientSession, request: empty_pb2.Empty
) -> EventFeed:
    _caller(session)
    feed = _events_feed(_friendship_updates)
    return session.subscribe_events(feed, lambda n: _friendship_update(n) is not None)


async def subscribe_to_block_updates(session: ClientSession, request: empty_pb2.Empty) -> EventFeed:
    _caller(session)
    blocking = {FriendshipAction.BLOCK, FriendshipAction.UNBLOCK}
    return session.subscribe_events(_events_feed(_block_updates), lambda n: n.action in blocking)


def _connectivity_update(batch: list[Presence]) -> bytes:
    (presence,) = batch
    observability.delivered(batch)
    return _encoded_connectivity_update(presence)


@functools.lru_cache(maxsize=4096)
def _encoded_connectivity_update(presence: Presence) -> bytes:
    """One friend's change, encoded once for all of their followers on this process."""
    update = pb.FriendConnectivityUpdate(
        friend=_profile(presence.address),
        status=int(presence.status),
        devices=presence.devices,
    )
    put_location(update, presence.location)  # [location]
    if presence.message:  # [status]
        update.status_message = presence.message
    return update.SerializeToString()


async def subscribe_to_friend_connectivity_updates(
    session: ClientSession,
    request: empty_pb2.Empty,
) -> PresenceFeed:
    """The friends online now, then each change, one friend per item."""
    _caller(session)
    return await session.subscribe_presence(Feed(_connectivity_update, per_item=1))


# --- [location] ---------------------------------------------------------------------------


async def set_location(
    session: ClientSession, request: pb.SetLocationPayload
) -> pb.SetLocationResponse:
    _caller(session)
    presence = await session.set_location(location_of(request))
    ok = pb.SetLocationResponse.Ok()
    put_location(ok, presence.location)
    return pb.SetLocationResponse(ok=ok)


async def presence_heartbeat(
    session: ClientSession, request: pb.PresenceHeartbeatPayload
) -> pb.PresenceHeartbeatResponse:
    _caller(session)
    presence = await session.heartbeat(location_of(request))
    ok = pb.PresenceHeartbeatResponse.Ok(
        status=int(presence.status),
        offline_after_seconds=presence_settings().heartbeat_offline_seconds,
    )
    put_location(ok, presence.location)
    return pb.PresenceHeartbeatResponse(ok=ok)


# --- [/location] --------------------------------------------------------------------------
async def set_status_message(
    session: ClientSession, request: pb.SetStatusMessagePayload
) -> pb.SetStatusMessageResponse:
    """[status] Set or clear the caller's status message."""
    _caller(session)
    until = request.until if request.HasField("until") else None
    message = message_choice(request.message, until, request.clear_on_offline)
    await session.set_message(message)
    return pb.SetStatusMessageResponse(ok=pb.SetStatusMessageResponse.Ok(message=message.text))


Empty = empty_pb2.Empty
MODULE = RpcModule(
    MODULE_NAME,
    (
        unary("GetFriends", pb.GetFriendsPayload, get_friends),
        unary("GetMutualFriends", pb.GetMutualFriendsPayload, get_mutual_friends),
        unary(
            "GetPendingFriendshipRequests",
            pb.GetFriendshipRequestsPayload,
            get_pending_requests,
            answered_in(pb.PaginatedFriendshipRequestsResponse),
        ),
        unary(
            "GetSentFriendshipRequests",
            pb.GetFriendshipRequestsPayload,
            get_sent_requests,
            answered_in(pb.PaginatedFriendshipRequestsResponse),
        ),
        unary(
            "UpsertFriendship",
            pb.UpsertFriendshipPayload,
            upsert_friendship,
            answered_in(pb.UpsertFriendshipResponse),
        ),
        server_feed("SubscribeToFriendshipUpdates", Empty, subscribe_to_friendship_updates),
        unary(
            "GetFriendshipStatus",
            pb.GetFriendshipStatusPayload,
            get_friendship_status,
            answered_in(pb.GetFriendshipStatusResponse),
        ),
        server_feed(
            "SubscribeToFriendConnectivityUpdates",
            Empty,
            subscribe_to_friend_connectivity_updates,
        ),
        unary("BlockUser", pb.BlockUserPayload, block_user, answered_in(pb.BlockUserResponse)),
        unary(
            "UnblockUser",
            pb.UnblockUserPayload,
            unblock_user,
            answered_in(pb.UnblockUserResponse),
        ),
        unary("GetBlockedUsers", pb.GetBlockedUsersPayload, get_blocked_users),
        unary("GetBlockingStatus", Empty, get_blocking_status),
        server_feed("SubscribeToBlockUpdates", Empty, subscribe_to_block_updates),
        *(unary(name, Empty, _not_served(name)) for name in NOT_SERVED),
        # [location]
        unary(
            "SetLocation",
            pb.SetLocationPayload,
            set_location,
            answered_in(pb.SetLocationResponse),
        ),
        unary(
            "PresenceHeartbeat",
            pb.PresenceHeartbeatPayload,
            presence_heartbeat,
            answered_in(pb.PresenceHeartbeatResponse),
        ),
        unary(  # [status]
            "SetStatusMessage",
            pb.SetStatusMessagePayload,
            set_status_message,
            answered_in(pb.SetStatusMessageResponse),
        ),
    ),
)
