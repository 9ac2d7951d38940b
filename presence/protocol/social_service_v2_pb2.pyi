from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectivityStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ONLINE: _ClassVar[ConnectivityStatus]
    OFFLINE: _ClassVar[ConnectivityStatus]
    AWAY: _ClassVar[ConnectivityStatus]

class FriendshipStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_SENT: _ClassVar[FriendshipStatus]
    REQUEST_RECEIVED: _ClassVar[FriendshipStatus]
    CANCELED: _ClassVar[FriendshipStatus]
    ACCEPTED: _ClassVar[FriendshipStatus]
    REJECTED: _ClassVar[FriendshipStatus]
    DELETED: _ClassVar[FriendshipStatus]
    BLOCKED: _ClassVar[FriendshipStatus]
    NONE: _ClassVar[FriendshipStatus]
    BLOCKED_BY: _ClassVar[FriendshipStatus]
ONLINE: ConnectivityStatus
OFFLINE: ConnectivityStatus
AWAY: ConnectivityStatus
REQUEST_SENT: FriendshipStatus
REQUEST_RECEIVED: FriendshipStatus
CANCELED: FriendshipStatus
ACCEPTED: FriendshipStatus
REJECTED: FriendshipStatus
DELETED: FriendshipStatus
BLOCKED: FriendshipStatus
NONE: FriendshipStatus
BLOCKED_BY: FriendshipStatus

