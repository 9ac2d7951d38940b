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

import dataclasses
import heapq
import time
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from presence import observability, sharing
from presence.conf import presence_settings
from presence.events import DESKTOP, STATUS_BY_NUMBER, Location, Presence, Status
from presence.store import keys, shards
from presence_project import redis_clients
from presence_project.loops import PerLoop

_TRANSITION = """
local address, op, connection, wanted, now, limit =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local held = address .. ' ' .. connection
-- [history] What this transition changes, for the user's own history (below).
local history_chosen = redis.call('HGET', KEYS[2], address) or ''
-- The connection's kind as [conn] stored it (a close says none), else as it says now.
local history_state = redis.call('HGET', KEYS[14], connection) or ARGV[13] or ''
local joined, left = 0, 0
-- [/history]
-- [conn] What this connection says of itself: "<device kind>:<1 if idle, else 0>".
local state = ARGV[13]
-- [/conn]
if op == 'reap' then
  -- The connection's process beats again: it is alive after all, and keeps it.
  if redis.call('EXISTS', KEYS[9]) == 1 then op = 'keep' else op = 'disconnect' end
end
-- [location] A heartbeat keeps the user's heartbeat connection until ARGV[7], choosing
-- ONLINE unless a connection chose; expiring it once that time is over leaves a heartbeat
-- that came meanwhile in place.
if op == 'heartbeat' then
  redis.call('ZADD', KEYS[10], ARGV[7], address)
  op = 'restore'
elseif op == 'expire' then
  local deadline = tonumber(redis.call('ZSCORE', KEYS[10], address))
  if deadline and deadline > tonumber(now) then
    op = 'keep'
  else
    redis.call('ZREM', KEYS[10], address)
    op = 'disconnect'
  end
end
-- [/location]
-- [status] The status message (KEYS[12]) and the ends of a message or a chosen status
-- (KEYS[13]). ARGV[8] '1': set the message to ARGV[9] ('' clears it), ending at ARGV[10] ('':
-- never), cleared when the last connection closes if ARGV[11] is '1'; ARGV[12]: when the
-- status chosen now ends. 'message' and 'ends' change no connection: they go on as 'keep'.
local message_end, status_end = 'message ' .. address, 'status ' .. address
local function message_text()
  return string.match(redis.call('HGET', KEYS[12], address) or '0:', '^%d:(.*)$')
end
local message_before = message_text()
local function clear_message()
  redis.call('HDEL', KEYS[12], address)
  redis.call('ZREM', KEYS[13], message_end)
end
local function set_end(member, at)
  if at == '' then
    redis.call('ZREM', KEYS[13], member)
  else
    redis.call('ZADD', KEYS[13], at, member)
  end
end
if op == 'ends' then
  local ends_at = redis.call('ZSCORE', KEYS[13], status_end)
  if ends_at and tonumber(ends_at) <= tonumber(now) then
    redis.call('ZREM', KEYS[13], status_end)
    -- A chosen AWAY or OFFLINE ends in ONLINE while the user is connected.
    if redis.call('HEXISTS', KEYS[2], address) == 1 then
      redis.call('HSET', KEYS[2], address, '0')
    end
  end
  ends_at = redis.call('ZSCORE', KEYS[13], message_end)
  if ends_at and tonumber(ends_at) <= tonumber(now) then clear_message() end
  op = 'keep'
end
-- A restore fills in only what no other connection of the user restored already.
if ARGV[8] == '1' and (op ~= 'restore' or redis.call('HEXISTS', KEYS[12], address) == 0) then
  if ARGV[9] == '' then
    clear_message()
  else
    redis.call('HSET', KEYS[12], address, ARGV[11] .. ':' .. ARGV[9])
    set_end(message_end, ARGV[10])
  end
end
if op == 'status'
    or (op == 'restore' and wanted ~= '' and redis.call('HEXISTS', KEYS[2], address) == 0) then
  set_end(status_end, ARGV[12])
end
if op == 'message' then op = 'keep' end
-- [/status]
if op == 'disconnect' then
  left = redis.call('SREM', KEYS[1], connection)
  redis.call('SREM', KEYS[7], held)
  if redis.call('SCARD', KEYS[1]) == 0 then redis.call('HDEL', KEYS[2], address) end
  redis.call('HDEL', KEYS[14], connection) -- [conn]
elseif op == 'device' then
  -- [conn] A connection that is no longer counted (it closed meanwhile) stays uncounted.
  if redis.call('SISMEMBER', KEYS[1], connection) == 1 then
    redis.call('HSET', KEYS[14], connection, state)
  end
elseif op ~= 'keep' then
  if op == 'connect' and redis.call('SISMEMBER', KEYS[1], connection) == 0
      and redis.call('SCARD', KEYS[1]) >= limit then
    return {-1}
  end
  joined = redis.call('SADD', KEYS[1], connection)
  redis.call('SADD', KEYS[7], held)
  if op == 'status' then redis.call('HSET', KEYS[2], address, wanted) end
  if op == 'restore' and wanted ~= '' then redis.call('HSETNX', KEYS[2], address, wanted) end
  if op ~= 'status' then redis.call('HSET', KEYS[14], connection, state) end -- [conn]
end
-- [status] The last connection closed: a chosen status's end goes with the choice, and the
-- message too if the user asked so.
if op == 'disconnect' and redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[13], status_end)
  if string.sub(redis.call('HGET', KEYS[12], address) or '', 1, 1) == '1' then
    clear_message()
  end
end
-- [/status]
local new = '1'
local chosen = redis.call('HGET', KEYS[2], address)
if chosen and chosen ~= '1' and redis.call('SCARD', KEYS[1]) > 0 then new = chosen end
-- [conn] A visible user's devices are the kinds of their connections; a chosen ONLINE shows
-- AWAY while every connection is idle. A connection counted without a state (made by a
-- process older than this script) is an active desktop.
local devices = ''
if new ~= '1' then
  local states = redis.call('HVALS', KEYS[14])
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
local devices_changed = devices ~= (redis.call('HGET', KEYS[15], address) or '')
-- [/conn]
local current = redis.call('HGET', KEYS[3], address)
local old = '1'
if current then old = string.match(current, '^(%d+)') end
-- [history] One entry per transition that opens or closes a connection or changes the
-- chosen or the visible status; the housekeeping drains the stream into the database
-- (presence.store.history). The cap bounds only a backlog the drain left behind.
if joined == 1 or left == 1 or (chosen or '') ~= history_chosen or old ~= new then
  local kind = 'status'
  if joined == 1 then kind = 'connected' elseif left == 1 then kind = 'disconnected' end
  redis.call('XADD', KEYS[16], 'MAXLEN', '~', 100000, '*', 'address', address, 'kind', kind,
             'connection', connection, 'chosen', chosen or '', 'visible', new, 'at', now,
             'device', string.match(history_state, '^(%a*)') or '')
end
-- [/history]
-- [location] Going OFFLINE, or losing the last connection, forgets where the user was.
if (new == '1' and old ~= '1') or redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[11], address)
end
local location = redis.call('HGET', KEYS[11], address) or ''
-- [/location]
-- [status] Only a visible user shows a message; a new one is a visible change.
local message = ''
if new ~= '1' then message = message_text() end
local message_changed = old ~= '1' and new ~= '1' and message ~= message_before
-- [/status]
-- [privacy] The user's audience rule (KEYS[17]), returned with the presence so that
-- receivers filter per viewer without reading it again.
local audience = redis.call('HGET', KEYS[17], address) or ''
-- [/privacy]
if old == new and not message_changed and not devices_changed then
  return {0, new, redis.call('HGET', KEYS[5], address) or '0',
          redis.call('HGET', KEYS[6], address) or '', location, message, devices, audience}
end
local version = redis.call('HINCRBY', KEYS[5], address, 1)
-- [conn]
if devices == '' then
  redis.call('HDEL', KEYS[15], address)
else
  redis.call('HSET', KEYS[15], address, devices)
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
return {1, new, version, now, location, message, devices, audience}
"""

