"""Errors as FriendshipsService and SocialService v2 answer them: inside the response's
oneof, under a member whose name differs between the two, so each error lists its names.
Every exception a procedure raises is mapped here, once for both modules."""

import logging

from django.core.exceptions import ValidationError
from google.protobuf.message import Message

from friendships.services import FriendshipRuleError, TooManyActions
from presence import observability
from presence.errors import (
    BadRequest,
    Forbidden,
    InvalidAction,
    ServiceError,
    TooManyRequests,
    Unauthorized,
)
from presence.rpc.server import ErrorAnswer
from presence.services import NotConnected, TooManyStatusChanges

logger = logging.getLogger(__name__)

_INTERNAL = "internal_server_error"
_BAD_REQUEST = ("bad_request_error", "invalid_request")

# The oneof members that may carry each error, most specific first; a response with none
# of them answers internal_server_error.
_MEMBERS: dict[type[ServiceError], tuple[str, ...]] = {
    ServiceError: (_INTERNAL,),
    BadRequest: _BAD_REQUEST,
    InvalidAction: ("invalid_friendship_action", *_BAD_REQUEST),
    Unauthorized: ("unauthorized_error",),
    Forbidden: ("forbidden_error",),
    TooManyRequests: ("too_many_requests_error",),
}
_ERROR_MEMBERS = frozenset(member for members in _MEMBERS.values() for member in members)


def as_service_error(exc: Exception, procedure: str) -> ServiceError:
    """What a procedure's exception means to the client; unexpected ones are logged."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, ValidationError):
        return BadRequest(" ".join(exc.messages))
    if isinstance(exc, NotConnected):  # [location]
        return BadRequest(str(exc))
    if isinstance(exc, FriendshipRuleError):
        return InvalidAction(str(exc))
    if isinstance(exc, TooManyActions):
        observability.refused(observability.FRIENDSHIP_RATE_LIMIT, str(exc))
        return TooManyRequests(str(exc))
    if isinstance(exc, TooManyStatusChanges):
        observability.refused(observability.STATUS_RATE_LIMIT, str(exc))
        return TooManyRequests(str(exc))
    logger.error("%s failed", procedure, exc_info=exc)
    return ServiceError(f"{procedure} failed on the server; try again later")


def error_response(response_type: type[Message], error: ServiceError) -> Message:
    """The response carrying `error` in the first of its members the response has."""
    members = response_type.DESCRIPTOR.fields_by_name
    wanted = _MEMBERS[next(k for k in type(error).__mro__ if k in _MEMBERS)]
    field = next((f for f in wanted if f in members), _INTERNAL)
    return response_type(**{field: {"message": str(error)}})


def answered_in(response_type: type[Message]) -> ErrorAnswer:
    """For a procedure whose response carries errors: raised errors become `response_type`."""

    def answer(exc: Exception, procedure: str) -> Message:
        return error_response(response_type, as_service_error(exc, procedure))

    return answer


def error_member(response: Message) -> str | None:
    """The error member a response holds, None for a success (for metrics and logs)."""
    for oneof in response.DESCRIPTOR.oneofs:
        member = response.WhichOneof(oneof.name)
        if member in _ERROR_MEMBERS:
            return member
    return None
