"""The FriendshipsService procedures: protobuf in, protobuf out, for one client session."""

import functools
from collections.abc import AsyncIterator, Sequence

from django.db.models import QuerySet
from google.protobuf.message import Message

from accounts.addresses import normalize_address
from friendships import selectors, services
from friendships.models import Friendship, FriendshipAction
from friendships.sharing import LocationAudience, PresenceAudience, Sharing
from presence import observability
from presence import services as presence_services
from presence.conf import presence_settings
from presence.delivery.sessions import ClientSession, EventFeed, PresenceFeed
from presence.errors import BadRequest
from presence.events import FriendshipNotice, Presence, Status
from presence.procedures.errors import answered_in
from presence.procedures.locations import location_of, put_location
from presence.protocol import friendships_service_pb2 as pb
from presence.rpc.feed import Feed
from presence.rpc.server import RpcModule, server_feed, server_stream, unary
from presence.services import Choice, MessageChoice, message_choice
from presence.store import online
from presence_project.db import database_sync_to_async
from presence_project.timestamps import ms

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


def _users_pages(
    addresses: Sequence[str], presences: dict[str, Presence] | None = None
) -> list[pb.UsersResponse]:
    """`addresses` in pages; with `presences`, each page also carries the presence of those
    of its users who share a location."""
    size = presence_settings().page_size
    pages = []
    for i in range(0, len(addresses), size):
        page = addresses[i : i + size]
        users = pb.Users(users=[pb.User(address=a) for a in page])
        if presences:
            # [location]
            users.presences.extend(
                _user_presence(presences[a]) for a in page if presences[a].location is not None
            )
        pages.append(pb.UsersResponse(users=users))
    return pages


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
        user=pb.User(address=presence.address),
        status=pb.Status(type=int(presence.status)),
        devices=presence.devices,
    )
    if presence.last_seen_ms is not None:
        message.last_seen = presence.last_seen_ms
    put_location(message, presence.location)  # [location]
    if presence.message:  # [status]
        message.message = presence.message
    return message


# --- [location] ---------------------------------------------------------------------------


async def set_location(session: ClientSession, request: pb.LocationPayload) -> pb.LocationResponse:
    await session.authenticate(_token(request))
    presence = await session.set_location(location_of(request))
    return pb.LocationResponse(presence=_user_presence(presence))


async def presence_heartbeat(
    session: ClientSession, request: pb.HeartbeatPayload
) -> pb.HeartbeatResponse:
    await session.authenticate(_token(request))
    presence = await session.heartbeat(location_of(request))
    accepted = pb.HeartbeatAccepted(
        presence=_user_presence(presence),
        offline_after_seconds=presence_settings().heartbeat_offline_seconds,
    )
    return pb.HeartbeatResponse(accepted=accepted)


# --- [/location] --------------------------------------------------------------------------


def _token(payload: Message | None) -> str | None:
    """The synapse_token of a Payload or StatusPayload, when one was sent."""
    if payload is None or not payload.HasField("synapse_token"):
        return None
    return payload.synapse_token


def _pending_requests(address: str) -> pb.RequestEvents:
    outgoing, incoming = selectors.pending_requests(address)

    def requests(friendships: QuerySet[Friendship]) -> pb.Requests:
        items = [
            _request_response(f.other(address), ms(f.updated_at), f.message) for f in friendships
        ]
        return pb.Requests(total=len(items), items=items)

    return pb.RequestEvents(outgoing=requests(outgoing), incoming=requests(incoming))


async def _friends(
    session: ClientSession, request: pb.Payload, online_only: bool
) -> AsyncIterator[pb.UsersResponse]:
    address = await session.authenticate(_token(request))
    friends = await database_sync_to_async(selectors.friend_addresses)(address)
    visible = None
    if online_only:
        visible = await online.visible_among(friends, viewer=address)
        friends = [friend for friend in friends if friend in visible]
    for page in _users_pages(friends, visible):
        yield page