# [location] Share where the user is ('' clears it) while they have a connection; a change
# friends can see (the user is visible) is a new version.
_LOCATION = """
local address, value, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('SCARD', KEYS[1]) == 0 then return {-1} end
-- [status] [conn] The message and devices go with the presence it changes, as the
-- transition reports them.
local message = string.match(redis.call('HGET', KEYS[6], address) or '0:', '^%d:(.*)$')
local devices = redis.call('HGET', KEYS[7], address) or ''
local audience = redis.call('HGET', KEYS[8], address) or ''  -- [privacy]
local current = redis.call('HGET', KEYS[3], address)
local stored = redis.call('HGET', KEYS[2], address) or ''
if stored == value or not current then
  if value == '' then redis.call('HDEL', KEYS[2], address)
  else redis.call('HSET', KEYS[2], address, value) end
  if not current then
    return {0, '1', redis.call('HGET', KEYS[4], address) or '0',
            redis.call('HGET', KEYS[5], address) or '', '', '', '', audience}
  end
  local status, version, seen = string.match(current, '^(%d+):(%d+):(%d+)')
  return {0, status, version, seen, value, message, devices, audience}
end
if value == '' then redis.call('HDEL', KEYS[2], address)
else redis.call('HSET', KEYS[2], address, value) end
local status = string.match(current, '^(%d+)')
local version = redis.call('HINCRBY', KEYS[4], address, 1)
redis.call('HSET', KEYS[5], address, now)
redis.call('HSET', KEYS[3], address, status .. ':' .. version .. ':' .. now)
return {1, status, version, now, value, message, devices, audience}
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


class NotConnected(Exception):
    """The user has no connection (socket or heartbeat) to share a location on."""


@dataclass(frozen=True, slots=True)
class Change:
    """A transition's outcome: the user as friends now see them, and whether that changed."""

    presence: Presence
    changed: bool


