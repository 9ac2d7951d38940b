"""Signing in on the WebSocket with its first frame, as Decentraland's social service does.

Decentraland's clients open the socket and send, before any dcl-rpc frame, a JSON object of
signed-fetch headers (ADR-44) signed over `get:/`; token clients send dcl-rpc frames at once.
The first frame tells which way the client authenticates (`is_sign_in_frame`).
"""

import json

from accounts.services import user_for_signed_request
from accounts.signed_fetch import InvalidSignedRequest
from presence import observability
from presence.delivery.sessions import ClientSession
from presence.errors import Unauthorized
from presence.events import Status
from presence.rpc import wire
from presence_project.db import database_sync_to_async

# Wrapped once, not on every sign-in (presence.delivery.sessions says why).
_user_for_signed_request = database_sync_to_async(user_for_signed_request)

SIGNED_METHOD = "get"
SIGNED_PATH = "/"


# What JSON allows before a value (RFC 8259): space, tab, line feed, carriage return.
_JSON_WHITESPACE = b" \t\n\r"


def is_sign_in_frame(text_data: str | None, bytes_data: bytes | None) -> bool:
    """Whether a connection's first frame is signed-fetch headers rather than dcl-rpc.

    The rule: a text frame is a sign-in (dcl-rpc frames are binary). A binary frame is a
    sign-in when its first byte after any JSON whitespace is `{` and it is not a dcl-rpc
    message (`wire.decode` refuses it). Every other first frame is dcl-rpc.

    The bytes alone cannot tell. Every frame @dcl/rpc writes starts with the header, field 1
    as fixed32: the tag 0x0d, which is a carriage return, JSON whitespace, then the
    identifier's four bytes, little-endian, the first of them the message number's lowest
    byte. That byte takes every value, `{` included, since @dcl/rpc counts messages per
    process and a client that reconnects starts at any number. (The header is never left
    out: the identifier holds the message type, 1 to 11, in bits 27 to 30, so it is never
    the 0 that proto3 omits.) And protobuf decoders skip unknown fields, so a frame that
    starts with `{` itself (an empty group of field 15, `{|`) may still be a dcl-rpc
    message. Decoding settles it: no frame the server would serve as dcl-rpc is taken for
    a sign-in.

    The other way round, a JSON object with no carriage return byte (JSON.stringify and
    json.dumps write none, escaping it inside strings) never decodes as dcl-rpc: only a
    field-1 fixed32 record, tag 0x0d, sets the identifier, and without one its type is 0,
    which is no message type. A binary sign-in with raw carriage returns around its
    members may read as dcl-rpc; a text frame is always a sign-in.
    """
    if text_data is not None:
        return True
    data = bytes_data or b""
    if data.lstrip(_JSON_WHITESPACE)[:1] != b"{":
        return False
    try:
        wire.decode(data)
    except wire.MalformedFrame:
        return True
    return False


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
        detail = "the first frame must be a JSON object of signed-fetch headers"
        observability.refused(observability.BAD_FIRST_FRAME, detail)
        raise Unauthorized(detail)
    try:
        user = await _user_for_signed_request(SIGNED_METHOD, SIGNED_PATH, headers)
    except InvalidSignedRequest as exc:
        # The reason names what is wrong, never the signature itself.
        observability.refused(observability.BAD_SIGNATURE, str(exc))
        raise Unauthorized(f"signed headers refused: {exc}") from exc
    await session.bind(user.address, observability.SIGNED_FRAME)
    await session.default_status(Status.ONLINE)
    return user.address
