"""The REST API's one exception handler: every error body is `{"detail": ...}`.

Views let the domain's refusals propagate; they are mapped here, once for every view: a
broken friendship rule or a bad value is 400 with the rule as detail, a spent friendship
budget 429 with Retry-After. Everything else is DRF's own mapping.
"""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, views
from rest_framework.response import Response

from friendships.services import FriendshipRuleError, TooManyActions
from presence.services import NotConnected


class Conflict(exceptions.APIException):
    """The request does not fit the caller's state (409)."""

    status_code = 409
    default_code = "conflict"


def _as_api_exception(exc: Exception) -> Exception:
    if isinstance(exc, TooManyActions):
        return exceptions.Throttled(wait=exc.retry_after)
    if isinstance(exc, FriendshipRuleError):
        return exceptions.ValidationError({"detail": str(exc)})
    if isinstance(exc, NotConnected):
        return Conflict(str(exc))
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError({"detail": " ".join(exc.messages)})
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    return views.exception_handler(_as_api_exception(exc), context)
