"""What the OpenAPI contract says about error bodies, for every endpoint alike."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    detail = serializers.CharField(help_text="what was refused and why")


_ERRORS = {
    400: "a paging parameter, the address or a friendship rule refused it; `detail` says which",
    401: "no credentials, or a token or signature that is unknown, expired, revoked or invalid",
    403: "the caller is not staff, or a session request lacks its CSRF token",
    404: "no such URL (an address containing a slash)",
    406: "the Accept header allows no JSON, the only type this API answers",
    409: "the caller has no open connection or heartbeat to share a location on",
    429: "too many requests; the Retry-After header says in how many seconds to try again",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The documented error responses for the given status codes, and 406, which any
    endpoint answers to a client that accepts no JSON."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=_ERRORS[status])
        for status in sorted({*statuses, 406})
    }
