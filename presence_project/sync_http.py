"""Django's synchronous HTTP code (middleware, DRF views, the admin) on one worker thread.

Under ASGI, Django gives every request a thread of its own and runs each standard
middleware hook as a hop to a thread. For this service that meant, per REST request, a new
thread, a new database connection (CONN_MAX_AGE cannot keep a connection whose thread
ends; with PostgreSQL, a login per request) and a dozen thread hops, about 3 ms of the
online-friends request's 9 ms. Here every request's synchronous code runs on the process's
one database thread, the same one the WebSocket side uses through database_sync_to_async,
so its connection persists. The cost: requests wait for each other's synchronous code, as
they already did for the GIL; database calls are short here, and none waits on the network
for long.
"""

from collections.abc import Callable
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_only_middleware


class OneThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler without its per-request thread (ThreadSensitiveContext)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
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
