"""Who is online, in Redis: the only code that reads or writes users' presence keys.

Per user, Redis keeps the set of their open connections and the status they chose. A user
is visible (ONLINE or AWAY) while they have a connection and chose a visible status; every
change of that visible status gets a new version, so that a follower can drop a change that
arrives after a newer snapshot. Every transition is one Lua script, so concurrent
connections of a user, on any process, never see a half-made change. A transition reports
what it changed; telling friends is the caller's next step (presence.services).

With several shards, every key of a user, and their entries in the shared hashes, live on
the user's shard (presence.store.shards): a transition runs on that shard alone, and a read
of many users is one round trip per shard that holds any of them, all shards at once.
"""

import heapq
import time
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from presence import observability
from presence.conf import presence_settings
from presence.events import DESKTOP, STATUS_BY_NUMBER, Presence, Status
from presence.store import keys, shards
from presence_project import redis_clients
from presence_project.loops import PerLoop

_TRANSITION = """
local address, op, connection, wanted, now, limit =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local held = address .. ' ' .. connection
-- [conn] What this connection says of itself: "<device kind>:<1 if idle, else 0>".
local state = ARGV[7]
-- [/conn]
if op == 'reap' then
  -- The connection's process beats again: it is alive after all, and keeps it.
  if redis.call('EXISTS', KEYS[9]) == 1 then op = 'keep' else op = 'disconnect' end
end
if op == 'disconnect' then
  redis.call('SREM', KEYS[1], connection)
  redis.call('SREM', KEYS[7], held)
  if redis.call('SCARD', KEYS[1]) == 0 then redis.call('HDEL', KEYS[2], address) end
  redis.call('HDEL', KEYS[10], connection) -- [conn]
elseif op == 'device' then
  -- [conn] A connection that is no longer counted (it closed meanwhile) stays uncounted.
  if redis.call('SISMEMBER', KEYS[1], connection) == 1 then
    redis.call('HSET', KEYS[10], connection, state)
  end
elseif op ~= 'keep' then
  if op == 'connect' and redis.call('SISMEMBER', KEYS[1], connection) == 0
      and redis.call('SCARD', KEYS[1]) >= limit then
    return {-1}
  end
  redis.call('SADD', KEYS[1], connection)
  redis.call('SADD', KEYS[7], held)
  if op == 'status' then redis.call('HSET', KEYS[2], address, wanted) end
  if op == 'restore' and wanted ~= '' then redis.call('HSETNX', KEYS[2], address, wanted) end
  if op ~= 'status' then redis.call('HSET', KEYS[10], connection, state) end -- [conn]
end
local new = '1'
local chosen = redis.call('HGET', KEYS[2], address)
if chosen and chosen ~= '1' and redis.call('SCARD', KEYS[1]) > 0 then new = chosen end
-- [conn] A visible user's devices are the kinds of their connections; a chosen ONLINE shows
-- AWAY while every connection is idle. A connection counted without a state (made by a
-- process older than this script) is an active desktop.
local devices = ''
if new ~= '1' then
  local states = redis.call('HVALS', KEYS[10])
  local kinds, awake = {}, #states < redis.call('SCARD', KEYS[1])
  if awake then kinds['desktop'] = true end
  for _, each in ipairs(states) do
    local kind, idle = string.match(each, '^(%a+):(%d)$')
    kinds[kind] = true
    if idle == '0' then awake = true end
  end
  if new == '0' and not awake then new = '2' end
  local sorted = {}
  for kind in pairs(kinds) do sorted[#sorted + 1] = kind end
  table.sort(sorted)
  devices = table.concat(sorted, ',')
end
local devices_changed = devices ~= (redis.call('HGET', KEYS[11], address) or '')
-- [/conn]
local current = redis.call('HGET', KEYS[3], address)
local old = '1'
if current then old = string.match(current, '^(%d+)') end
if old == new and not devices_changed then
  return {0, new, redis.call('HGET', KEYS[5], address) or '0',
          redis.call('HGET', KEYS[6], address) or '', devices}
end
local version = redis.call('HINCRBY', KEYS[5], address, 1)
-- [conn]
if devices == '' then
  redis.call('HDEL', KEYS[11], address)
else
  redis.call('HSET', KEYS[11], address, devices)
end
-- [/conn]
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
return {1, new, version, now, devices}
"""


