"""Presence writes: each changes the store, then publishes what changed to friends.

As in Zulip's do_update_user_presence -> send_presence_changed, publishing is its own step
after the transition; a transition runs to its publication even if its caller is cancelled
(a connection killed while closing), since a change made in Redis but never published would
leave friends with a stale status.
"""

import asyncio
import logging
from collections.abc import Awaitable

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from redis.exceptions import RedisError

from accounts.addresses import normalize_address
from presence import publishing
from presence.conf import presence_settings
from presence.events import Presence, SessionDisconnect, Status
from presence.store import online, processes, shards
from presence.store.online import TooManyConnections
from presence_project import redis_clients
from presence_project.ratelimits import Limit, within_limits_async

__all__ = ["TooManyConnections", "TooManyStatusChanges"]

logger = logging.getLogger(__name__)

DEFAULT_DISCONNECT_REASON = "disconnected by an operator"
# A WebSocket close frame carries at most 123 bytes of reason.
MAX_REASON_BYTES = 123


class TooManyStatusChanges(Exception):
    """The user changed their status more often than allowed this minute."""


async def _publish_if_changed(transition: Awaitable[online.Change]) -> Presence:
    change = await transition
    if change.changed:
        await publishing.presence_changed(change.presence)
    return change.presence


async def _apply(transition: Awaitable[online.Change]) -> Presence:
    return await asyncio.shield(_publish_if_changed(transition))


async def connect(address: str, connection_id: str, device: online.Device) -> None:
    """Count a connection of `address`, a `device`, within the per-user limit, or raise
    TooManyConnections. It shows friends nothing until the user chooses a status, but a
    new kind of device of a visible user."""
    limit = presence_settings().max_connections_per_user
    await _apply(online.connect(address, connection_id, limit, device))


async def set_status(address: str, connection_id: str, status: Status) -> Presence:
    """The status a user chose, on all of their connections, within the rate limit (else
    TooManyStatusChanges)."""
    limit = Limit(f"status:{address}", presence_settings().status_changes_per_minute, 60)
    if not await within_limits_async([limit]):
        raise TooManyStatusChanges("too many status changes: try again in a minute")
    return await _apply(online.set_status(address, connection_id, status))


async def default_status(
    address: str, connection_id: str, status: Status, device: online.Device
) -> Presence:
    """`status`, unless the user chose one on another connection: for clients that cannot
    choose."""
    return await _apply(online.choose_unless_chosen(address, connection_id, status, device))


async def restore(
    address: str, connection_id: str, chosen: Status | None, device: online.Device
) -> Presence:
    """Put back a live connection that Redis lost, with its device and the status chosen on
    it."""
    return await _apply(online.restore(address, connection_id, chosen, device))


async def set_device(address: str, connection_id: str, device: online.Device) -> Presence:
    """A connection went idle or came back: a user whose connections are all idle shows
    AWAY instead of a chosen ONLINE, and ONLINE again once one is active."""
    return await _apply(online.set_device(address, connection_id, device))


async def disconnect(address: str, connection_id: str) -> Presence:
    """A connection closed; with the user's last one gone, friends see them OFFLINE."""
    return await _apply(online.disconnect(address, connection_id))


async def reap_dead_processes(shard: int, alive: str) -> list[str]:
    """Disconnect every connection on `shard` of processes whose heartbeat expired there,
    but `alive`'s (the caller's own); the processes this caller reaped. A process that beats
    again while it is reaped keeps the connections not reaped yet."""
    claimed = await processes.claim_dead_processes(shard, alive)
    for process, held in claimed.items():
        try:
            await _release(held, shard, reaping=True)
        except Exception:
            # The next check, by any process, claims it again with what is left.
            await processes.unclaim(process, shard)
            raise
        await processes.forget(process, shard)
    return list(claimed)


async def retire_process(process: str) -> int:
    """Disconnect every connection Redis still counts for `process`, a process shutting
    down once its grace period is over, then deregister it and send the changes still
    waiting to be coalesced. Returns how many connections it disconnected.

    Each shard is retired on its own: one that fails is logged and left to other processes'
    reaping once the heartbeat expires, while the others finish and their changes go out."""

    async def retire(shard: int) -> int:
        try:
            held = await processes.held_by(process, shard)
            await _release(held, shard)
            await processes.retire(process, shard)
        except RedisError as error:
            logger.error(
                "retiring this process on %s failed (%s); other processes reap its "
                "connections there once its heartbeat expires",
                redis_clients.description(shard),
                error,
            )
            return 0
        return len(held)

    try:
        return sum(await shards.each_shard(retire))
    finally:
        await publishing.flush()


async def _release(held: set[tuple[str, str]], shard: int, reaping: bool = False) -> None:
    """Disconnect the (address, connection id) pairs `shard` counts for a process that is
    gone, as many at once as the presence pool holds connections: a process may hold
    thousands. `reaping`: the process's heartbeat expired, and it keeps what is left if it
    beats again."""
    step = presence_settings().redis_max_connections
    pairs = list(held)
    for start in range(0, len(pairs), step):
        await asyncio.gather(
            *(_release_one(*pair, shard, reaping) for pair in pairs[start : start + step])
        )


async def _release_one(address: str, connection: str, shard: int, reaping: bool) -> None:
    if shards.shard_of(address) == shard:
        await _apply((online.reap if reaping else online.disconnect)(address, connection))
    else:
        # The user is on another shard since the list changed: their presence is read there.
        await online.disconnect_left_behind(address, connection, shard)


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
    open_connections = async_to_sync(online.connections_of)(address)
    async_to_sync(publishing.to_user)(address, SessionDisconnect(reason))
    return len(open_connections)