def get_friends(session: ClientSession, request: pb.Payload) -> AsyncIterator[pb.UsersResponse]:
    return _friends(session, request, online_only=False)


def get_online_friends(
    session: ClientSession, request: pb.Payload
) -> AsyncIterator[pb.UsersResponse]:
    return _friends(session, request, online_only=True)


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


async def get_request_events(
    session: ClientSession, request: pb.Payload
) -> pb.RequestEventsResponse:
    address = await session.authenticate(_token(request))
    events = await database_sync_to_async(_pending_requests)(address)
    return pb.RequestEventsResponse(events=events)


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
    event = await database_sync_to_async(services.apply_action)(
        address, other, _BODY_FIELDS[kind], message
    )
    return pb.UpdateFriendshipResponse(
        event=_event_response(kind, other, ms(event.created_at), event.message)
    )


def _friendship_events(notices: list[FriendshipNotice]) -> bytes:
    responses = [_event_response(n.action, n.actor, n.created_at_ms, n.message) for n in notices]
    return pb.SubscribeFriendshipEventsUpdatesResponse(
        events=pb.FriendshipEventResponses(responses=responses)
    ).SerializeToString()


async def subscribe_friendship_events(session: ClientSession, request: pb.Payload) -> EventFeed:
    """Every waiting event in one item; beyond MAX_PENDING_EVENTS the oldest are dropped."""
    await session.authenticate(_token(request))
    feed = Feed(_friendship_events, max_pending=presence_settings().max_pending_events)
    return session.subscribe_events(feed)


def _message_choice(request: pb.StatusPayload) -> MessageChoice | None:
    """[status] The message a StatusPayload sets, None if it sets none."""
    if not request.HasField("message"):
        for field in ("message_until", "clear_message_on_offline"):
            if request.HasField(field):
                raise BadRequest(f"{field} applies to a message: send one")
        return None
    until = request.message_until if request.HasField("message_until") else None
    return message_choice(request.message, until, request.clear_message_on_offline)


async def set_presence_status(
    session: ClientSession, request: pb.StatusPayload
) -> pb.StatusResponse:
    await session.authenticate(_token(request))
    message = _message_choice(request)
    if not request.HasField("status"):
        if message is None:
            raise BadRequest("status is required: ONLINE, AWAY or OFFLINE (or a message alone)")
        if request.HasField("status_until"):
            raise BadRequest("status_until applies to a status: send one")
        presence = await session.set_message(message)
        return pb.StatusResponse(status=pb.Status(type=int(presence.status)))
    try:
        wanted = Status(request.status.type)
    except ValueError:
        raise BadRequest(f"unknown status {request.status.type}") from None
    until = request.status_until if request.HasField("status_until") else None
    await session.set_status(Choice(wanted, until, message))
    return pb.StatusResponse(status=pb.Status(type=int(wanted)))


def _presence_updates(batch: list[Presence]) -> bytes:
    observability.delivered(batch)
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


async def subscribe_presence(session: ClientSession, request: pb.Payload) -> PresenceFeed:
    """Every waiting change in one item: a client that acks slowly gets them merged."""
    await session.authenticate(_token(request))
    return await session.subscribe_presence(Feed(_presence_updates))


# --- [privacy] Who may see the caller -----------------------------------------------------

_PRESENCE_AUDIENCES = {
    PresenceAudience.ALL: pb.PresenceSharing.PRESENCE_ALL_FRIENDS,
    PresenceAudience.ONLY: pb.PresenceSharing.PRESENCE_ONLY_LISTED,
    PresenceAudience.EXCEPT: pb.PresenceSharing.PRESENCE_EXCEPT_LISTED,
}
_LOCATION_AUDIENCES = {
    LocationAudience.ALL: pb.PresenceSharing.LOCATION_ALL_FRIENDS,
    LocationAudience.ONLY: pb.PresenceSharing.LOCATION_ONLY_LISTED,
    LocationAudience.NOBODY: pb.PresenceSharing.LOCATION_NOBODY,
}


