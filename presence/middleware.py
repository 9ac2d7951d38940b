"""Counts every HTTP response for /metrics, by the view that answered and its status."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from presence import observability


def count_http_requests(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def count(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        match = request.resolver_match
        # Views by name, not by path: paths carry addresses, one series each.
        observability.http_answered(match.view_name if match else "unmatched", response.status_code)
        return response

    return count
