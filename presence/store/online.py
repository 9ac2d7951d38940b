"""Who is online: the one place that reads and writes presence in Redis.

Per user, Redis keeps the set of their open connections and the status they chose. A user
is visible (ONLINE or AWAY) while they have a connection and chose a visible status; every
change of that visible status gets a new version and is published to the user's presence
group, which the connections of their friends join. Versions let a subscriber drop a change
that arrives after a newer snapshot. All transitions run as one Lua script, so concurrent
connections of a user, on any process, never see a half-made change.

Each server process also keeps a heartbeat key that expires, and the set of connections it
holds. When a heartbeat expires (the process died without cleaning up), any living process
claims the dead one's connections and disconnects them, exactly as if they had closed.
A connection id is "<process incarnation>/<n>", n counting the incarnation's connections,
so it names its process and is never reused.
"""

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from presence import layer as fanout
from presence import observability
from presence.conf import presence_settings
from presence.loops import PerLoop
from presence_project import redis_clients

_CONNECTIONS = "presence:connections:{}"  # SET of connection ids of one user
_CHOSEN = "presence:chosen"  # HASH address -> status the user chose while connected
_VISIBLE = "presence:visible"  # HASH address -> "status:version:last_seen_ms"
_VISIBLE_INDEX = "presence:visible-index"  # ZSET of visible addresses, for paging
_AWAY = "presence:away"  # SET of the visible addresses that are AWAY, for counting
_VERSIONS = "presence:versions"  # HASH address -> version of the last visible change
_LAST_SEEN = "presence:last-seen"  # HASH address -> ms of the last visible change
_PROCESSES = "presence:processes"  # SET of process incarnations that have registered
_HEARTBEAT = "presence:heartbeat:{}"  # STRING with a TTL: the process's stats at its last beat
_PROCESS_CONNECTIONS = "presence:process-connections:{}"  # SET "address connection_id"
_EPOCH = "presence:epoch"  # STRING set once; a new value means Redis lost everything


class Status(IntEnum):
    """The numbers of Status.StatusType on the wire."""

    ONLINE = 0
    OFFLINE = 1
    AWAY = 2


@dataclass(frozen=True, slots=True)
class Presence:
    address: str
    status: Status
    version: int
    # For a change, when it happened: its transition, the time delivery is measured from.
    last_seen_ms: int | None
    # A change as published, rather than a state read (a snapshot, a catch-up).
    live: bool = field(default=False, compare=False)

    def as_message(self) -> dict[str, object]:
        return {
            "type": "presence.changed",
            "address": self.address,
            "status": int(self.status),
            "version": self.version,
            "last_seen_ms": self.last_seen_ms,
        }

    @classmethod
    def from_message(cls, message: dict[str, object]) -> "Presence":
        return cls(
            address=str(message["address"]),
            status=Status(message["status"]),
            version=int(message["version"]),  # type: ignore[call-overload]
            last_seen_ms=message["last_seen_ms"],  # type: ignore[arg-type]
            live=True,
        )


_TRANSITION = """
local address, op, connection, wanted, now, limit =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local held = address .. ' ' .. connection
if op == 'disconnect' then
  redis.call('SREM', KEYS[1], connection)
  redis.call('SREM', KEYS[7], held)
  if redis.call('SCARD', KEYS[1]) == 0 then redis.call('HDEL', KEYS[2], address) end
else
  if op == 'connect' and redis.call('SISMEMBER', KEYS[1], connection) == 0
      and redis.call('SCARD', KEYS[1]) >= limit then
    return {-1}
  end
  redis.call('SADD', KEYS[1], connection)
  redis.call('SADD', KEYS[7], held)
  if op == 'status' then redis.call('HSET', KEYS[2], address, wanted) end
  if op == 'restore' and wanted ~= '' then redis.call('HSETNX', KEYS[2], address, wanted) end
end
local new = '1'
local chosen = redis.call('HGET', KEYS[2], address)
if chosen and chosen ~= '1' and redis.call('SCARD', KEYS[1]) > 0 then new = chosen end
local current = redis.call('HGET', KEYS[3], address)
local old = '1'
if current then old = string.match(current, '^(%d+)') end
if old == new then
  return {0, new, redis.call('HGET', KEYS[5], address) or '0',
          redis.call('HGET', KEYS[6], address) or ''}
end
local version = redis.call('HINCRBY', KEYS[5], address, 1)
redis.call('HSET', KEYS[6], address, now)
if new == '1' then
  redis.call('HDEL', KEYS[3], address)
  redis.call('ZREM', KEYS[4], address)
else
  redis.call('HSET', KEYS[3], address, new .. ':' .. version .. ':' .. now)
  redis.call('ZADD', KEYS[4], 0, address)
end
if new == '2' then
  redis.call('SADD', KEYS[8], address)
else
  redis.call('SREM', KEYS[8], address)
end
return {1, new, version, now}
"""


class TooManyConnections(Exception):
    """The user already has as many connections as allowed."""


@dataclass
class _Client:
    redis: Redis
    transition: AsyncScript


