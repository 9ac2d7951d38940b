"""The FriendshipsService procedures: protobuf in, protobuf out, for one client session."""

import functools
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from channels.db import database_sync_to_async
from django.db.models import QuerySet
from google.protobuf.message import Message

from accounts.addresses import normalize_address
from friendships import selectors, services
from friendships.models import Friendship, FriendshipAction, FriendshipEvent
from presence import observability
from presence.conf import presence_settings
from presence.delivery.sessions import ClientSession, FriendshipNotice, PresenceStream
from presence.procedures.errors import (
    BadRequest,
    TooManyRequests,
    feed_errors,
    stream_errors,
    unary_errors,
)
from presence.protocol import friendships_service_pb2 as pb
from presence.rpc.server import RpcModule, server_feed, server_stream, unary
from presence.store import online as state
from presence.store.online import Presence, Status

MODULE_NAME = "FriendshipsService"

# The oneof member of FriendshipEventPayload / FriendshipEventResponse for each action.
_BODY_FIELDS = {
    "request": FriendshipAction.REQUEST,
    "accept": FriendshipAction.ACCEPT,
    "reject": FriendshipAction.REJECT,
    "cancel": FriendshipAction.CANCEL,
    "delete": FriendshipAction.DELETE,
    "block": FriendshipAction.BLOCK,
    "unblock": FriendshipAction.UNBLOCK,
}

_RESPONSE_BODIES = {
    FriendshipAction.REQUEST: pb.RequestResponse,
    FriendshipAction.ACCEPT: pb.AcceptResponse,
    FriendshipAction.REJECT: pb.RejectResponse,
    FriendshipAction.CANCEL: pb.CancelResponse,
    FriendshipAction.DELETE: pb.DeleteResponse,
    FriendshipAction.BLOCK: pb.BlockResponse,
    FriendshipAction.UNBLOCK: pb.UnblockResponse,
}


def _users_pages(addresses: Sequence[str]) -> list[pb.UsersResponse]:
    size = presence_settings().page_size
    return [
        pb.UsersResponse(
            users=pb.Users(users=[pb.User(address=a) for a in addresses[i : i + size]])
        )
        for i in range(0, len(addresses), size)
    ]


def _request_response(other: str, created_at_ms: int, message: str) -> pb.RequestResponse:
    body = pb.RequestResponse(user=pb.User(address=other), created_at=created_at_ms)
    if message:
        body.message = message
    return body


def _event_response(
    action: str, other: str, created_at_ms: int = 0, message: str = ""
) -> pb.FriendshipEventResponse:
    """An event as one party sees it: `other` is the user on the far side."""
    body_type = _RESPONSE_BODIES[FriendshipAction(action)]
    if body_type is pb.RequestResponse:
        return pb.FriendshipEventResponse(request=_request_response(other, created_at_ms, message))
    return pb.FriendshipEventResponse(**{action: body_type(user=pb.User(address=other))})


def _user_presence(presence: Presence) -> pb.UserPresence:
    message = pb.UserPresence(
        user=pb.User(address=presence.address), status=pb.Status(type=int(presence.status))
    )
    if presence.last_seen_ms is not None:
        message.last_seen = presence.last_seen_ms
    return message


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _token(payload: Message | None) -> str | None:
    """The synapse_token of a Payload or StatusPayload, when one was sent."""
    if payload is None or not payload.HasField("synapse_token"):
        return None
    return payload.synapse_token


def _pending_requests(address: str) -> pb.RequestEvents:
    outgoing, incoming = selectors.pending_requests(address)

    def requests(friendships: QuerySet[Friendship]) -> pb.Requests:
        items = [
            _request_response(f.other(address), _ms(f.updated_at), f.message) for f in friendships
        ]
        return pb.Requests(total=len(items), items=items)

    return pb.RequestEvents(outgoing=requests(outgoing), incoming=requests(incoming))


def limited_action(
    actor: str, other: str, action: FriendshipAction, message: str
) -> FriendshipEvent:
    """Apply a user's action within their and the pair's limits: every friendship action of
    either module (this one, SocialService v2) goes through here."""
    try:
        return services.apply_action(actor, other, action, message)
    except services.TooManyActions as exc:
        observability.refused(observability.FRIENDSHIP_RATE_LIMIT, str(exc))
        raise TooManyRequests(str(exc)) from exc


@stream_errors(pb.UsersResponse)
async def get_friends(
    session: ClientSession, request: pb.Payload
) -> AsyncIterator[pb.UsersResponse]:
    address = await session.authenticate(_token(request))
    friends = await database_sync_to_async(selectors.friend_addresses)(address)
    for page in _users_pages(friends):
        yield page


@stream_errors(pb.UsersResponse)
async def get_mutual_friends(
    session: ClientSession,
    request: pb.MutualFriendsPayload,
) -> AsyncIterator[pb.UsersResponse]:
    address = await session.authenticate(
        _token(request.auth_token) if request.HasField("auth_token") else None
    )
    other = normalize_address(request.user.address)
    mutual = await database_sync_to_async(selectors.mutual_friend_addresses)(address, other)
    for page in _users_pages(mutual):
        yield page