# The fields ARGV of each hash KEYS[i], as one list per hash, read at one moment: an HMGET
# per hash in one command, without MULTI/EXEC's client-side cost, in slices that keep
# unpack() within Lua's stack for any number of fields.
_READ_HASHES = """
local read = {}
for i, key in ipairs(KEYS) do
  local values = {}
  for first = 1, #ARGV, 1000 do
    local slice = redis.call('HMGET', key, unpack(ARGV, first, math.min(first + 999, #ARGV)))
    for _, value in ipairs(slice) do values[#values + 1] = value end
  end
  read[i] = values
end
return read
"""


class TooManyConnections(Exception):
    """The user already has as many connections as allowed."""


@dataclass(frozen=True, slots=True)
class Change:
    """A transition's outcome: the user as friends now see them, and whether that changed."""

    presence: Presence
    changed: bool


@dataclass(frozen=True, slots=True)
class Device:
    """What one connection says of itself: its kind (events.DEVICE_KINDS), and whether it is
    idle (no frame but acks for PRESENCE_IDLE_AWAY_SECONDS)."""

    kind: str = DESKTOP
    idle: bool = False

    def stored(self) -> str:
        return f"{self.kind}:{int(self.idle)}"


@dataclass
class _Client:
    redis: Redis
    transition: AsyncScript
    read_hashes: AsyncScript


def _new_client(shard: int) -> _Client:
    # A burst waits up to 5 s for a free connection rather than failing at once.
    redis = redis_clients.client(
        asynchronous=True,
        shard=shard,
        decode_responses=True,
        max_connections=presence_settings().redis_max_connections,
        wait=5,
        socket_timeout=5,
        socket_connect_timeout=3,
    )
    # EVALSHA, reloading the script by itself if Redis restarted empty.
    return _Client(redis, redis.register_script(_TRANSITION), redis.register_script(_READ_HASHES))


_clients = PerLoop(lambda: [_new_client(shard) for shard in range(shards.count())])


def redis(shard: int) -> Redis:
    """This event loop's client of `shard`'s presence keys (presence.store.processes shares
    it)."""
    return _clients.get()[shard].redis


def now_ms() -> int:
    return int(time.time() * 1000)


def _devices(stored: str | None) -> tuple[str, ...]:
    return tuple(stored.split(",")) if stored else ()


def _parse_visible(address: str, raw: str, devices: str | None) -> Presence:
    status, version, last_seen = raw.split(":")
    return Presence(
        address, STATUS_BY_NUMBER[int(status)], int(version), int(last_seen), _devices(devices)
    )


async def _transition(
    address: str,
    op: str,
    connection_id: str,
    wanted: Status | None,
    limit: int = 0,
    shard: int | None = None,
    device: Device = Device(),
) -> Change:
    script_keys = [
        keys.CONNECTIONS.format(address),
        keys.CHOSEN,
        keys.VISIBLE,
        keys.VISIBLE_INDEX,
        keys.VERSIONS,
        keys.LAST_SEEN,
        keys.PROCESS_CONNECTIONS.format(keys.process_of(connection_id)),
        keys.AWAY,
        keys.HEARTBEAT.format(keys.process_of(connection_id)),
        keys.CONNECTION_STATES.format(address),
        keys.DEVICES,
    ]
    args = [
        *(address, op, connection_id, "" if wanted is None else int(wanted), now_ms(), limit),
        device.stored(),
    ]
    try:
        on = shards.shard_of(address) if shard is None else shard
        result = await _clients.get()[on].transition(keys=script_keys, args=args)
    except RedisError:
        observability.redis_failed("presence")
        raise
    if result[0] == -1:
        raise TooManyConnections(f"at most {limit} connections per user")
    changed, status, version, last_seen, devices = result
    presence = Presence(
        address,
        Status(int(status)),
        int(version),
        int(last_seen) if last_seen else None,
        _devices(devices),
    )
    return Change(presence, bool(changed))


