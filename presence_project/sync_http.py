"""Django's synchronous HTTP code (middleware, DRF views, the admin) on one worker thread.

Under ASGI, Django gives every request a thread of its own and runs each standard
middleware hook as a hop to a thread. For this service that meant, per REST request, a new
thread, a new database connection (CONN_MAX_AGE cannot keep a connection whose thread
ends; with PostgreSQL, a login per request) and a dozen thread hops. Here every request's
synchronous code runs on the process's one thread-sensitive worker thread, so its
connection persists: at most one per process for HTTP. The cost: requests wait for each
other's synchronous code, a slow admin page included. The WebSocket side's queries do not
wait with them: they run on threads of their own (presence_project.db).
"""

from collections.abc import Callable
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_only_middleware


class OneThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler without its per-request thread (ThreadSensitiveContext)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Without this override each request opens a thread and a database connection (a
        # PostgreSQL login); tests/test_sync_http_guard.py fails when Django's method changes.
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP only, not {scope['type']}")
        await self.handle(scope, receive, send)


@sync_only_middleware
class SynchronousChain:
    """Last in MIDDLEWARE: Django then runs the middleware above it synchronously, in one
    hop to the worker thread, instead of a hop for every process_request and
    process_response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
