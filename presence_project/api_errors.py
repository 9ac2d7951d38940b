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
from presence.services import NotConnected, TooManyStatusChanges


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
    if isinstance(exc, TooManyStatusChanges):
        return exceptions.Throttled(wait=60)
    if (
        isinstance(exc, exceptions.ValidationError)
        and isinstance(exc.detail, dict)
        and "detail" not in exc.detail
    ):
        # A request body's field errors, as one detail naming each field.
        return exceptions.ValidationError({"detail": _fields_detail(exc.detail)})
    return exc


def _fields_detail(errors: dict[str, Any], where: str = "") -> str:
    """Each field's errors as "field: what is wrong", a nested field named by its path
    ("location.realm")."""

    def text(field: str, value: Any) -> str:
        path = f"{where}.{field}" if where else str(field)
        if isinstance(value, dict):
            return _fields_detail(value, path)
        if isinstance(value, list) and any(isinstance(item, dict) for item in value):
            return "; ".join(text(field, item) for item in value)
        messages = value if isinstance(value, list) else [value]
        return f"{path}: {' '.join(str(message) for message in messages)}"

    return "; ".join(text(field, value) for field, value in errors.items())


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    return views.exception_handler(_as_api_exception(exc), context)