async def connect(address: str, connection_id: str, max_connections: int, device: Device) -> Change:
    """Count a connection of `address`, a `device`, or raise TooManyConnections; it shows
    nobody anything unless the user is visible already on another (a new device kind)."""
    return await _transition(
        address, "connect", connection_id, None, max_connections, device=device
    )


async def restore(
    address: str, connection_id: str, chosen: Status | None, device: Device
) -> Change:
    """Put back a live connection after Redis lost it, with its device and the status last
    chosen on it unless another connection of the user already restored one."""
    return await _transition(address, "restore", connection_id, chosen, device=device)


async def choose_unless_chosen(
    address: str, connection_id: str, status: Status, device: Device
) -> Change:
    """Make `status` the user's choice unless one of their connections made one: for clients
    that cannot choose. The restore transition is exactly that (HSETNX of the choice)."""
    return await _transition(address, "restore", connection_id, status, device=device)


async def set_device(address: str, connection_id: str, device: Device) -> Change:
    """A connection's device state changed (it went idle, or active again): the user may
    turn AWAY or ONLINE. A connection no longer counted is left alone."""
    return await _transition(address, "device", connection_id, None, device=device)


async def disconnect(address: str, connection_id: str) -> Change:
    """Forget a connection; with the last one gone, the user is OFFLINE for their friends."""
    return await _transition(address, "disconnect", connection_id, None)


async def reap(address: str, connection_id: str) -> Change:
    """Disconnect a connection of a process whose heartbeat expired, unless the process beat
    again meanwhile: a late process is alive, and puts back what was reaped before."""
    return await _transition(address, "reap", connection_id, None)


async def disconnect_left_behind(address: str, connection_id: str, shard: int) -> Change:
    """Forget a connection on `shard`, which no longer holds `address` (a process with
    another shard list registered it there): nothing the user's friends see changes."""
    return await _transition(address, "disconnect", connection_id, None, shard=shard)


async def set_status(address: str, connection_id: str, status: Status) -> Change:
    """Apply the status a user chose, on all of their connections."""
    return await _transition(address, "status", connection_id, status)


async def _visible_values(addresses: list[str]) -> list[str | None]:
    """Each of `addresses`' visible state as stored, None if not visible: one HMGET per
    shard."""

    async def read(shard: int, held: list[str]) -> list[str | None]:
        return await redis(shard).hmget(keys.VISIBLE, held)

    return await shards.by_shard(addresses, read) if addresses else []


async def _visible_presence(shard: int, addresses: list[str]) -> list[tuple[str | None, ...]]:
    """(visible state, devices) of each of `addresses`, all on `shard`."""
    # One script: a transition between the reads would pair a status with other devices.
    hashes = [keys.VISIBLE, keys.DEVICES]  # [conn] DEVICES
    read = await _clients.get()[shard].read_hashes(keys=hashes, args=addresses)
    return list(zip(*read, strict=True))


async def visible_among(addresses: Iterable[str]) -> dict[str, Presence]:
    """The visible users among `addresses`, in one round trip per shard: O(len(addresses))."""
    wanted = list(addresses)
    values = await shards.by_shard(wanted, _visible_presence) if wanted else []
    return {
        address: _parse_visible(address, raw, devices)
        for address, (raw, devices) in zip(wanted, values, strict=True)
        if raw is not None
    }


async def visible_statuses_among(addresses: Iterable[str]) -> dict[str, Status]:
    """The status of each visible user among `addresses`, in one HMGET per shard: for
    operators' lists, which show no more."""
    wanted = list(addresses)
    values = await _visible_values(wanted)
    return {
        address: STATUS_BY_NUMBER[int(raw.partition(":")[0])]
        for address, raw in zip(wanted, values, strict=True)
        if raw is not None
    }


