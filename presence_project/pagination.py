"""The REST API's one pagination: `?limit=&offset=`, with a bounded page size."""

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request


class Pagination(LimitOffsetPagination):
    """DRF's limit/offset pagination, strict about its parameters.

    DRF's own replaces a limit or offset it cannot parse by the default and hands any offset
    or limit, however large, to the database or Redis, which fail on values past 64 bits.
    Here a limit is a whole number from 1 to REST_MAX_PAGE_SIZE and an offset a whole
    number from 0, or the request is refused with 400 naming the parameter. An offset past
    the end is an empty page: the paginator reads the list's length first and slices only
    within it.
    """

    max_limit = settings.REST_MAX_PAGE_SIZE

    def get_limit(self, request: Request) -> int:
        return _whole_number(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return _whole_number(request, self.offset_query_param, 0, 0, None)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            self.offset_query_param: {"minimum": 0},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds[parameter["name"]])
        return parameters


def _whole_number(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    """The query parameter `name` as an int within [low, high], `default` when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # ASCII digits only: int() also takes signs, spaces, underscores and other scripts' digits.
    try:
        value = int(raw) if raw.isascii() and raw.isdigit() else None
    except ValueError:  # more digits than int() converts
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"from {low} up"
        raise ValidationError({"detail": f"{name} must be a whole number {bounds}."})
    return value