@dataclass(frozen=True, slots=True)
class MessageChoice:
    """[status] A status message as the user set it: its text ("" clears it), when it ends (ms
    since the Unix epoch; None: never), and whether it goes when their last connection
    closes."""

    text: str
    until_ms: int | None = None
    clear_on_offline: bool = False

    def args(self) -> list[object]:
        """ARGV[8] to ARGV[11] of the transition."""
        until = "" if self.until_ms is None else self.until_ms
        return ["1", self.text, until, int(self.clear_on_offline)]


@dataclass(frozen=True, slots=True)
class Choice:
    """[status] What a user chooses for all of their connections: a status (None: none yet,
    for a restore), when it ends (ms since the Unix epoch; None: never), and a message
    (None: the message stays as it is)."""

    status: Status | None
    until_ms: int | None = None
    message: MessageChoice | None = None


# ARGV[8] to ARGV[11] of a transition that sets no message.
_NO_MESSAGE = ("", "", "", 0)


@dataclass(frozen=True, slots=True)
class Choices:
    """[status] What a user chose, as they read it back: their status while connected (None
    if none), their message (shown only while they are visible), and when each ends."""

    chosen: Status | None
    status_until_ms: int | None
    message: str
    message_until_ms: int | None
    clear_message_on_offline: bool


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
    locate: AsyncScript  # [location]
    read_hashes: AsyncScript  # [conn]


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
    return _Client(
        redis,
        redis.register_script(_TRANSITION),
        redis.register_script(_LOCATION),
        redis.register_script(_READ_HASHES),
    )


_clients = PerLoop(lambda: [_new_client(shard) for shard in range(shards.count())])


def redis(shard: int) -> Redis:
    """This event loop's client of `shard`'s presence keys (presence.store.processes shares
    it)."""
    return _clients.get()[shard].redis


def now_ms() -> int:
    return int(time.time() * 1000)


def _parse_location(raw: str | None) -> Location | None:
    """A location as stored, "x:y:realm" (the realm last: it is free text)."""
    if not raw:
        return None
    x, y, realm = raw.split(":", 2)
    return Location(realm, int(x), int(y))


def _store_location(location: Location | None) -> str:
    return "" if location is None else f"{location.x}:{location.y}:{location.realm}"


def _message_text(raw: str | None) -> str:
    """[status] The text of a stored message ("<flag>:<text>"), "" for none."""
    return "" if raw is None else raw.partition(":")[2]


def _devices(stored: str | None) -> tuple[str, ...]:
    return tuple(stored.split(",")) if stored else ()


