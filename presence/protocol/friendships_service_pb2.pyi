from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class User(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class Users(_message.Message):
    __slots__ = ("users", "presences")
    USERS_FIELD_NUMBER: _ClassVar[int]
    PRESENCES_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    presences: _containers.RepeatedCompositeFieldContainer[UserPresence]
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ..., presences: _Optional[_Iterable[_Union[UserPresence, _Mapping]]] = ...) -> None: ...

class Payload(_message.Message):
    __slots__ = ("synapse_token",)
    SYNAPSE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    synapse_token: str
    def __init__(self, synapse_token: _Optional[str] = ...) -> None: ...

class BadRequestError(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class UnauthorizedError(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class ForbiddenError(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class TooManyRequestsError(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class InternalServerError(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class RequestPayload(_message.Message):
    __slots__ = ("user", "message")
    USER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    user: User
    message: str
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class AcceptPayload(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class RejectPayload(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class DeletePayload(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class CancelPayload(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class BlockPayload(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class UnblockPayload(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class FriendshipEventPayload(_message.Message):
    __slots__ = ("request", "accept", "reject", "delete", "cancel", "block", "unblock")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    UNBLOCK_FIELD_NUMBER: _ClassVar[int]
    request: RequestPayload
    accept: AcceptPayload
    reject: RejectPayload
    delete: DeletePayload
    cancel: CancelPayload
    block: BlockPayload
    unblock: UnblockPayload
    def __init__(self, request: _Optional[_Union[RequestPayload, _Mapping]] = ..., accept: _Optional[_Union[AcceptPayload, _Mapping]] = ..., reject: _Optional[_Union[RejectPayload, _Mapping]] = ..., delete: _Optional[_Union[DeletePayload, _Mapping]] = ..., cancel: _Optional[_Union[CancelPayload, _Mapping]] = ..., block: _Optional[_Union[BlockPayload, _Mapping]] = ..., unblock: _Optional[_Union[UnblockPayload, _Mapping]] = ...) -> None: ...

class RequestResponse(_message.Message):
    __slots__ = ("user", "created_at", "message")
    USER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    user: User
    created_at: int
    message: str
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., created_at: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class AcceptResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class RejectResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class BlockResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class UnblockResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class FriendshipEventResponse(_message.Message):
    __slots__ = ("request", "accept", "reject", "delete", "cancel", "block", "unblock")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    UNBLOCK_FIELD_NUMBER: _ClassVar[int]
    request: RequestResponse
    accept: AcceptResponse
    reject: RejectResponse
    delete: DeleteResponse
    cancel: CancelResponse
    block: BlockResponse
    unblock: UnblockResponse
    def __init__(self, request: _Optional[_Union[RequestResponse, _Mapping]] = ..., accept: _Optional[_Union[AcceptResponse, _Mapping]] = ..., reject: _Optional[_Union[RejectResponse, _Mapping]] = ..., delete: _Optional[_Union[DeleteResponse, _Mapping]] = ..., cancel: _Optional[_Union[CancelResponse, _Mapping]] = ..., block: _Optional[_Union[BlockResponse, _Mapping]] = ..., unblock: _Optional[_Union[UnblockResponse, _Mapping]] = ...) -> None: ...

class FriendshipEventResponses(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[FriendshipEventResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[FriendshipEventResponse, _Mapping]]] = ...) -> None: ...

class Requests(_message.Message):
    __slots__ = ("total", "items")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    total: int
    items: _containers.RepeatedCompositeFieldContainer[RequestResponse]
    def __init__(self, total: _Optional[int] = ..., items: _Optional[_Iterable[_Union[RequestResponse, _Mapping]]] = ...) -> None: ...

class RequestEvents(_message.Message):
    __slots__ = ("outgoing", "incoming")
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    INCOMING_FIELD_NUMBER: _ClassVar[int]
    outgoing: Requests
    incoming: Requests
    def __init__(self, outgoing: _Optional[_Union[Requests, _Mapping]] = ..., incoming: _Optional[_Union[Requests, _Mapping]] = ...) -> None: ...

class UpdateFriendshipPayload(_message.Message):
    __slots__ = ("event", "auth_token")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    AUTH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    event: FriendshipEventPayload
    auth_token: Payload
    def __init__(self, event: _Optional[_Union[FriendshipEventPayload, _Mapping]] = ..., auth_token: _Optional[_Union[Payload, _Mapping]] = ...) -> None: ...

class MutualFriendsPayload(_message.Message):
    __slots__ = ("user", "auth_token")
    USER_FIELD_NUMBER: _ClassVar[int]
    AUTH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user: User
    auth_token: Payload
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., auth_token: _Optional[_Union[Payload, _Mapping]] = ...) -> None: ...

class UsersResponse(_message.Message):
    __slots__ = ("users", "internal_server_error", "unauthorized_error", "forbidden_error", "too_many_requests_error", "bad_request_error")
    USERS_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNAUTHORIZED_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORBIDDEN_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOO_MANY_REQUESTS_ERROR_FIELD_NUMBER: _ClassVar[int]
    BAD_REQUEST_ERROR_FIELD_NUMBER: _ClassVar[int]
    users: Users
    internal_server_error: InternalServerError
    unauthorized_error: UnauthorizedError
    forbidden_error: ForbiddenError
    too_many_requests_error: TooManyRequestsError
    bad_request_error: BadRequestError
    def __init__(self, users: _Optional[_Union[Users, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., unauthorized_error: _Optional[_Union[UnauthorizedError, _Mapping]] = ..., forbidden_error: _Optional[_Union[ForbiddenError, _Mapping]] = ..., too_many_requests_error: _Optional[_Union[TooManyRequestsError, _Mapping]] = ..., bad_request_error: _Optional[_Union[BadRequestError, _Mapping]] = ...) -> None: ...

class RequestEventsResponse(_message.Message):
    __slots__ = ("events", "internal_server_error", "unauthorized_error", "forbidden_error", "too_many_requests_error")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNAUTHORIZED_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORBIDDEN_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOO_MANY_REQUESTS_ERROR_FIELD_NUMBER: _ClassVar[int]
    events: RequestEvents
    internal_server_error: InternalServerError
    unauthorized_error: UnauthorizedError
    forbidden_error: ForbiddenError
    too_many_requests_error: TooManyRequestsError
    def __init__(self, events: _Optional[_Union[RequestEvents, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., unauthorized_error: _Optional[_Union[UnauthorizedError, _Mapping]] = ..., forbidden_error: _Optional[_Union[ForbiddenError, _Mapping]] = ..., too_many_requests_error: _Optional[_Union[TooManyRequestsError, _Mapping]] = ...) -> None: ...

class UpdateFriendshipResponse(_message.Message):
    __slots__ = ("event", "internal_server_error", "unauthorized_error", "forbidden_error", "too_many_requests_error", "bad_request_error")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNAUTHORIZED_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORBIDDEN_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOO_MANY_REQUESTS_ERROR_FIELD_NUMBER: _ClassVar[int]
    BAD_REQUEST_ERROR_FIELD_NUMBER: _ClassVar[int]
    event: FriendshipEventResponse
    internal_server_error: InternalServerError
    unauthorized_error: UnauthorizedError
    forbidden_error: ForbiddenError
    too_many_requests_error: TooManyRequestsError
    bad_request_error: BadRequestError
    def __init__(self, event: _Optional[_Union[FriendshipEventResponse, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., unauthorized_error: _Optional[_Union[UnauthorizedError, _Mapping]] = ..., forbidden_error: _Optional[_Union[ForbiddenError, _Mapping]] = ..., too_many_requests_error: _Optional[_Union[TooManyRequestsError, _Mapping]] = ..., bad_request_error: _Optional[_Union[BadRequestError, _Mapping]] = ...) -> None: ...

class SubscribeFriendshipEventsUpdatesResponse(_message.Message):
    __slots__ = ("events", "internal_server_error", "unauthorized_error", "forbidden_error", "too_many_requests_error")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNAUTHORIZED_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORBIDDEN_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOO_MANY_REQUESTS_ERROR_FIELD_NUMBER: _ClassVar[int]
    events: FriendshipEventResponses
    internal_server_error: InternalServerError
    unauthorized_error: UnauthorizedError
    forbidden_error: ForbiddenError
    too_many_requests_error: TooManyRequestsError
    def __init__(self, events: _Optional[_Union[FriendshipEventResponses, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., unauthorized_error: _Optional[_Union[UnauthorizedError, _Mapping]] = ..., forbidden_error: _Optional[_Union[ForbiddenError, _Mapping]] = ..., too_many_requests_error: _Optional[_Union[TooManyRequestsError, _Mapping]] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("type",)
    class StatusType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ONLINE: _ClassVar[Status.StatusType]
        OFFLINE: _ClassVar[Status.StatusType]
        AWAY: _ClassVar[Status.StatusType]
    ONLINE: Status.StatusType
    OFFLINE: Status.StatusType
    AWAY: Status.StatusType
    TYPE_FIELD_NUMBER: _ClassVar[int]
    type: Status.StatusType
    def __init__(self, type: _Optional[_Union[Status.StatusType, str]] = ...) -> None: ...

class StatusPayload(_message.Message):
    __slots__ = ("synapse_token", "status", "message", "status_until", "message_until", "clear_message_on_offline")
    SYNAPSE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_UNTIL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    CLEAR_MESSAGE_ON_OFFLINE_FIELD_NUMBER: _ClassVar[int]
    synapse_token: str
    status: Status
    message: str
    status_until: int
    message_until: int
    clear_message_on_offline: bool
    def __init__(self, synapse_token: _Optional[str] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., message: _Optional[str] = ..., status_until: _Optional[int] = ..., message_until: _Optional[int] = ..., clear_message_on_offline: _Optional[bool] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("status", "internal_server_error", "unauthorized_error", "forbidden_error", "too_many_requests_error", "bad_request_error")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNAUTHORIZED_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORBIDDEN_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOO_MANY_REQUESTS_ERROR_FIELD_NUMBER: _ClassVar[int]
    BAD_REQUEST_ERROR_FIELD_NUMBER: _ClassVar[int]
    status: Status
    internal_server_error: InternalServerError
    unauthorized_error: UnauthorizedError
    forbidden_error: ForbiddenError
    too_many_requests_error: TooManyRequestsError
    bad_request_error: BadRequestError
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., unauthorized_error: _Optional[_Union[UnauthorizedError, _Mapping]] = ..., forbidden_error: _Optional[_Union[ForbiddenError, _Mapping]] = ..., too_many_requests_error: _Optional[_Union[TooManyRequestsError, _Mapping]] = ..., bad_request_error: _Optional[_Union[BadRequestError, _Mapping]] = ...) -> None: ...

class UserPresence(_message.Message):
    __slots__ = ("user", "status", "last_seen", "message", "location", "devices")
    USER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    user: User
    status: Status
    last_seen: int
    message: str
    location: Location
    devices: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., last_seen: _Optional[int] = ..., message: _Optional[str] = ..., location: _Optional[_Union[Location, _Mapping]] = ..., devices: _Optional[_Iterable[str]] = ...) -> None: ...

class FriendshipPresenceUpdates(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[UserPresence]
    def __init__(self, users: _Optional[_Iterable[_Union[UserPresence, _Mapping]]] = ...) -> None: ...

class SubscribeFriendshipPresenceUpdatesResponse(_message.Message):
    __slots__ = ("updates", "internal_server_error", "unauthorized_error", "forbidden_error", "too_many_requests_error")
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNAUTHORIZED_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORBIDDEN_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOO_MANY_REQUESTS_ERROR_FIELD_NUMBER: _ClassVar[int]
    updates: FriendshipPresenceUpdates
    internal_server_error: InternalServerError
    unauthorized_error: UnauthorizedError
    forbidden_error: ForbiddenError
    too_many_requests_error: TooManyRequestsError
    def __init__(self, updates: _Optional[_Union[FriendshipPresenceUpdates, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., unauthorized_error: _Optional[_Union[UnauthorizedError, _Mapping]] = ..., forbidden_error: _Optional[_Union[ForbiddenError, _Mapping]] = ..., too_many_requests_error: _Optional[_Union[TooManyRequestsError, _Mapping]] = ...) -> None: ...

class PresenceSharing(_message.Message):
    __slots__ = ("presence", "presence_list", "location", "location_list")
    class PresenceAudience(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PRESENCE_ALL_FRIENDS: _ClassVar[PresenceSharing.PresenceAudience]
        PRESENCE_ONLY_LISTED: _ClassVar[PresenceSharing.PresenceAudience]
        PRESENCE_EXCEPT_LISTED: _ClassVar[PresenceSharing.PresenceAudience]
    PRESENCE_ALL_FRIENDS: PresenceSharing.PresenceAudience
    PRESENCE_ONLY_LISTED: PresenceSharing.PresenceAudience
    PRESENCE_EXCEPT_LISTED: PresenceSharing.PresenceAudience
    class LocationAudience(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        LOCATION_ALL_FRIENDS: _ClassVar[PresenceSharing.LocationAudience]
        LOCATION_ONLY_LISTED: _ClassVar[PresenceSharing.LocationAudience]
        LOCATION_NOBODY: _ClassVar[PresenceSharing.LocationAudience]
    LOCATION_ALL_FRIENDS: PresenceSharing.LocationAudience
    LOCATION_ONLY_LISTED: PresenceSharing.LocationAudience
    LOCATION_NOBODY: PresenceSharing.LocationAudience
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_LIST_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_LIST_FIELD_NUMBER: _ClassVar[int]
    presence: PresenceSharing.PresenceAudience
    presence_list: _containers.RepeatedCompositeFieldContainer[User]
    location: PresenceSharing.LocationAudience
    location_list: _containers.RepeatedCompositeFieldContainer[User]
    def __init__(self, presence: _Optional[_Union[PresenceSharing.PresenceAudience, str]] = ..., presence_list: _Optional[_Iterable[_Union[User, _Mapping]]] = ..., location: _Optional[_Union[PresenceSharing.LocationAudience, str]] = ..., location_list: _Optional[_Iterable[_Union[User, _Mapping]]] = ...) -> None: ...

class SetPresenceSharingPayload(_message.Message):
    __slots__ = ("synapse_token", "sharing")
    SYNAPSE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SHARING_FIELD_NUMBER: _ClassVar[int]
    synapse_token: str
    sharing: PresenceSharing
    def __init__(self, synapse_token: _Optional[str] = ..., sharing: _Optional[_Union[PresenceSharing, _Mapping]] = ...) -> None: ...

class PresenceSharingResponse(_message.Message):
    __slots__ = ("sharing", "internal_server_error", "unauthorized_error", "forbidden_error", "too_many_requests_error", "bad_request_error")
    SHARING_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNAUTHORIZED_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORBIDDEN_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOO_MANY_REQUESTS_ERROR_FIELD_NUMBER: _ClassVar[int]
    BAD_REQUEST_ERROR_FIELD_NUMBER: _ClassVar[int]
    sharing: PresenceSharing
    internal_server_error: InternalServerError
    unauthorized_error: UnauthorizedError
    forbidden_error: ForbiddenError
    too_many_requests_error: TooManyRequestsError
    bad_request_error: BadRequestError
    def __init__(self, sharing: _Optional[_Union[PresenceSharing, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., unauthorized_error: _Optional[_Union[UnauthorizedError, _Mapping]] = ..., forbidden_error: _Optional[_Union[ForbiddenError, _Mapping]] = ..., too_many_requests_error: _Optional[_Union[TooManyRequestsError, _Mapping]] = ..., bad_request_error: _Optional[_Union[BadRequestError, _Mapping]] = ...) -> None: ...

class Location(_message.Message):
    __slots__ = ("realm", "x", "y")
    REALM_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    realm: str
    x: int
    y: int
    def __init__(self, realm: _Optional[str] = ..., x: _Optional[int] = ..., y: _Optional[int] = ...) -> None: ...

class LocationPayload(_message.Message):
    __slots__ = ("synapse_token", "location")
    SYNAPSE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    synapse_token: str
    location: Location
    def __init__(self, synapse_token: _Optional[str] = ..., location: _Optional[_Union[Location, _Mapping]] = ...) -> None: ...

class LocationResponse(_message.Message):
    __slots__ = ("presence", "internal_server_error", "unauthorized_error", "forbidden_error", "too_many_requests_error", "bad_request_error")
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNAUTHORIZED_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORBIDDEN_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOO_MANY_REQUESTS_ERROR_FIELD_NUMBER: _ClassVar[int]
    BAD_REQUEST_ERROR_FIELD_NUMBER: _ClassVar[int]
    presence: UserPresence
    internal_server_error: InternalServerError
    unauthorized_error: UnauthorizedError
    forbidden_error: ForbiddenError
    too_many_requests_error: TooManyRequestsError
    bad_request_error: BadRequestError
    def __init__(self, presence: _Optional[_Union[UserPresence, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., unauthorized_error: _Optional[_Union[UnauthorizedError, _Mapping]] = ..., forbidden_error: _Optional[_Union[ForbiddenError, _Mapping]] = ..., too_many_requests_error: _Optional[_Union[TooManyRequestsError, _Mapping]] = ..., bad_request_error: _Optional[_Union[BadRequestError, _Mapping]] = ...) -> None: ...

class HeartbeatPayload(_message.Message):
    __slots__ = ("synapse_token", "location")
    SYNAPSE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    synapse_token: str
    location: Location
    def __init__(self, synapse_token: _Optional[str] = ..., location: _Optional[_Union[Location, _Mapping]] = ...) -> None: ...

class HeartbeatAccepted(_message.Message):
    __slots__ = ("presence", "offline_after_seconds")
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    presence: UserPresence
    offline_after_seconds: int
    def __init__(self, presence: _Optional[_Union[UserPresence, _Mapping]] = ..., offline_after_seconds: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("accepted", "internal_server_error", "unauthorized_error", "forbidden_error", "too_many_requests_error", "bad_request_error")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNAUTHORIZED_ERROR_FIELD_NUMBER: _ClassVar[int]
    FORBIDDEN_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOO_MANY_REQUESTS_ERROR_FIELD_NUMBER: _ClassVar[int]
    BAD_REQUEST_ERROR_FIELD_NUMBER: _ClassVar[int]
    accepted: HeartbeatAccepted
    internal_server_error: InternalServerError
    unauthorized_error: UnauthorizedError
    forbidden_error: ForbiddenError
    too_many_requests_error: TooManyRequestsError
    bad_request_error: BadRequestError
    def __init__(self, accepted: _Optional[_Union[HeartbeatAccepted, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., unauthorized_error: _Optional[_Union[UnauthorizedError, _Mapping]] = ..., forbidden_error: _Optional[_Union[ForbiddenError, _Mapping]] = ..., too_many_requests_error: _Optional[_Union[TooManyRequestsError, _Mapping]] = ..., bad_request_error: _Optional[_Union[BadRequestError, _Mapping]] = ...) -> None: ...