def _new_client() -> _Client:
    # A burst waits up to 5 s for a free connection rather than failing at once.
    redis = redis_clients.client(
        asynchronous=True,
        decode_responses=True,
        max_connections=presence_settings().redis_max_connections,
        wait=5,
        socket_timeout=5,
        socket_connect_timeout=3,
    )
    # EVALSHA, reloading the script by itself if Redis restarted empty.
    return _Client(redis, redis.register_script(_TRANSITION))


_clients = PerLoop(_new_client)


def _redis() -> Redis:
    return _clients.get().redis


_connection_numbers = itertools.count(1)


def connection_id(process: str) -> str:
    """A new id for a connection held by the process incarnation `process`.

    A count, not a random id: the incarnation is random already, and os.urandom was 0.8 %
    of the server's samples while connections opened.
    """
    return f"{process}/{next(_connection_numbers)}"


def process_of(connection: str) -> str:
    return connection.rpartition("/")[0]


def _now_ms() -> int:
    return int(time.time() * 1000)


# By wire number: indexing a tuple is several times cheaper than calling the enum, which
# counts when a query parses a thousand friends.
_STATUS_BY_NUMBER = tuple(sorted(Status, key=int))


def _parse_visible(address: str, raw: str) -> Presence:
    status, version, last_seen = raw.split(":")
    return Presence(address, _STATUS_BY_NUMBER[int(status)], int(version), int(last_seen))


async def _transition(
    address: str, op: str, connection_id: str, wanted: Status | None, limit: int = 0
) -> Presence:
    """Apply a transition and publish it, to the end even if the caller is cancelled (a
    connection killed while closing): a change made in Redis but never published would
    leave friends with a stale status."""
    return await asyncio.shield(_transition_and_publish(address, op, connection_id, wanted, limit))


async def _transition_and_publish(
    address: str, op: str, connection_id: str, wanted: Status | None, limit: int
) -> Presence:
    keys = [
        _CONNECTIONS.format(address),
        _CHOSEN,
        _VISIBLE,
        _VISIBLE_INDEX,
        _VERSIONS,
        _LAST_SEEN,
        _PROCESS_CONNECTIONS.format(process_of(connection_id)),
        _AWAY,
    ]
    args = [address, op, connection_id, "" if wanted is None else int(wanted), _now_ms(), limit]
    try:
        result = await _clients.get().transition(keys=keys, args=args)
    except RedisError:
        observability.redis_failed("presence")
        raise
    if result[0] == -1:
        raise TooManyConnections(f"at most {limit} connections per user")
    changed, status, version, last_seen = result
    presence = Presence(
        address, Status(int(status)), int(version), int(last_seen) if last_seen else None
    )
    if changed:
        await fanout.publish_presence(address, presence.as_message())
    return presence


async def connect(address: str, connection_id: str, max_connections: int) -> None:
    """Count a connection of `address`, or raise TooManyConnections; it shows nobody anything."""
    await _transition(address, "connect", connection_id, None, max_connections)


async def restore(address: str, connection_id: str, chosen: Status | None) -> Presence:
    """Put back a live connection after Redis lost it, with the status last chosen on it
    unless another connection of the user already restored one."""
    return await _transition(address, "restore", connection_id, chosen)


async def choose_unless_chosen(address: str, connection_id: str, status: Status) -> Presence:
    """Make `status` the user's choice unless one of their connections made one: for clients
    that cannot choose. The restore transition is exactly that (HSETNX of the choice)."""
    return await _transition(address, "restore", connection_id, status)


async def disconnect(address: str, connection_id: str) -> Presence:
    """Forget a connection; with the last one gone, the user is OFFLINE for their friends."""
    return await _transition(address, "disconnect", connection_id, None)


async def set_status(address: str, connection_id: str, status: Status) -> Presence:
    """Apply the status a user chose, on all of their connections."""
    return await _transition(address, "status", connection_id, status)


async def _visible_values(addresses: list[str]) -> list[str | None]:
    """Each of `addresses`' visible state as stored, None if not visible: one HMGET."""
    return await _redis().hmget(_VISIBLE, addresses) if addresses else []


async def visible_among(addresses: Iterable[str]) -> dict[str, Presence]:
    """The visible users among `addresses`, in one round trip: O(len(addresses))."""
    wanted = list(addresses)
    values = await _visible_values(wanted)
    return {
        address: _parse_visible(address, raw)
        for address, raw in zip(wanted, values, strict=True)
        if raw is not None
    }


async def visible_addresses_among(addresses: Iterable[str]) -> list[str]:
    """The visible users among `addresses`, in their order: visible_among without reading
    each one's state, for lists of addresses only (500 visible of 1,000: 19 µs, not 512)."""
    wanted = list(addresses)
    values = await _visible_values(wanted)
    return [address for address, raw in zip(wanted, values, strict=True) if raw is not None]


