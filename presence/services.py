"""Presence writes: each changes the store, then publishes what changed to friends.

As in Zulip's do_update_user_presence -> send_presence_changed, publishing is its own step
after the transition; a transition runs to its publication even if its caller is cancelled
(a connection killed while closing), since a change made in Redis but never published would
leave friends with a stale status.
"""

import asyncio
import logging
import re
import unicodedata
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from redis.exceptions import RedisError

from accounts.addresses import normalize_address
from friendships.sharing import Sharing
from presence import publishing, sharing
from presence.conf import presence_settings
from presence.events import Location, Presence, SessionDisconnect, Status
from presence.store import audiences, online, processes, shards
from presence.store import history as history_stream
from presence.store.online import (
    Choice,
    MessageChoice,
    NotConnected,
    TooManyConnections,
)
from presence_project import redis_clients
from presence_project.db import database_sync_to_async
from presence_project.ratelimits import Limit, within_limits_async

__all__ = [
    "Choice",
    "MessageChoice",
    "NotConnected",
    "TooManyConnections",
    "TooManyStatusChanges",
]

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


async def _within_status_limit(address: str) -> None:
    """Count a change of the user's status or message, or raise TooManyStatusChanges."""
    limit = Limit(f"status:{address}", presence_settings().status_changes_per_minute, 60)
    if not await within_limits_async([limit]):
        raise TooManyStatusChanges("too many status changes: try again in a minute")


async def set_status(address: str, connection_id: str, choice: Choice) -> Presence:
    """The status a user chose, on all of their connections, within the rate limit (else
    TooManyStatusChanges); until its end if it has one (AWAY and OFFLINE only: then ONLINE
    again), with its message if it has one. Raises ValidationError for an end that cannot
    be."""
    if choice.until_ms is not None:
        if choice.status == Status.ONLINE:
            raise ValidationError(
                "status_until applies to AWAY or OFFLINE: ONLINE has no end", code="online_end"
            )
        check_end(choice.until_ms, "status_until")
    await _within_status_limit(address)
    return await _apply(online.choose(address, connection_id, choice))


async def default_status(
    address: str, connection_id: str, status: Status, device: online.Device
) -> Presence:
    """`status`, unless the user chose one on another connection: for clients that cannot
    choose."""
    return await _apply(online.choose_unless_chosen(address, connection_id, status, device))


async def restore(
    address: str, connection_id: str, chosen: Choice, device: online.Device
) -> Presence:
    """Put back a live connection that Redis lost, with its device, the status (and its end)
    and the message chosen on it."""
    return await _apply(online.restore(address, connection_id, chosen, device))


async def set_device(address: str, connection_id: str, device: online.Device) -> Presence:
    """A connection went idle or came back: a user whose connections are all idle shows
    AWAY instead of a chosen ONLINE, and ONLINE again once one is active."""
    return await _apply(online.set_device(address, connection_id, device))


async def disconnect(address: str, connection_id: str) -> Presence:
    """A connection closed; with the user's last one gone, friends see them OFFLINE."""
    return await _apply(online.disconnect(address, connection_id))


# --- [status] Status messages and ends ----------------------------------------------------

# Characters of a status message after normalisation, as issue 18 fixes it.
STATUS_MESSAGE_MAX = 100
# The furthest ahead a message or a chosen status may end.
MAX_END_DAYS = 366
# Characters that reorder the text around them (embeddings, overrides, isolates): a message
# must not make friends' clients display other text in another order.
_BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
# Unicode categories refused anywhere in a message, by the name an error gives them.
_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "a lone surrogate",
}


