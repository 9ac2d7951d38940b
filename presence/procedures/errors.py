"""Errors that travel inside a response's oneof, as FriendshipsService and SocialService v2
want: the same error has a different member name in each, so an error lists its names."""

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from django.core.exceptions import ValidationError
from google.protobuf.message import Message

from presence.rpc.server import Feed, RemoteProcedureError

logger = logging.getLogger(__name__)

RequestT = TypeVar("RequestT", bound=Message)
ResponseT = TypeVar("ResponseT", bound=Message)
ContextT = TypeVar("ContextT")


class ServiceError(Exception):
    """Base of the errors a procedure answers with; `fields` names the oneof members that may
    carry it, most specific first. A response with none of them answers internal_server_error.
    """

    fields: tuple[str, ...] = ("internal_server_error",)


class BadRequest(ServiceError):
    fields = ("bad_request_error", "invalid_request")


class InvalidAction(BadRequest):
    """A friendship rule forbids the action; SocialService v2 has its own member for that."""

    fields = ("invalid_friendship_action", *BadRequest.fields)


class Unauthorized(ServiceError):
    fields = ("unauthorized_error",)


class Forbidden(ServiceError):
    fields = ("forbidden_error",)


class TooManyRequests(ServiceError):
    fields = ("too_many_requests_error",)


def error_response(response_type: type[ResponseT], error: ServiceError) -> ResponseT:
    """The response carrying `error` in the first of its members the response has."""
    members = response_type.DESCRIPTOR.fields_by_name
    field = next((f for f in error.fields if f in members), ServiceError.fields[0])
    return response_type(**{field: {"message": str(error)}})


def _error_members() -> frozenset[str]:
    found: set[str] = set()
    pending: list[type[ServiceError]] = [ServiceError]
    while pending:
        kind = pending.pop()
        found.update(kind.fields)
        pending.extend(kind.__subclasses__())
    return frozenset(found)


_ERROR_MEMBERS = _error_members()


def error_member(response: Message) -> str | None:
    """The error member a response holds, None for a success (for metrics and logs)."""
    for oneof in response.DESCRIPTOR.oneofs:
        member = response.WhichOneof(oneof.name)
        if member in _ERROR_MEMBERS:
            return member
    return None


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
    [Callable[[ContextT, RequestT], Awaitable[ResponseT]]],
    Callable[[ContextT, RequestT], Awaitable[ResponseT]],
]:
    """Turn a raised error into the response's error member; a RemoteProcedureError stays a
    remote error (a caller not signed in, for instance, is no application error)."""

    def decorate(
        handler: Callable[[ContextT, RequestT], Awaitable[ResponseT]],
    ) -> Callable[[ContextT, RequestT], Awaitable[ResponseT]]:
        @functools.wraps(handler)
        async def guarded(context: ContextT, request: RequestT) -> ResponseT:
            try:
                return await handler(context, request)
            except RemoteProcedureError:
                raise
            except Exception as exc:
                return error_response(response_type, _as_service_error(exc, handler.__name__))

        return guarded

    return decorate


def stream_errors(
    response_type: type[ResponseT],
) -> Callable[
    [Callable[[ContextT, RequestT], AsyncIterator[ResponseT]]],
    Callable[[ContextT, RequestT], AsyncIterator[ResponseT]],
]:
    """A raised error becomes the stream's last item, carrying the error member."""

    def decorate(
        handler: Callable[[ContextT, RequestT], AsyncIterator[ResponseT]],
    ) -> Callable[[ContextT, RequestT], AsyncIterator[ResponseT]]:
        @functools.wraps(handler)
        async def guarded(context: ContextT, request: RequestT) -> AsyncIterator[ResponseT]:
            try:
                async for item in handler(context, request):
                    yield item
            except Exception as exc:
                yield error_response(response_type, _as_service_error(exc, handler.__name__))

        return guarded

    return decorate


class _LastItem:
    """A feed holding one item, then finished: a failed stream's error."""

    finished = True

    def __init__(self, item: Message) -> None:
        self._item: bytes | None = item.SerializeToString()
        self.error_member = error_member(item)

    def take(self) -> bytes | None:
        item, self._item = self._item, None
        return item

    def on_ready(self, ready: Callable[[], Awaitable[None]]) -> None:
        pass

    async def close(self) -> None:
        pass


def feed_errors(
    response_type: type[ResponseT],
) -> Callable[
    [Callable[[ContextT, RequestT], Awaitable[Feed]]],
    Callable[[ContextT, RequestT], Awaitable[Feed]],
]:
    """An error raised while opening a feed becomes the stream's only item, as with
    stream_errors."""

    def decorate(
        handler: Callable[[ContextT, RequestT], Awaitable[Feed]],
    ) -> Callable[[ContextT, RequestT], Awaitable[Feed]]:
        @functools.wraps(handler)
        async def guarded(context: ContextT, request: RequestT) -> Feed:
            try:
                return await handler(context, request)
            except RemoteProcedureError:
                raise
            except Exception as exc:
                return _LastItem(
                    error_response(response_type, _as_service_error(exc, handler.__name__))
                )

        return guarded

    return decorate
