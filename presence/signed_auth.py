"""Signing in on the WebSocket with its first frame, as Decentraland's social service does.

Decentraland's clients open the socket and send, before any dcl-rpc frame, a JSON object of
signed-fetch headers (ADR-44) signed over `get:/`. A dcl-rpc frame always starts with 0x0d
(field 1, fixed32), a JSON object with `{`, so the first frame tells which way the client
authenticates; token clients go on as before.
"""

import json

from channels.db import database_sync_to_async

from accounts.services import user_for_signed_request
from accounts.signed_fetch import InvalidSignedRequest
from presence.errors import Unauthorized
from presence.sessions import ClientSession
from presence.state import Status

SIGNED_METHOD = "get"
SIGNED_PATH = "/"


def is_sign_in_frame(text_data: str | None, bytes_data: bytes | None) -> bool:
    """Whether a connection's first frame is signed-fetch headers rather than dcl-rpc."""
    return text_data is not None or (bytes_data or b"").lstrip()[:1] == b"{"


async def sign_in(session: ClientSession, frame: str | bytes) -> str:
    """Bind `session` to the user whose wallet signed the frame's headers; their address.

    Raises a ServiceError whose message is the close reason. A client that signs in this way
    cannot choose a status (SocialService v2 has no procedure for it), so its user is ONLINE
    while connected unless they chose otherwise on another connection.
    """
    try:
        headers = json.loads(frame)
    except ValueError:
        headers = None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise Unauthorized("the first frame must be a JSON object of signed-fetch headers")
    try:
        user = await database_sync_to_async(user_for_signed_request)(
            SIGNED_METHOD, SIGNED_PATH, headers
        )
    except InvalidSignedRequest as exc:
        raise Unauthorized(f"signed headers refused: {exc}") from exc
    await session.bind(user.address)
    await session.default_status(Status.ONLINE)
    return user.address