async def visible_addresses_among(addresses: Iterable[str]) -> list[str]:
    """The visible users among `addresses`, in their order, for answers that list addresses
    only: one HMGET per shard, without parsing each one's state."""
    wanted = list(addresses)
    values = await _visible_values(wanted)
    return [address for address, raw in zip(wanted, values, strict=True) if raw is not None]


_Stored = tuple[str | None, str | None, str | None, str | None]


async def _stored_presence(shard: int, addresses: list[str]) -> list[_Stored]:
    """(visible state, version, last seen, devices) of each of `addresses`, all on `shard`."""
    # One transaction: a transition between the reads would pair a status with another version.
    async with redis(shard).pipeline(transaction=True) as pipe:
        pipe.hmget(keys.VISIBLE, addresses)
        pipe.hmget(keys.VERSIONS, addresses)
        pipe.hmget(keys.LAST_SEEN, addresses)
        pipe.hmget(keys.DEVICES, addresses)  # [conn]
        visible, versions, last_seen, devices = await pipe.execute()
    return list(zip(visible, versions, last_seen, devices, strict=True))


async def presence_of(addresses: Iterable[str]) -> list[Presence]:
    """Everyone in `addresses` as their friends see them, OFFLINE ones with their last_seen."""
    wanted = list(addresses)
    if not wanted:
        return []
    stored = await shards.by_shard(wanted, _stored_presence)
    return [
        _parse_visible(address, raw, devices)
        if raw is not None
        else Presence(address, Status.OFFLINE, int(version or 0), int(seen) if seen else None)
        for address, (raw, version, seen, devices) in zip(wanted, stored, strict=True)
    ]


async def visible_count() -> int:
    """How many users are visible, on every shard."""
    return sum(await shards.each_shard(lambda shard: redis(shard).zcard(keys.VISIBLE_INDEX)))


async def visible_page(offset: int, limit: int) -> list[Presence]:
    """One page of the visible users by address, for operators. Each shard's index is in
    address order, so with several shards the page is cut from the merge of every shard's
    first offset + limit."""
    if shards.count() == 1:
        page = await redis(0).zrange(keys.VISIBLE_INDEX, offset, offset + limit - 1)
    else:
        firsts = await shards.each_shard(
            lambda shard: redis(shard).zrange(keys.VISIBLE_INDEX, 0, offset + limit - 1)
        )
        page = list(heapq.merge(*firsts))[offset : offset + limit]
    found = await visible_among(page)
    return [found[address] for address in page if address in found]


async def _counts(shard: int) -> tuple[int, int]:
    async with redis(shard).pipeline(transaction=True) as pipe:
        pipe.zcard(keys.VISIBLE_INDEX)
        pipe.scard(keys.AWAY)
        visible, away = await pipe.execute()
    return visible, away


async def visible_counts() -> tuple[int, int]:
    """(how many users are ONLINE, how many AWAY), in one round trip per shard."""
    counts = await shards.each_shard(_counts)
    visible = sum(shard_visible for shard_visible, _ in counts)
    away = sum(shard_away for _, shard_away in counts)
    return visible - away, away


async def devices_of(address: str) -> dict[str, Device]:
    """Each open connection of `address` with what it says of itself, for operators; one
    counted without a state (made by an older process) is an active desktop."""
    client = redis(shards.shard_of(address))
    async with client.pipeline(transaction=True) as pipe:
        pipe.smembers(keys.CONNECTIONS.format(address))
        pipe.hgetall(keys.CONNECTION_STATES.format(address))
        connections, states = await pipe.execute()
    devices = {}
    for connection in sorted(connections):
        kind, _, idle = states.get(connection, f"{DESKTOP}:0").partition(":")
        devices[connection] = Device(kind, idle == "1")
    return devices


async def connections_of(address: str) -> list[str]:
    """The ids of `address`'s open connections, on every process."""
    return sorted(await redis(shards.shard_of(address)).smembers(keys.CONNECTIONS.format(address)))