def _parse_visible(
    address: str,
    raw: str,
    location: str | None = None,
    message: str | None = None,
    devices: str | None = None,
) -> Presence:
    status, version, last_seen = raw.split(":")
    return Presence(
        address,
        STATUS_BY_NUMBER[int(status)],
        int(version),
        int(last_seen),
        message=_message_text(message),
        devices=_devices(devices),
        location=_parse_location(location),
    )


def _change(address: str, result: list[str | int]) -> Change:
    """A script's answer [changed, status, version, last seen, location, message, devices,
    audience] as a Change; an OFFLINE user shows no location, message or devices."""
    changed, status, version, last_seen, location, message, devices, audience = result
    status = Status(int(status))
    presence = Presence(
        address,
        status,
        int(version),
        int(last_seen) if last_seen else None,
        message="" if status == Status.OFFLINE else message,
        devices=_devices(devices),
        location=None if status == Status.OFFLINE else _parse_location(location),
        audience=str(audience),
    )
    return Change(presence, bool(changed))


async def _run(script: AsyncScript, script_keys: list[str], args: list[object]) -> list:
    """`script`'s answer, a failure of Redis counted."""
    try:
        return await script(keys=script_keys, args=args)
    except RedisError:
        observability.redis_failed("presence")
        raise


async def _transition(
    address: str,
    op: str,
    connection_id: str,
    wanted: Status | None,
    limit: int = 0,
    shard: int | None = None,
    heartbeat_until_ms: int = 0,
    message: MessageChoice | None = None,
    status_until_ms: int | None = None,
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
        keys.HEARTBEATS,  # [location]
        keys.LOCATION,  # [location]
        keys.MESSAGE,  # [status] KEYS[12]
        keys.ENDS,  # [status] KEYS[13]
        keys.CONNECTION_STATES.format(address),  # [conn] KEYS[14]
        keys.DEVICES,  # [conn] KEYS[15]
        keys.HISTORY,  # [history] KEYS[16]
        keys.SHARING,  # [privacy] KEYS[17]
    ]
    args = [
        *(address, op, connection_id, "" if wanted is None else int(wanted), now_ms(), limit),
        heartbeat_until_ms,
        # [status]
        *(message.args() if message is not None else _NO_MESSAGE),
        "" if status_until_ms is None else status_until_ms,
        device.stored(),  # [conn]
    ]
    on = shards.shard_of(address) if shard is None else shard
    result = await _run(_clients.get()[on].transition, script_keys, args)
    if result[0] == -1:
        raise TooManyConnections(f"at most {limit} connections per user")
    return _change(address, result)


async def connect(address: str, connection_id: str, max_connections: int, device: Device) -> Change:
    """Count a connection of `address`, a `device`, or raise TooManyConnections; it shows
    nobody anything unless the user is visible already on another (a new device kind)."""
    return await _transition(
        address, "connect", connection_id, None, max_connections, device=device
    )


async def restore(address: str, connection_id: str, chosen: Choice, device: Device) -> Change:
    """Put back a live connection after Redis lost it, with its device, the status last
    chosen on it (and its end) and the message last set on it, each unless another
    connection of the user already restored one."""
    return await _chosen(address, "restore", connection_id, chosen, device)


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
    return await choose(address, connection_id, Choice(status))


async def choose(address: str, connection_id: str, choice: Choice) -> Change:
    """[status] Apply the status a user chose, on all of their connections, until its end
    if it has one (then ONLINE again), with its message if it has one."""
    return await _chosen(address, "status", connection_id, choice)


async def _chosen(
    address: str, op: str, connection_id: str, choice: Choice, device: Device | None = None
) -> Change:
    return await _transition(
        address,
        op,
        connection_id,
        choice.status,
        message=choice.message,
        status_until_ms=choice.until_ms,
        device=device or Device(),
    )


# --- [status] Status messages and ends ----------------------------------------------------


async def set_message(address: str, message: MessageChoice) -> Change:
    """Set or clear the user's status message, connected or not; friends see it while the
    user is visible."""
    return await _transition(address, "message", "", None, message=message)


async def apply_ends(address: str) -> Change:
    """End the user's message or chosen status if its time has come (a chosen status ends
    in ONLINE); nothing otherwise, so that any number of processes may ask."""
    return await _transition(address, "ends", "", None)


