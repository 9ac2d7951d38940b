"""The users' own presence history on its way to the database: each shard's stream.

A transition that opens or closes a connection, or changes the chosen or the visible
status, adds an entry to its shard's stream in the same script (presence.store.online's
[history] block): recording puts no database write on the connect path. Housekeeping
reads the stream through a consumer group, one consumer per process incarnation, and
acknowledges (and deletes) an entry only once the database holds it. An entry read by a
process that died before acknowledging it is claimed by another once it has waited
CLAIM_IDLE_MS; the database's unique key (user, stream id) stores an entry delivered twice
once.
"""

from dataclasses import dataclass

from redis.exceptions import ResponseError

from presence.conf import presence_settings
from presence.events import STATUS_BY_NUMBER, Status
from presence.store import keys
from presence.store.online import redis

GROUP = "history"
# A consumer idle for an hour with nothing unacknowledged is a process that is gone.
IDLE_CONSUMER_MS = 3_600_000

_Fields = dict[str, str] | None


@dataclass(frozen=True, slots=True)
class Entry:
    """One recorded transition of a user's presence."""

    stream_id: str
    address: str
    kind: str
    connection: str
    chosen: Status | None
    visible: Status
    at_ms: int
    device: str


def claim_idle_ms() -> int:
    """How long an entry waits for its consumer's acknowledgement before another process
    takes it: as long as a process's heartbeat lives, so that it is a dead process's."""
    return presence_settings().process_ttl_seconds * 1000


def _entries(read: list[tuple[str, _Fields]]) -> tuple[list[Entry], list[str]]:
    """The entries of a read, and the ids of those the cap trimmed away meanwhile."""
    entries, gone = [], []
    for stream_id, fields in read:
        if not fields:
            gone.append(stream_id)
            continue
        chosen = fields.get("chosen", "")
        entries.append(
            Entry(
                stream_id,
                fields["address"],
                fields["kind"],
                fields["connection"],
                STATUS_BY_NUMBER[int(chosen)] if chosen else None,
                STATUS_BY_NUMBER[int(fields["visible"])],
                int(fields["at"]),
                fields.get("device", ""),
            )
        )
    return entries, gone


async def _read_group(shard: int, consumer: str, count: int, start: str) -> list:
    answer = await redis(shard).xreadgroup(GROUP, consumer, {keys.HISTORY: start}, count=count)
    return answer[0][1] if answer else []


async def _read(shard: int, consumer: str, count: int) -> list[tuple[str, _Fields]]:
    # First what this consumer read but could not store, then a dead consumer's, then new.
    own = await _read_group(shard, consumer, count, "0")
    if own:
        return own
    _, claimed, _ = await redis(shard).xautoclaim(
        keys.HISTORY, GROUP, consumer, claim_idle_ms(), "0-0", count=count
    )
    if claimed:
        return claimed
    return await _read_group(shard, consumer, count, ">")


async def read(shard: int, consumer: str, count: int) -> list[Entry]:
    """Up to `count` entries of `shard`'s stream for `consumer` to store, then acknowledge:
    its own unacknowledged ones first, then those a dead consumer left, then new ones."""
    while True:
        try:
            raw = await _read(shard, consumer, count)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # A new stream, or a shard that lost its data: the group reads from the start.
            await _create_group(shard)
            continue
        entries, gone = _entries(raw)
        if gone:
            await acknowledge(shard, gone)
        if entries or not gone:
            return entries


async def _create_group(shard: int) -> None:
    try:
        await redis(shard).xgroup_create(keys.HISTORY, GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def acknowledge(shard: int, stream_ids: list[str]) -> None:
    """Entries the database holds now: they leave the stream."""
    async with redis(shard).pipeline(transaction=True) as pipe:
        pipe.xack(keys.HISTORY, GROUP, *stream_ids)
        pipe.xdel(keys.HISTORY, *stream_ids)
        await pipe.execute()


async def purge_due(every_seconds: int, holder: str) -> bool:
    """Whether `holder` runs the retention pass now: at most one process per period."""
    return bool(await redis(0).set(keys.HISTORY_PURGE, holder, nx=True, ex=every_seconds))


async def forget_idle_consumers(shard: int) -> int:
    """Remove the consumers of processes that are gone: idle for IDLE_CONSUMER_MS with
    nothing unacknowledged. How many were removed."""
    try:
        consumers = await redis(shard).xinfo_consumers(keys.HISTORY, GROUP)
    except ResponseError:
        return 0  # no stream or no group yet
    gone = [
        consumer["name"]
        for consumer in consumers
        if consumer["pending"] == 0 and consumer["idle"] >= IDLE_CONSUMER_MS
    ]
    for name in gone:
        await redis(shard).xgroup_delconsumer(keys.HISTORY, GROUP, name)
    return len(gone)