def normalize_message(text: str) -> str:
    """A status message as it is stored and shown: Unicode NFC, without leading or trailing
    whitespace, at most STATUS_MESSAGE_MAX characters ("" clears the message). Raises
    ValidationError naming the first refused character and its position (from 1)."""
    text = unicodedata.normalize("NFC", text)
    for position, char in enumerate(text, start=1):
        if char in _BIDI_CONTROLS:
            problem = "a bidirectional override or isolate character"
        else:
            problem = _REFUSED_CATEGORIES.get(unicodedata.category(char), "")
        if problem:
            raise ValidationError(
                f"the status message must not contain {problem}: U+{ord(char):04X} at "
                f"position {position}",
                code="refused_character",
            )
    text = text.strip()
    if len(text) > STATUS_MESSAGE_MAX:
        raise ValidationError(
            f"the status message has {len(text)} characters after normalisation (NFC, "
            f"trimmed): at most {STATUS_MESSAGE_MAX}",
            code="message_too_long",
        )
    return text


def check_end(until_ms: int, name: str) -> int:
    """`until_ms`, an end named `name` for errors, if it is in the future and at most
    MAX_END_DAYS away; else ValidationError."""
    now = online.now_ms()
    if until_ms <= now:
        raise ValidationError(
            f"{name} must be later than now ({now} ms since the Unix epoch), not {until_ms}",
            code="end_passed",
        )
    if until_ms > now + MAX_END_DAYS * 86_400_000:
        raise ValidationError(
            f"{name} must be at most {MAX_END_DAYS} days from now", code="end_too_far"
        )
    return until_ms


def message_choice(
    text: str, until_ms: int | None = None, clear_on_offline: bool = False
) -> MessageChoice:
    """A status message as a user sets it, normalised and checked (ValidationError)."""
    text = normalize_message(text)
    if until_ms is not None:
        if not text:
            raise ValidationError(
                "message_until needs a message: an empty one clears it", code="end_of_nothing"
            )
        check_end(until_ms, "message_until")
    return MessageChoice(text, until_ms, clear_on_offline)


async def set_message(address: str, message: MessageChoice) -> Presence:
    """Set or clear the user's status message, within the status rate limit; shown to
    friends while the user is visible, kept while they are not."""
    await _within_status_limit(address)
    return await _apply(online.set_message(address, message))


def set_message_now(address: str, message: MessageChoice) -> Presence:
    """set_message, for the synchronous side (REST)."""
    return async_to_sync(set_message)(address, message)


async def apply_ends(address: str) -> Presence:
    """End the user's message or chosen status if its time has come, and tell friends."""
    return await _apply(online.apply_ends(address))


# --- [/status] -----------------------------------------------------------------------------


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


# --- [location] ---------------------------------------------------------------------------

REALM_MAX_LENGTH = 128
# Genesis City spans -150..150 on both axes (a little more at its newer edges); a world lays
# out its own parcels near the origin.
# One bound for both keeps garbage out without knowing every world's layout.
PARCEL_LIMIT = 1000
# A realm's name ("main"), a world's ("name.dcl.eth") or a catalyst's address.
REALM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
_REALM = re.compile(REALM_PATTERN)


def location(realm: str, x: int, y: int) -> Location:
    """The location a user shares, or ValidationError saying what is wrong with it."""
    if not realm:
        raise ValidationError("the location's realm is required", code="realm_required")
    if len(realm) > REALM_MAX_LENGTH:
        raise ValidationError(
            f"the realm is at most {REALM_MAX_LENGTH} characters, not {len(realm)}",
            code="realm_too_long",
        )
    if not _REALM.fullmatch(realm):
        raise ValidationError(
            "the realm holds letters, digits and . _ : / - only, starting with a letter or a digit",
            code="realm_invalid",
        )
    for name, value in (("x", x), ("y", y)):
        if not -PARCEL_LIMIT <= value <= PARCEL_LIMIT:
            raise ValidationError(
                f"the parcel's {name} is between {-PARCEL_LIMIT} and {PARCEL_LIMIT}, not {value}",
                code="parcel_out_of_range",
            )
    return Location(realm, x, y)


async def set_location(address: str, location: Location | None) -> Presence:
    """Share where `address` is (None: nowhere) with their friends, at most one update per
    friend per PRESENCE_LOCATION_INTERVAL_MS; NotConnected if the user has no connection."""
    change = await online.set_location(address, location)
    if change.changed:
        await asyncio.shield(publishing.location_changed(change.presence))
    return change.presence