async def ends_before(shard: int, until_ms: int, limit: int) -> list[tuple[str, int]]:
    """(address, ms) of up to `limit` ends on `shard` due before `until_ms`, the soonest
    first."""
    due = await redis(shard).zrangebyscore(
        keys.ENDS, "-inf", until_ms, start=0, num=limit, withscores=True
    )
    return [(member.partition(" ")[2], int(score)) for member, score in due]


async def choices_of(address: str) -> Choices:
    """What `address` chose: status, message, their ends; one round trip to their shard."""
    async with redis(shards.shard_of(address)).pipeline(transaction=True) as pipe:
        pipe.hget(keys.CHOSEN, address)
        pipe.hget(keys.MESSAGE, address)
        pipe.zscore(keys.ENDS, f"status {address}")
        pipe.zscore(keys.ENDS, f"message {address}")
        chosen, message, status_until, message_until = await pipe.execute()
    return Choices(
        chosen=None if chosen is None else Status(int(chosen)),
        status_until_ms=None if status_until is None else int(status_until),
        message=_message_text(message),
        message_until_ms=None if message_until is None else int(message_until),
        clear_message_on_offline=(message or "").startswith("1:"),
    )


# --- [/status] -----------------------------------------------------------------------------


# --- [location] ---------------------------------------------------------------------------


async def heartbeat(address: str, until_ms: int, device: Device) -> Change:
    """Keep `address`'s heartbeat connection, a `device`, until `until_ms`, making them
    ONLINE unless one of their connections chose a status."""
    connection = keys.HEARTBEAT_CONNECTION
    return await _transition(
        address, "heartbeat", connection, Status.ONLINE, heartbeat_until_ms=until_ms, device=device
    )


async def expire_heartbeat(address: str) -> Change:
    """Forget `address`'s heartbeat connection if its time is over (a heartbeat that came
    since keeps it)."""
    return await _transition(address, "expire", keys.HEARTBEAT_CONNECTION, None)


async def expired_heartbeats(shard: int) -> list[str]:
    """The users of `shard` whose heartbeats stopped: their time is over."""
    return await redis(shard).zrangebyscore(keys.HEARTBEATS, "-inf", now_ms())


async def set_location(address: str, location: Location | None) -> Change:
    """Share `location` (None: none) for `address`, or raise NotConnected."""
    script_keys = [
        keys.CONNECTIONS.format(address),
        keys.LOCATION,
        keys.VISIBLE,
        keys.VERSIONS,
        keys.LAST_SEEN,
        keys.MESSAGE,  # [status] KEYS[6]
        keys.DEVICES,  # [conn] KEYS[7]
        keys.SHARING,  # [privacy] KEYS[8]
    ]
    args = [address, _store_location(location), now_ms()]
    result = await _run(_clients.get()[shards.shard_of(address)].locate, script_keys, args)
    if result[0] == -1:
        raise NotConnected("connect or send a heartbeat before sharing a location")
    return _change(address, result)


# --- [/location] --------------------------------------------------------------------------


async def _visible_values(addresses: list[str]) -> list[str | None]:
    """Each of `addresses`' visible state as stored, None if not visible: one HMGET per
    shard."""

    async def read(shard: int, held: list[str]) -> list[str | None]:
        return await redis(shard).hmget(keys.VISIBLE, held)

    return await shards.by_shard(addresses, read) if addresses else []


async def _visible_presence(
    shard: int, addresses: list[str], with_audience: bool = False
) -> list[tuple[str | None, ...]]:
    """(visible state, location, message, devices, audience rule if `with_audience` else
    None) of each of `addresses`, all on `shard`."""
    # One script: a transition between the reads would pair a status with another moment's
    # location, message, devices or audience.
    hashes = [keys.VISIBLE, keys.LOCATION, keys.MESSAGE, keys.DEVICES]
    if with_audience:
        hashes.append(keys.SHARING)  # [privacy]
    read = await _clients.get()[shard].read_hashes(keys=hashes, args=addresses)
    if not with_audience:
        read.append([None] * len(addresses))
    return list(zip(*read, strict=True))


