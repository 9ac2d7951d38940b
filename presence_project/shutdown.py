"""Where a process is in its shutdown (SIGTERM, presence_project.server), and what it
answers on connections that were open before it stopped listening.

While it drains, /readyz fails and everything else is served. Once it stops listening, a
client still holding a connection to it (HTTP keep-alive) may send another request, or an
upgrade to a WebSocket, on it: the request gets 503 and the WebSocket a close with 1012,
both saying why, so that the client goes to another process. Requests already in flight
are served as before.
"""

import json
from enum import IntEnum
from typing import Any

# "Service restart" (RFC 6455's registry): the server goes away and the client should
# reconnect, to another server.
CLOSE_SERVICE_RESTART = 1012
# At most 123 bytes: it travels in a WebSocket close frame.
REASON = "service restart: this server is shutting down, reconnect to another"


class Phase(IntEnum):
    SERVING = 0
    # /readyz answers 503; everything else is served.
    DRAINING = 1
    # Every new request or WebSocket is refused.
    REFUSING = 2


_phase = Phase.SERVING


def enter(phase: Phase) -> None:
    global _phase
    _phase = phase


def draining() -> bool:
    return _phase >= Phase.DRAINING


def refusing() -> bool:
    return _phase >= Phase.REFUSING


async def refuse(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Refuse one request or WebSocket, saying why."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": CLOSE_SERVICE_RESTART, "reason": REASON})
        return
    payload = json.dumps({"detail": REASON}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