class InvalidFriendshipAction(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class InternalServerError(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class InvalidRequest(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class ProfileNotFound(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class FriendProfile(_message.Message):
    __slots__ = ("address", "name", "has_claimed_name", "profile_picture_url")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HAS_CLAIMED_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_PICTURE_URL_FIELD_NUMBER: _ClassVar[int]
    address: str
    name: str
    has_claimed_name: bool
    profile_picture_url: str
    def __init__(self, address: _Optional[str] = ..., name: _Optional[str] = ..., has_claimed_name: _Optional[bool] = ..., profile_picture_url: _Optional[str] = ...) -> None: ...

class BlockedUserProfile(_message.Message):
    __slots__ = ("address", "name", "has_claimed_name", "profile_picture_url", "blocked_at")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HAS_CLAIMED_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_PICTURE_URL_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_AT_FIELD_NUMBER: _ClassVar[int]
    address: str
    name: str
    has_claimed_name: bool
    profile_picture_url: str
    blocked_at: int
    def __init__(self, address: _Optional[str] = ..., name: _Optional[str] = ..., has_claimed_name: _Optional[bool] = ..., profile_picture_url: _Optional[str] = ..., blocked_at: _Optional[int] = ...) -> None: ...

class Pagination(_message.Message):
    __slots__ = ("limit", "offset")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    limit: int
    offset: int
    def __init__(self, limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class PaginatedResponse(_message.Message):
    __slots__ = ("total", "page")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    total: int
    page: int
    def __init__(self, total: _Optional[int] = ..., page: _Optional[int] = ...) -> None: ...

class FriendshipRequestResponse(_message.Message):
    __slots__ = ("friend", "created_at", "message", "id")
    FRIEND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    friend: FriendProfile
    created_at: int
    message: str
    id: str
    def __init__(self, friend: _Optional[_Union[FriendProfile, _Mapping]] = ..., created_at: _Optional[int] = ..., message: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class FriendshipRequests(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[FriendshipRequestResponse]
    def __init__(self, requests: _Optional[_Iterable[_Union[FriendshipRequestResponse, _Mapping]]] = ...) -> None: ...

class GetFriendsPayload(_message.Message):
    __slots__ = ("pagination",)
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    pagination: Pagination
    def __init__(self, pagination: _Optional[_Union[Pagination, _Mapping]] = ...) -> None: ...

class GetMutualFriendsPayload(_message.Message):
    __slots__ = ("user", "pagination")
    USER_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    user: User
    pagination: Pagination
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., pagination: _Optional[_Union[Pagination, _Mapping]] = ...) -> None: ...

class PaginatedFriendsProfilesResponse(_message.Message):
    __slots__ = ("friends", "pagination_data")
    FRIENDS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_DATA_FIELD_NUMBER: _ClassVar[int]
    friends: _containers.RepeatedCompositeFieldContainer[FriendProfile]
    pagination_data: PaginatedResponse
    def __init__(self, friends: _Optional[_Iterable[_Union[FriendProfile, _Mapping]]] = ..., pagination_data: _Optional[_Union[PaginatedResponse, _Mapping]] = ...) -> None: ...

class GetFriendshipRequestsPayload(_message.Message):
    __slots__ = ("pagination",)
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    pagination: Pagination
    def __init__(self, pagination: _Optional[_Union[Pagination, _Mapping]] = ...) -> None: ...

class PaginatedFriendshipRequestsResponse(_message.Message):
    __slots__ = ("requests", "internal_server_error", "pagination_data")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_DATA_FIELD_NUMBER: _ClassVar[int]
    requests: FriendshipRequests
    internal_server_error: InternalServerError
    pagination_data: PaginatedResponse
    def __init__(self, requests: _Optional[_Union[FriendshipRequests, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., pagination_data: _Optional[_Union[PaginatedResponse, _Mapping]] = ...) -> None: ...

class UpsertFriendshipPayload(_message.Message):
    __slots__ = ("request", "accept", "reject", "delete", "cancel")
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
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    request: UpsertFriendshipPayload.RequestPayload
    accept: UpsertFriendshipPayload.AcceptPayload
    reject: UpsertFriendshipPayload.RejectPayload
    delete: UpsertFriendshipPayload.DeletePayload
    cancel: UpsertFriendshipPayload.CancelPayload
    def __init__(self, request: _Optional[_Union[UpsertFriendshipPayload.RequestPayload, _Mapping]] = ..., accept: _Optional[_Union[UpsertFriendshipPayload.AcceptPayload, _Mapping]] = ..., reject: _Optional[_Union[UpsertFriendshipPayload.RejectPayload, _Mapping]] = ..., delete: _Optional[_Union[UpsertFriendshipPayload.DeletePayload, _Mapping]] = ..., cancel: _Optional[_Union[UpsertFriendshipPayload.CancelPayload, _Mapping]] = ...) -> None: ...

class UpsertFriendshipResponse(_message.Message):
    __slots__ = ("accepted", "invalid_friendship_action", "internal_server_error", "invalid_request")
    class Accepted(_message.Message):
        __slots__ = ("id", "created_at", "friend", "message")
        ID_FIELD_NUMBER: _ClassVar[int]
        CREATED_AT_FIELD_NUMBER: _ClassVar[int]
        FRIEND_FIELD_NUMBER: _ClassVar[int]
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        id: str
        created_at: int
        friend: FriendProfile
        message: str
        def __init__(self, id: _Optional[str] = ..., created_at: _Optional[int] = ..., friend: _Optional[_Union[FriendProfile, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    INVALID_FRIENDSHIP_ACTION_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    INVALID_REQUEST_FIELD_NUMBER: _ClassVar[int]
    accepted: UpsertFriendshipResponse.Accepted
    invalid_friendship_action: InvalidFriendshipAction
    internal_server_error: InternalServerError
    invalid_request: InvalidRequest
    def __init__(self, accepted: _Optional[_Union[UpsertFriendshipResponse.Accepted, _Mapping]] = ..., invalid_friendship_action: _Optional[_Union[InvalidFriendshipAction, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., invalid_request: _Optional[_Union[InvalidRequest, _Mapping]] = ...) -> None: ...

class FriendshipUpdate(_message.Message):
    __slots__ = ("request", "accept", "reject", "delete", "cancel", "block")
    class RequestResponse(_message.Message):
        __slots__ = ("friend", "created_at", "message", "id")
        FRIEND_FIELD_NUMBER: _ClassVar[int]
        CREATED_AT_FIELD_NUMBER: _ClassVar[int]
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        ID_FIELD_NUMBER: _ClassVar[int]
        friend: FriendProfile
        created_at: int
        message: str
        id: str
        def __init__(self, friend: _Optional[_Union[FriendProfile, _Mapping]] = ..., created_at: _Optional[int] = ..., message: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...
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
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    request: FriendshipUpdate.RequestResponse
    accept: FriendshipUpdate.AcceptResponse
    reject: FriendshipUpdate.RejectResponse
    delete: FriendshipUpdate.DeleteResponse
    cancel: FriendshipUpdate.CancelResponse
    block: FriendshipUpdate.BlockResponse
    def __init__(self, request: _Optional[_Union[FriendshipUpdate.RequestResponse, _Mapping]] = ..., accept: _Optional[_Union[FriendshipUpdate.AcceptResponse, _Mapping]] = ..., reject: _Optional[_Union[FriendshipUpdate.RejectResponse, _Mapping]] = ..., delete: _Optional[_Union[FriendshipUpdate.DeleteResponse, _Mapping]] = ..., cancel: _Optional[_Union[FriendshipUpdate.CancelResponse, _Mapping]] = ..., block: _Optional[_Union[FriendshipUpdate.BlockResponse, _Mapping]] = ...) -> None: ...

class GetFriendshipStatusPayload(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class GetFriendshipStatusResponse(_message.Message):
    __slots__ = ("accepted", "internal_server_error", "invalid_request")
    class Ok(_message.Message):
        __slots__ = ("status", "message")
        STATUS_FIELD_NUMBER: _ClassVar[int]
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        status: FriendshipStatus
        message: str
        def __init__(self, status: _Optional[_Union[FriendshipStatus, str]] = ..., message: _Optional[str] = ...) -> None: ...
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    INVALID_REQUEST_FIELD_NUMBER: _ClassVar[int]
    accepted: GetFriendshipStatusResponse.Ok
    internal_server_error: InternalServerError
    invalid_request: InvalidRequest
    def __init__(self, accepted: _Optional[_Union[GetFriendshipStatusResponse.Ok, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., invalid_request: _Optional[_Union[InvalidRequest, _Mapping]] = ...) -> None: ...

class FriendConnectivityUpdate(_message.Message):
    __slots__ = ("friend", "status", "status_message", "location", "devices")
    FRIEND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    friend: FriendProfile
    status: ConnectivityStatus
    status_message: str
    location: Location
    devices: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, friend: _Optional[_Union[FriendProfile, _Mapping]] = ..., status: _Optional[_Union[ConnectivityStatus, str]] = ..., status_message: _Optional[str] = ..., location: _Optional[_Union[Location, _Mapping]] = ..., devices: _Optional[_Iterable[str]] = ...) -> None: ...

class SetStatusMessagePayload(_message.Message):
    __slots__ = ("message", "until", "clear_on_offline")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    CLEAR_ON_OFFLINE_FIELD_NUMBER: _ClassVar[int]
    message: str
    until: int
    clear_on_offline: bool
    def __init__(self, message: _Optional[str] = ..., until: _Optional[int] = ..., clear_on_offline: _Optional[bool] = ...) -> None: ...

class SetStatusMessageResponse(_message.Message):
    __slots__ = ("ok", "internal_server_error", "invalid_request")
    class Ok(_message.Message):
        __slots__ = ("message",)
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        message: str
        def __init__(self, message: _Optional[str] = ...) -> None: ...
    OK_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    INVALID_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ok: SetStatusMessageResponse.Ok
    internal_server_error: InternalServerError
    invalid_request: InvalidRequest
    def __init__(self, ok: _Optional[_Union[SetStatusMessageResponse.Ok, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., invalid_request: _Optional[_Union[InvalidRequest, _Mapping]] = ...) -> None: ...

class Location(_message.Message):
    __slots__ = ("realm", "x", "y")
    REALM_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    realm: str
    x: int
    y: int
    def __init__(self, realm: _Optional[str] = ..., x: _Optional[int] = ..., y: _Optional[int] = ...) -> None: ...

class SetLocationPayload(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: Location
    def __init__(self, location: _Optional[_Union[Location, _Mapping]] = ...) -> None: ...

class SetLocationResponse(_message.Message):
    __slots__ = ("ok", "internal_server_error", "invalid_request")
    class Ok(_message.Message):
        __slots__ = ("location",)
        LOCATION_FIELD_NUMBER: _ClassVar[int]
        location: Location
        def __init__(self, location: _Optional[_Union[Location, _Mapping]] = ...) -> None: ...
    OK_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    INVALID_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ok: SetLocationResponse.Ok
    internal_server_error: InternalServerError
    invalid_request: InvalidRequest
    def __init__(self, ok: _Optional[_Union[SetLocationResponse.Ok, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., invalid_request: _Optional[_Union[InvalidRequest, _Mapping]] = ...) -> None: ...

class PresenceHeartbeatPayload(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: Location
    def __init__(self, location: _Optional[_Union[Location, _Mapping]] = ...) -> None: ...

class PresenceHeartbeatResponse(_message.Message):
    __slots__ = ("ok", "internal_server_error", "invalid_request")
    class Ok(_message.Message):
        __slots__ = ("status", "location", "offline_after_seconds")
        STATUS_FIELD_NUMBER: _ClassVar[int]
        LOCATION_FIELD_NUMBER: _ClassVar[int]
        OFFLINE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
        status: ConnectivityStatus
        location: Location
        offline_after_seconds: int
        def __init__(self, status: _Optional[_Union[ConnectivityStatus, str]] = ..., location: _Optional[_Union[Location, _Mapping]] = ..., offline_after_seconds: _Optional[int] = ...) -> None: ...
    OK_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    INVALID_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ok: PresenceHeartbeatResponse.Ok
    internal_server_error: InternalServerError
    invalid_request: InvalidRequest
    def __init__(self, ok: _Optional[_Union[PresenceHeartbeatResponse.Ok, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., invalid_request: _Optional[_Union[InvalidRequest, _Mapping]] = ...) -> None: ...

class BlockUserPayload(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class BlockUserResponse(_message.Message):
    __slots__ = ("ok", "internal_server_error", "invalid_request", "profile_not_found")
    class Ok(_message.Message):
        __slots__ = ("profile",)
        PROFILE_FIELD_NUMBER: _ClassVar[int]
        profile: BlockedUserProfile
        def __init__(self, profile: _Optional[_Union[BlockedUserProfile, _Mapping]] = ...) -> None: ...
    OK_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    INVALID_REQUEST_FIELD_NUMBER: _ClassVar[int]
    PROFILE_NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    ok: BlockUserResponse.Ok
    internal_server_error: InternalServerError
    invalid_request: InvalidRequest
    profile_not_found: ProfileNotFound
    def __init__(self, ok: _Optional[_Union[BlockUserResponse.Ok, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., invalid_request: _Optional[_Union[InvalidRequest, _Mapping]] = ..., profile_not_found: _Optional[_Union[ProfileNotFound, _Mapping]] = ...) -> None: ...

class UnblockUserPayload(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class UnblockUserResponse(_message.Message):
    __slots__ = ("ok", "internal_server_error", "invalid_request", "profile_not_found")
    class Ok(_message.Message):
        __slots__ = ("profile",)
        PROFILE_FIELD_NUMBER: _ClassVar[int]
        profile: BlockedUserProfile
        def __init__(self, profile: _Optional[_Union[BlockedUserProfile, _Mapping]] = ...) -> None: ...
    OK_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    INVALID_REQUEST_FIELD_NUMBER: _ClassVar[int]
    PROFILE_NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    ok: UnblockUserResponse.Ok
    internal_server_error: InternalServerError
    invalid_request: InvalidRequest
    profile_not_found: ProfileNotFound
    def __init__(self, ok: _Optional[_Union[UnblockUserResponse.Ok, _Mapping]] = ..., internal_server_error: _Optional[_Union[InternalServerError, _Mapping]] = ..., invalid_request: _Optional[_Union[InvalidRequest, _Mapping]] = ..., profile_not_found: _Optional[_Union[ProfileNotFound, _Mapping]] = ...) -> None: ...

class GetBlockedUsersPayload(_message.Message):
    __slots__ = ("pagination",)
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    pagination: Pagination
    def __init__(self, pagination: _Optional[_Union[Pagination, _Mapping]] = ...) -> None: ...

class GetBlockedUsersResponse(_message.Message):
    __slots__ = ("profiles", "pagination_data")
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_DATA_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[BlockedUserProfile]
    pagination_data: PaginatedResponse
    def __init__(self, profiles: _Optional[_Iterable[_Union[BlockedUserProfile, _Mapping]]] = ..., pagination_data: _Optional[_Union[PaginatedResponse, _Mapping]] = ...) -> None: ...

class GetBlockingStatusResponse(_message.Message):
    __slots__ = ("blocked_users", "blocked_by_users")
    BLOCKED_USERS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_BY_USERS_FIELD_NUMBER: _ClassVar[int]
    blocked_users: _containers.RepeatedScalarFieldContainer[str]
    blocked_by_users: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, blocked_users: _Optional[_Iterable[str]] = ..., blocked_by_users: _Optional[_Iterable[str]] = ...) -> None: ...

class BlockUpdate(_message.Message):
    __slots__ = ("address", "is_blocked")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IS_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    address: str
    is_blocked: bool
    def __init__(self, address: _Optional[str] = ..., is_blocked: _Optional[bool] = ...) -> None: ...
