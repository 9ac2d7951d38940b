"""Errors that travel inside a response's oneof, as the FriendshipsService protocol wants."""

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from django.core.exceptions import ValidationError
from google.protobuf.message import Message

from presence.protocol import friendships_service_pb2 as pb

logger = logging.getLogger(__name__)

RequestT = TypeVar("RequestT", bound=Message)
ResponseT = TypeVar("ResponseT", bound=Message)


class ServiceError(Exception):
    """Base of the errors a procedure answers with; `field` names the oneof member."""

    field = "internal_server_error"
    message_type: type[Message] = pb.InternalServerError


class BadRequest(ServiceError):
    field = "bad_request_error"
    message_type = pb.BadRequestError


class Unauthorized(ServiceError):
    field = "unauthorized_error"
    message_type = pb.UnauthorizedError


class Forbidden(ServiceError):
    field = "forbidden_error"
    message_type = pb.ForbiddenError


class TooManyRequests(ServiceError):
    field = "too_many_requests_error"
    message_type = pb.TooManyRequestsError


def error_response(response_type: type[ResponseT], error: ServiceError) -> ResponseT:
    """The response carrying `error`; a kind the response has no field for becomes internal."""
    if error.field not in response_type.DESCRIPTOR.fields_by_name:
        error = ServiceError(str(error))
    return response_type(**{error.field: error.message_type(message=str(error))})


def _as_service_error(exc: Exception, procedure: str) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, ValidationError):
        return BadRequest(" ".join(exc.messages))
    logger.exception("%s failed", procedure)
    return ServiceError(f"{procedure} failed on the server; try again later")


def unary_errors(
    response_type: type[ResponseT],
) -> Callable[
    [Callable[[RequestT], Awaitable[ResponseT]]], Callable[[RequestT], Awaitable[ResponseT]]
]:
    """Turn a raised error into the response's error member."""

    def decorate(
        handler: Callable[[RequestT], Awaitable[ResponseT]],
    ) -> Callable[[RequestT], Awaitable[ResponseT]]:
        @functools.wraps(handler)
        async def guarded(request: RequestT) -> ResponseT:
            try:
                return await handler(request)
            except Exception as exc:
                return error_response(response_type, _as_service_error(exc, handler.__name__))

        return guarded

    return decorate


def stream_errors(
    response_type: type[ResponseT],
) -> Callable[
    [Callable[[RequestT], AsyncIterator[ResponseT]]], Callable[[RequestT], AsyncIterator[ResponseT]]
]:
    """A raised error becomes the stream's last item, carrying the error member."""

    def decorate(
        handler: Callable[[RequestT], AsyncIterator[ResponseT]],
    ) -> Callable[[RequestT], AsyncIterator[ResponseT]]:
        @functools.wraps(handler)
        async def guarded(request: RequestT) -> AsyncIterator[ResponseT]:
            try:
                async for item in handler(request):
                    yield item
            except Exception as exc:
                yield error_response(response_type, _as_service_error(exc, handler.__name__))

        return guarded

    return decorate