def _sharing_message(sharing: Sharing) -> pb.PresenceSharing:
    return pb.PresenceSharing(
        presence=_PRESENCE_AUDIENCES[PresenceAudience(sharing.presence)],
        presence_list=[pb.User(address=a) for a in sharing.presence_list],
        location=_LOCATION_AUDIENCES[LocationAudience(sharing.location)],
        location_list=[pb.User(address=a) for a in sharing.location_list],
    )


def _by_number(audiences: dict[str, int], number: int, name: str) -> str:
    for audience, wire in audiences.items():
        if wire == number:
            return audience
    raise BadRequest(f"unknown {name} audience {number}")


async def get_presence_sharing(
    session: ClientSession, request: pb.Payload
) -> pb.PresenceSharingResponse:
    address = await session.authenticate(_token(request))
    sharing = await database_sync_to_async(selectors.sharing_of)(address)
    return pb.PresenceSharingResponse(sharing=_sharing_message(sharing))


async def set_presence_sharing(
    session: ClientSession, request: pb.SetPresenceSharingPayload
) -> pb.PresenceSharingResponse:
    address = await session.authenticate(_token(request))
    wanted = request.sharing
    sharing = Sharing(
        presence=_by_number(_PRESENCE_AUDIENCES, wanted.presence, "presence"),
        presence_list=tuple(normalize_address(u.address) for u in wanted.presence_list),
        location=_by_number(_LOCATION_AUDIENCES, wanted.location, "location"),
        location_list=tuple(normalize_address(u.address) for u in wanted.location_list),
    )
    await presence_services.share(address, sharing)
    saved = await database_sync_to_async(selectors.sharing_of)(address)
    return pb.PresenceSharingResponse(sharing=_sharing_message(saved))


MODULE = RpcModule(
    MODULE_NAME,
    (
        server_stream("GetFriends", pb.Payload, get_friends, answered_in(pb.UsersResponse)),
        server_stream(
            "GetMutualFriends",
            pb.MutualFriendsPayload,
            get_mutual_friends,
            answered_in(pb.UsersResponse),
        ),
        unary(
            "GetRequestEvents",
            pb.Payload,
            get_request_events,
            answered_in(pb.RequestEventsResponse),
        ),
        unary(
            "UpdateFriendshipEvent",
            pb.UpdateFriendshipPayload,
            update_friendship_event,
            answered_in(pb.UpdateFriendshipResponse),
        ),
        server_feed(
            "SubscribeFriendshipEventsUpdates",
            pb.Payload,
            subscribe_friendship_events,
            answered_in(pb.SubscribeFriendshipEventsUpdatesResponse),
        ),
        unary(
            "SetPresenceStatus",
            pb.StatusPayload,
            set_presence_status,
            answered_in(pb.StatusResponse),
        ),
        server_stream(
            "GetOnlineFriends", pb.Payload, get_online_friends, answered_in(pb.UsersResponse)
        ),
        server_feed(
            "SubscribeFriendshipPresenceUpdates",
            pb.Payload,
            subscribe_presence,
            answered_in(pb.SubscribeFriendshipPresenceUpdatesResponse),
        ),
        unary(
            "GetPresenceSharing",
            pb.Payload,
            get_presence_sharing,
            answered_in(pb.PresenceSharingResponse),
        ),
        unary(
            "SetPresenceSharing",
            pb.SetPresenceSharingPayload,
            set_presence_sharing,
            answered_in(pb.PresenceSharingResponse),
        ),
        # [location]
        unary("SetLocation", pb.LocationPayload, set_location, answered_in(pb.LocationResponse)),
        unary(
            "PresenceHeartbeat",
            pb.HeartbeatPayload,
            presence_heartbeat,
            answered_in(pb.HeartbeatResponse),
        ),
    ),
)
