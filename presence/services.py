"""Presence writes for the synchronous side (management commands, admin)."""

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError

from accounts.addresses import normalize_address
from presence import layer as fanout
from presence.store import online as state

DEFAULT_DISCONNECT_REASON = "disconnected by an operator"
# A WebSocket close frame carries at most 123 bytes of reason.
MAX_REASON_BYTES = 123


def disconnect_user(address: str, reason: str = DEFAULT_DISCONNECT_REASON) -> int:
    """Close every open connection of `address`, on every process, with `reason`, as
    revoking their tokens does but leaving the tokens valid: clients may connect again.

    Returns how many connections were open. Raises ValidationError for a bad address or a
    reason too long for a close frame.
    """
    address = normalize_address(address)
    reason = reason.strip() or DEFAULT_DISCONNECT_REASON
    if len(reason.encode()) > MAX_REASON_BYTES:
        raise ValidationError(
            f"the reason must fit a WebSocket close frame: at most {MAX_REASON_BYTES} bytes "
            f"of UTF-8, not {len(reason.encode())}",
            code="reason_too_long",
        )
    open_connections = async_to_sync(state.connections_of)(address)
    async_to_sync(fanout.publish_to_user)(address, {"type": "session.disconnect", "reason": reason})
    return len(open_connections)