def _shown(presence: Presence, audience: str | None, viewer: str | None) -> Presence:
    """[privacy] `presence` with its audience rule; as `viewer` is shown it, if given."""
    if audience:
        presence = dataclasses.replace(presence, audience=audience)
    return presence if viewer is None else sharing.shown(presence, viewer)


async def visible_among(addresses: Iterable[str], viewer: str | None = None) -> dict[str, Presence]:
    """The visible users among `addresses`, in one round trip per shard: O(len(addresses)).
    With a `viewer`, as they are shown to that friend of theirs (those hidden from them left
    out); without, as every friend who may see them sees them (for operators, who read no
    audience rules)."""
    wanted = list(addresses)

    async def read(shard: int, held: list[str]) -> list[tuple[str | None, ...]]:
        return await _visible_presence(shard, held, with_audience=viewer is not None)

    values = await shards.by_shard(wanted, read) if wanted else []
    found = (
        _shown(_parse_visible(address, raw, location, message, devices), audience, viewer)
        for address, (raw, location, message, devices, audience) in zip(wanted, values, strict=True)
        if raw is not None
    )
    return {presence.address: presence for presence in found if presence.status != Status.OFFLINE}


async def visible_statuses_among(addresses: Iterable[str]) -> dict[str, Status]:
    """The status of each visible user among `addresses`, without what else they show: one
    HMGET per shard, for lists that show statuses only (operators', which read no audience
    rules)."""
    wanted = list(addresses)
    values = await _visible_values(wanted)
    return {
        address: STATUS_BY_NUMBER[int(raw.partition(":")[0])]
        for address, raw in zip(wanted, values, strict=True)
        if raw is not None
    }


async def visible_addresses_among(addresses: Iterable[str], viewer: str) -> list[str]:
    """The users among `addresses` that `viewer`, a friend of each, sees visible, in their
    order, for answers that list addresses only: one script per shard reading the visible
    states and the audience rules, without parsing each one's state."""
    wanted = list(addresses)

    async def read(shard: int, held: list[str]) -> list[tuple[str | None, ...]]:
        hashes = [keys.VISIBLE, keys.SHARING]  # [privacy]
        read = await _clients.get()[shard].read_hashes(keys=hashes, args=held)
        return list(zip(*read, strict=True))

    values = await shards.by_shard(wanted, read) if wanted else []
    return [
        address
        for address, (raw, audience) in zip(wanted, values, strict=True)
        if raw is not None and (audience is None or sharing.sees(audience, viewer))
    ]


_Stored = tuple[str | None, ...]


async def _stored_presence(shard: int, addresses: list[str]) -> list[_Stored]:
    """(visible state, version, last seen, location, message, devices, audience) of each of
    `addresses`, all on `shard`."""
    # One transaction: a transition between the reads would pair a status with another version.
    async with redis(shard).pipeline(transaction=True) as pipe:
        pipe.hmget(keys.VISIBLE, addresses)
        pipe.hmget(keys.VERSIONS, addresses)
        pipe.hmget(keys.LAST_SEEN, addresses)
        pipe.hmget(keys.LOCATION, addresses)  # [location]
        pipe.hmget(keys.MESSAGE, addresses)  # [status]
        pipe.hmget(keys.DEVICES, addresses)  # [conn]
        pipe.hmget(keys.SHARING, addresses)  # [privacy]
        columns = await pipe.execute()
    return list(zip(*columns, strict=True))


def _stored_to_presence(address: str, stored: _Stored, viewer: str | None) -> Presence:
    raw, version, seen, location, message, devices, audience = stored
    if raw is not None:
        return _shown(_parse_visible(address, raw, location, message, devices), audience, viewer)
    offline = Presence(address, Status.OFFLINE, int(version or 0), int(seen) if seen else None)
    return _shown(offline, audience, viewer)


async def presence_of(addresses: Iterable[str], viewer: str | None = None) -> list[Presence]:
    """Everyone in `addresses` as their friends see them, OFFLINE ones with their last_seen;
    with a `viewer`, as they are shown to that friend of theirs, else each with their
    audience rule."""
    wanted = list(addresses)
    if not wanted:
        return []
    stored = await shards.by_shard(wanted, _stored_presence)
    return [
        _stored_to_presence(address, one, viewer)
        for address, one in zip(wanted, stored, strict=True)
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