async def presence_of(addresses: Iterable[str]) -> list[Presence]:
    """Everyone in `addresses` as their friends see them, OFFLINE ones with their last_seen."""
    wanted = list(addresses)
    if not wanted:
        return []
    # One transaction: a transition between the reads would pair a status with another version.
    async with _redis().pipeline(transaction=True) as pipe:
        pipe.hmget(_VISIBLE, wanted)
        pipe.hmget(_VERSIONS, wanted)
        pipe.hmget(_LAST_SEEN, wanted)
        visible, versions, last_seen = await pipe.execute()
    return [
        _parse_visible(address, raw)
        if raw is not None
        else Presence(address, Status.OFFLINE, int(version or 0), int(seen) if seen else None)
        for address, raw, version, seen in zip(wanted, visible, versions, last_seen, strict=True)
    ]


async def visible_count() -> int:
    """How many users are visible."""
    return await _redis().zcard(_VISIBLE_INDEX)


async def visible_page(offset: int, limit: int) -> list[Presence]:
    """One page of the visible users by address, for operators."""
    page = await _redis().zrange(_VISIBLE_INDEX, offset, offset + limit - 1)
    found = await visible_among(page)
    return [found[address] for address in page if address in found]


async def heartbeat(process: str, ttl_seconds: int, stats: dict[str, int]) -> None:
    """Say `process` is alive for `ttl_seconds` more, and publish its `stats` for operators."""
    beat = json.dumps({"at_ms": _now_ms(), "stats": stats})
    async with _redis().pipeline(transaction=False) as pipe:
        pipe.set(_HEARTBEAT.format(process), beat, ex=ttl_seconds)
        pipe.sadd(_PROCESSES, process)
        await pipe.execute()


@dataclass(frozen=True, slots=True)
class ProcessBeat:
    """A registered process as its last heartbeat left it."""

    process: str
    # When the process last beat, by its own clock; None once its heartbeat has expired (it
    # is dead, not reaped yet) or if it publishes no stats.
    at_ms: int | None
    stats: dict[str, int]


def _parse_beat(process: str, raw: str | None) -> ProcessBeat:
    try:
        beat = json.loads(raw) if raw is not None else None
    except ValueError:
        beat = None
    if not isinstance(beat, dict):
        # Expired, or written by a version that published no stats.
        return ProcessBeat(process, None, {})
    return ProcessBeat(process, int(beat["at_ms"]), dict(beat["stats"]))


async def process_beats() -> list[ProcessBeat]:
    """Every registered process with its last heartbeat, by name."""
    client = _redis()
    processes = sorted(await client.smembers(_PROCESSES))
    beats = await client.mget([_HEARTBEAT.format(p) for p in processes]) if processes else []
    return [_parse_beat(p, raw) for p, raw in zip(processes, beats, strict=True)]


async def visible_counts() -> tuple[int, int]:
    """(how many users are ONLINE, how many AWAY) in one round trip."""
    async with _redis().pipeline(transaction=True) as pipe:
        pipe.zcard(_VISIBLE_INDEX)
        pipe.scard(_AWAY)
        visible, away = await pipe.execute()
    return visible - away, away


async def connections_of(address: str) -> list[str]:
    """The ids of `address`'s open connections, on every process."""
    return sorted(await _redis().smembers(_CONNECTIONS.format(address)))


async def reap_dead_processes() -> list[str]:
    """Disconnect every connection of processes whose heartbeat expired; returns those reaped.

    Removing a process from the set is the claim: of several reapers, one wins it.
    """
    client = _redis()
    reaped = []
    for process in await client.smembers(_PROCESSES):
        if await client.exists(_HEARTBEAT.format(process)):
            continue
        if not await client.srem(_PROCESSES, process):
            continue
        for held in await client.smembers(_PROCESS_CONNECTIONS.format(process)):
            address, _, connection = held.partition(" ")
            await disconnect(address, connection)
        await client.delete(_PROCESS_CONNECTIONS.format(process))
        reaped.append(process)
    return reaped


async def within_limit(key: str, limit: int, window_seconds: int) -> bool:
    """Count one more event for `key` in the current fixed window; False beyond `limit`."""
    window = int(time.time()) // window_seconds
    counter = f"presence:rate:{key}:{window}"
    async with _redis().pipeline(transaction=False) as pipe:
        pipe.incr(counter)
        pipe.expire(counter, window_seconds * 2)
        count, _ = await pipe.execute()
    return count <= limit


async def held_by(process: str) -> set[tuple[str, str]]:
    """(address, connection id) of every connection Redis believes `process` holds."""
    members = await _redis().smembers(_PROCESS_CONNECTIONS.format(process))
    return {tuple(member.split(" ", 1)) for member in members}  # type: ignore[misc]


async def epoch() -> str:
    """A value that changes when Redis may have lost writes, so processes can rebuild: when
    it lost its data, and when another server answers (a Sentinel failover promotes a
    replica that asynchronous replication may have left behind)."""
    client = _redis()
    await client.set(_EPOCH, uuid.uuid4().hex, nx=True)
    data = await client.get(_EPOCH)
    server = (await client.info("server"))["run_id"]
    return f"{data}@{server}"