async def heartbeat(address: str, location: Location | None, device_kind: str) -> Presence:
    """A client without a socket is alive: `address` stays connected for
    PRESENCE_HEARTBEAT_OFFLINE_SECONDS more, ONLINE unless a connection chose a status, on a
    device of `device_kind` (events.DEVICE_KINDS), and shares `location` if it is given
    (None leaves the one shared as it is)."""
    until = online.now_ms() + presence_settings().heartbeat_offline_seconds * 1000
    device = online.Device(device_kind)
    return await asyncio.shield(_heartbeat(address, until, location, device))


async def _heartbeat(
    address: str, until_ms: int, location: Location | None, device: online.Device
) -> Presence:
    came = await online.heartbeat(address, until_ms, device)
    if location is None:
        if came.changed:
            await publishing.presence_changed(came.presence)
        return came.presence
    moved = await online.set_location(address, location)
    # One publication of the newest state, coming online and moving alike; a user who only
    # moved is coalesced as a location.
    if came.changed:
        await publishing.presence_changed(moved.presence)
    elif moved.changed:
        await publishing.location_changed(moved.presence)
    return moved.presence


async def expire_heartbeats(shard: int) -> int:
    """Disconnect the heartbeat connection of every user of `shard` whose heartbeats
    stopped; how many went."""
    expired = await online.expired_heartbeats(shard)
    for address in expired:
        await _apply(online.expire_heartbeat(address))
    return len(expired)


# --- [/location] --------------------------------------------------------------------------


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


# --- [privacy] Who may see a user ---------------------------------------------------------


async def share(address: str, wanted: Sharing) -> Sharing:
    """Make `wanted` who sees `address` (ValidationError if it names anyone but friends),
    then mirror it on their shard and tell their followers, on every process, what each may
    see now. Returns the sharing as stored."""
    # Imported here: the log formatter imports this module before the app registry is ready.
    from friendships.services import set_sharing

    saved = await database_sync_to_async(set_sharing)(address, wanted)
    address = normalize_address(address)
    while True:
        previous, visible, last_seen = await audiences.current(address)
        # Hiding starts now for whoever the new rule hides: they see what they would had the
        # user gone offline now.
        hide_at = online.now_ms() if visible else last_seen
        audience = sharing.following(previous, saved, hide_at)
        presence = await audiences.replace(address, previous, audience)
        if presence is not None:
            break
    await asyncio.shield(publishing.presence_changed(presence))
    return saved


def share_sync(address: str, wanted: Sharing) -> Sharing:
    """`share` for the synchronous side (REST views)."""
    return async_to_sync(share)(address, wanted)


def _restricted_audiences(shard: int) -> dict[str, str]:
    # Imported here: the log formatter imports this module before the app registry is ready.
    from friendships.selectors import restricted_sharers, stored_sharing

    return {
        address: sharing.following("", stored_sharing(address), None)
        for address in restricted_sharers()
        if shards.shard_of(address) == shard
    }


async def restore_sharing(shard: int) -> None:
    """Fill `shard`'s sharing mirror from the database if Redis lost it (or never had it).
    The last_seen frozen for hidden viewers is lost with it, as the truly offline users'
    last_seen is: both read as never seen."""
    if not await audiences.loaded(shard):
        await audiences.load(shard, await database_sync_to_async(_restricted_audiences)(shard))


# --- [history] A user's own presence history ----------------------------------------------
# The models are imported where used: this module loads while logging is configured
# (presence_project.logs -> presence.delivery.process), before Django's apps are.

# History entries stored per call of record_history, at most: one database write, about
# 40 ms of CPU.
HISTORY_BATCH = 500
# Rows deleted per statement by the retention: short transactions, however much is due.
PURGE_BATCH = 1000