@unary_errors(pb.RequestEventsResponse)
async def get_request_events(
    session: ClientSession, request: pb.Payload
) -> pb.RequestEventsResponse:
    address = await session.authenticate(_token(request))
    events = await database_sync_to_async(_pending_requests)(address)
    return pb.RequestEventsResponse(events=events)


@unary_errors(pb.UpdateFriendshipResponse)
async def update_friendship_event(
    session: ClientSession,
    request: pb.UpdateFriendshipPayload,
) -> pb.UpdateFriendshipResponse:
    address = await session.authenticate(
        _token(request.auth_token) if request.HasField("auth_token") else None
    )
    kind = request.event.WhichOneof("body")
    if kind is None:
        raise BadRequest(f"event must hold one of {', '.join(_BODY_FIELDS)}")
    body = getattr(request.event, kind)
    other = normalize_address(body.user.address)
    message = body.message if kind == "request" and body.HasField("message") else ""
    try:
        event = await database_sync_to_async(limited_action)(
            address, other, _BODY_FIELDS[kind], message
        )
    except services.FriendshipRuleError as exc:
        raise BadRequest(str(exc)) from exc
    return pb.UpdateFriendshipResponse(
        event=_event_response(kind, other, _ms(event.created_at), event.message)
    )


@stream_errors(pb.SubscribeFriendshipEventsUpdatesResponse)
async def subscribe_friendship_events(
    session: ClientSession,
    request: pb.Payload,
) -> AsyncIterator[pb.SubscribeFriendshipEventsUpdatesResponse]:
    await session.authenticate(_token(request))
    feed = session.open_event_feed()
    try:
        while True:
            notices = await feed.next_batch()
            yield pb.SubscribeFriendshipEventsUpdatesResponse(
                events=pb.FriendshipEventResponses(responses=[_notice_response(n) for n in notices])
            )
    finally:
        session.close_event_feed(feed)


@unary_errors(pb.StatusResponse)
async def set_presence_status(
    session: ClientSession, request: pb.StatusPayload
) -> pb.StatusResponse:
    address = await session.authenticate(_token(request))
    if not request.HasField("status"):
        raise BadRequest("status is required: ONLINE, AWAY or OFFLINE")
    try:
        wanted = Status(request.status.type)
    except ValueError:
        raise BadRequest(f"unknown status {request.status.type}") from None
    if not await state.within_limit(
        f"status:{address}", presence_settings().status_changes_per_minute, 60
    ):
        detail = "too many status changes: try again in a minute"
        observability.refused(observability.STATUS_RATE_LIMIT, detail)
        raise TooManyRequests(detail)
    await session.set_status(wanted)
    return pb.StatusResponse(status=pb.Status(type=int(wanted)))


@stream_errors(pb.UsersResponse)
async def get_online_friends(
    session: ClientSession, request: pb.Payload
) -> AsyncIterator[pb.UsersResponse]:
    address = await session.authenticate(_token(request))
    friends = await database_sync_to_async(selectors.friend_addresses)(address)
    for page in _users_pages(await state.visible_addresses_among(friends)):
        yield page


def _presence_updates(batch: list[Presence]) -> bytes:
    if len(batch) == 1:
        return _one_presence_update(batch[0])
    return _encode_presence_updates(batch)


@functools.lru_cache(maxsize=4096)
def _one_presence_update(presence: Presence) -> bytes:
    """One friend's change, encoded once for all of their followers on this process."""
    return _encode_presence_updates((presence,))


def _encode_presence_updates(batch: Sequence[Presence]) -> bytes:
    return pb.SubscribeFriendshipPresenceUpdatesResponse(
        updates=pb.FriendshipPresenceUpdates(users=[_user_presence(p) for p in batch])
    ).SerializeToString()


@feed_errors(pb.SubscribeFriendshipPresenceUpdatesResponse)
async def subscribe_presence(
    session: ClientSession,
    request: pb.Payload,
) -> PresenceStream:
    """Every waiting change in one item: a client that acks slowly gets them merged."""
    address = await session.authenticate(_token(request))
    return await session.presence_stream(address, _presence_updates)


MODULE = RpcModule(
    MODULE_NAME,
    (
        server_stream("GetFriends", pb.Payload, get_friends),
        server_stream("GetMutualFriends", pb.MutualFriendsPayload, get_mutual_friends),
        unary("GetRequestEvents", pb.Payload, get_request_events),
        unary("UpdateFriendshipEvent", pb.UpdateFriendshipPayload, update_friendship_event),
        server_stream("SubscribeFriendshipEventsUpdates", pb.Payload, subscribe_friendship_events),
        unary("SetPresenceStatus", pb.StatusPayload, set_presence_status),
        server_stream("GetOnlineFriends", pb.Payload, get_online_friends),
        server_feed("SubscribeFriendshipPresenceUpdates", pb.Payload, subscribe_presence),
    ),
)


def _notice_response(notice: FriendshipNotice) -> pb.FriendshipEventResponse:
    return _event_response(notice.action, notice.actor, notice.created_at_ms, notice.message)