async def record_history(shard: int, consumer: str) -> int:
    """Store in the database up to HISTORY_BATCH of the history entries waiting in
    `shard`'s stream, acknowledged once stored; `consumer` is the calling process. How many
    were read."""
    entries = await history_stream.read(shard, consumer, HISTORY_BATCH)
    if entries:
        await database_sync_to_async(_store_history)(entries)
        await history_stream.acknowledge(shard, [entry.stream_id for entry in entries])
    return len(entries)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _store_history(entries: list[history_stream.Entry]) -> None:
    try:
        _insert_history(entries)
    except IntegrityError:
        # A user was deleted between the lookup of the known users and the insert: the
        # same batch would fail on every retry, so the users are looked up again at once.
        _insert_history(entries)


def _insert_history(entries: list[history_stream.Entry]) -> None:
    """The entries of known users, but those older than the retention or than the user's
    last deletion of their history; one stored per (user, stream id)."""
    from accounts.models import User
    from presence.models import HistoryEntry, HistoryErasure

    addresses = {entry.address for entry in entries}
    known = set(User.objects.filter(address__in=addresses).values_list("address", flat=True))
    erased = dict(HistoryErasure.objects.filter(user__in=known).values_list("user", "at"))
    oldest = _retention_cutoff()
    rows = [
        HistoryEntry(
            user_id=entry.address,
            at=at,
            kind=entry.kind,
            connection=entry.connection,
            device=entry.device,
            chosen=entry.chosen,
            visible=entry.visible,
            stream_id=entry.stream_id,
        )
        for entry in entries
        if entry.address in known
        and (at := _moment(entry.at_ms)) >= oldest
        and (entry.address not in erased or at > erased[entry.address])
    ]
    HistoryEntry.objects.bulk_create(rows, ignore_conflicts=True)


def _retention_cutoff() -> datetime:
    return datetime.now(UTC) - timedelta(days=presence_settings().history_retention_days)


def delete_history(address: str) -> int:
    """Delete all of a user's presence history, including entries still on their way from
    Redis; how many stored entries were deleted."""
    from presence.models import HistoryEntry, HistoryErasure

    with transaction.atomic():
        HistoryErasure.objects.update_or_create(user_id=address, defaults={"at": datetime.now(UTC)})
        deleted, _ = HistoryEntry.objects.filter(user_id=address).delete()
    return deleted


def purge_history() -> int:
    """Delete every history entry older than PRESENCE_HISTORY_RETENTION_DAYS, a batch at a
    time, and the deletion marks that no entry can predate any more; how many entries."""
    from presence.models import HistoryEntry, HistoryErasure

    cutoff = _retention_cutoff()
    purged = 0
    while batch := list(
        HistoryEntry.objects.filter(at__lt=cutoff).values_list("pk", flat=True)[:PURGE_BATCH]
    ):
        purged += HistoryEntry.objects.filter(pk__in=batch).delete()[0]
    # Entries a drain stored while their user deleted their history (it read no deletion
    # yet): never shown, and gone now.
    erased = HistoryErasure.objects.filter(user=OuterRef("user")).values("at")
    purged += HistoryEntry.objects.filter(at__lte=Subquery(erased)).delete()[0]
    HistoryErasure.objects.filter(at__lt=cutoff).delete()
    return purged


async def purge_history_if_due(holder: str, every_seconds: int) -> int | None:
    """The retention pass, if no process ran it in the last `every_seconds`; how many
    entries it deleted, None if not due. Consumers of processes long gone leave each shard's
    stream group then too."""
    if not await history_stream.purge_due(every_seconds, holder):
        return None
    await shards.each_shard(history_stream.forget_idle_consumers)
    return await database_sync_to_async(purge_history)()


def record_history_access(reader: str, view: str, path: str, subject: str = "") -> None:
    """A staff member read presence history in the admin: `view` ("list" or "entry") at
    `path`, an entry of `subject`'s."""
    from presence.models import HistoryAccess

    HistoryAccess.objects.create(reader=reader, view=view, path=path[:2000], subject=subject)
