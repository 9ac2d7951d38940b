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
from presence.events import STATUS_BY_NUMBER, Presence, Status
from presence.store import keys, shards
from presence_project import redis_clients
from presence_project.loops import PerLoop

_TRANSITION = """
local address, op, connection, wanted, now, limit =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local held = address .. ' ' .. connection
if op == 'reap' then
  -- The connection's process beats again: it is alive after all, and keeps it.
  if redis.call('EXISTS', KEYS[9]) == 1 then op = 'keep' else op = 'disconnect' end
end
-- [status] The status message (KEYS[10]) and the ends of a message or a chosen status
-- (KEYS[11]). ARGV[7] '1': set the message to ARGV[8] ('' clears it), ending at ARGV[9] ('':
-- never), cleared when the last connection closes if ARGV[10] is '1'; ARGV[11]: when the
-- status chosen now ends. 'message' and 'expire' change no connection: they go on as 'keep'.
local message_end, status_end = 'message ' .. address, 'status ' .. address
local function message_text()
  return string.match(redis.call('HGET', KEYS[10], address) or '0:', '^%d:(.*)$')
end
local message_before = message_text()
local function clear_message()
  redis.call('HDEL', KEYS[10], address)
  redis.call('ZREM', KEYS[11], message_end)
end
local function set_end(member, at)
  if at == '' then
    redis.call('ZREM', KEYS[11], member)
  else
    redis.call('ZADD', KEYS[11], at, member)
  end
end
if op == 'expire' then
  local ends_at = redis.call('ZSCORE', KEYS[11], status_end)
  if ends_at and tonumber(ends_at) <= tonumber(now) then
    redis.call('ZREM', KEYS[11], status_end)
    -- A chosen AWAY or OFFLINE ends in ONLINE while the user is connected.
    if redis.call('HEXISTS', KEYS[2], address) == 1 then
      redis.call('HSET', KEYS[2], address, '0')
    end
  end
  ends_at = redis.call('ZSCORE', KEYS[11], message_end)
  if ends_at and tonumber(ends_at) <= tonumber(now) then clear_message() end
  op = 'keep'
end
-- A restore fills in only what no other connection of the user restored already.
if ARGV[7] == '1' and (op ~= 'restore' or redis.call('HEXISTS', KEYS[10], address) == 0) then
  if ARGV[8] == '' then
    clear_message()
  else
    redis.call('HSET', KEYS[10], address, ARGV[10] .. ':' .. ARGV[8])
    set_end(message_end, ARGV[9])
  end
end
if op == 'status'
    or (op == 'restore' and wanted ~= '' and redis.call('HEXISTS', KEYS[2], address) == 0) then
  set_end(status_end, ARGV[11])
end
if op == 'message' then op = 'keep' end
-- [/status]
if op == 'disconnect' then
  redis.call('SREM', KEYS[1], connection)
  redis.call('SREM', KEYS[7], held)
  if redis.call('SCARD', KEYS[1]) == 0 then redis.call('HDEL', KEYS[2], address) end
elseif op ~= 'keep' then
  if op == 'connect' and redis.call('SISMEMBER', KEYS[1], connection) == 0
      and redis.call('SCARD', KEYS[1]) >= limit then
    return {-1}
  end
  redis.call('SADD', KEYS[1], connection)
  redis.call('SADD', KEYS[7], held)
  if op == 'status' then redis.call('HSET', KEYS[2], address, wanted) end
  if op == 'restore' and wanted ~= '' then redis.call('HSETNX', KEYS[2], address, wanted) end
end
-- [status] The last connection closed: a chosen status's end goes with the choice, and the
-- message too if the user asked so.
if op == 'disconnect' and redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[11], status_end)
  if string.sub(redis.call('HGET', KEYS[10], address) or '', 1, 1) == '1' then
    clear_message()
  end
end
-- [/status]
local new = '1'
local chosen = redis.call('HGET', KEYS[2], address)
if chosen and chosen ~= '1' and redis.call('SCARD', KEYS[1]) > 0 then new = chosen end
local current = redis.call('HGET', KEYS[3], address)
local old = '1'
if current then old = string.match(current, '^(%d+)') end
-- [status] Only a visible user shows a message; a new one is a visible change.
local message = ''
if new ~= '1' then message = message_text() end
local message_changed = old ~= '1' and new ~= '1' and message ~= message_before
-- [/status]
if old == new and not message_changed then
  return {0, new, redis.call('HGET', KEYS[5], address) or '0',
          redis.call('HGET', KEYS[6], address) or '', message}
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
return {1, new, version, now, message}
"""


class TooManyConnections(Exception):
    """The user already has as many connections as allowed."""


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
        """ARGV[7] to ARGV[10] of the transition."""
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


# ARGV[7] to ARGV[10] of a transition that sets no message.
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


@dataclass
class _Client:
    redis: Redis
    transition: AsyncScript


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
    return _Client(redis, redis.register_script(_TRANSITION))


_clients = PerLoop(lambda: [_new_client(shard) for shard in range(shards.count())])


def redis(shard: int) -> Redis:
    """This event loop's client of `shard`'s presence keys (presence.store.processes shares
    it)."""
    return _clients.get()[shard].redis


def now_ms() -> int:
    return int(time.time() * 1000)


def _message_text(raw: str | None) -> str:
    """[status] The text of a stored message ("<flag>:<text>"), "" for none."""
    return "" if raw is None else raw.partition(":")[2]


def _parse_visible(address: str, raw: str, message: str | None = None) -> Presence:
    status, version, last_seen = raw.split(":")
    return Presence(
        address,
        STATUS_BY_NUMBER[int(status)],
        int(version),
        int(last_seen),
        message=_message_text(message),
    )


async def _transition(
    address: str,
    op: str,
    connection_id: str,
    wanted: Status | None,
    limit: int = 0,
    shard: int | None = None,
    message: MessageChoice | None = None,
    status_until_ms: int | None = None,
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
        keys.MESSAGE,
        keys.ENDS,
    ]
    args = [address, op, connection_id, "" if wanted is None else int(wanted), now_ms(), limit]
    # [status]
    args += message.args() if message is not None else _NO_MESSAGE
    args.append("" if status_until_ms is None else status_until_ms)
    try:
        on = shards.shard_of(address) if shard is None else shard
        result = await _clients.get()[on].transition(keys=script_keys, args=args)
    except RedisError:
        observability.redis_failed("presence")
        raise
    if result[0] == -1:
        raise TooManyConnections(f"at most {limit} connections per user")
    changed, status, version, last_seen = result[:4]
    presence = Presence(
        address,
        Status(int(status)),
        int(version),
        int(last_seen) if last_seen else None,
        message=result[4],
    )
    return Change(presence, bool(changed))


async def connect(address: str, connection_id: str, max_connections: int) -> Change:
    """Count a connection of `address`, or raise TooManyConnections; it shows nobody anything."""
    return await _transition(address, "connect", connection_id, None, max_connections)


async def restore(address: str, connection_id: str, chosen: Choice) -> Change:
    """Put back a live connection after Redis lost it, with the status last chosen on it
    (and its end) and the message last set on it, each unless another connection of the user
    already restored one."""
    return await _chosen(address, "restore", connection_id, chosen)


async def choose_unless_chosen(address: str, connection_id: str, status: Status) -> Change:
    """Make `status` the user's choice unless one of their connections made one: for clients
    that cannot choose. The restore transition is exactly that (HSETNX of the choice)."""
    return await _transition(address, "restore", connection_id, status)


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


async def _chosen(address: str, op: str, connection_id: str, choice: Choice) -> Change:
    return await _transition(
        address,
        op,
        connection_id,
        choice.status,
        message=choice.message,
        status_until_ms=choice.until_ms,
    )


# --- [status] Status messages and ends ----------------------------------------------------


async def set_message(address: str, message: MessageChoice) -> Change:
    """Set or clear the user's status message, connected or not; friends see it while the
    user is visible."""
    return await _transition(address, "message", "", None, message=message)


async def apply_ends(address: str) -> Change:
    """End the user's message or chosen status if its time has come (a chosen status ends
    in ONLINE); nothing otherwise, so that any number of processes may ask."""
    return await _transition(address, "expire", "", None)


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


async def _visible_values(addresses: list[str]) -> list[str | None]:
    """Each of `addresses`' visible state as stored, None if not visible: one HMGET per
    shard."""

    async def read(shard: int, held: list[str]) -> list[str | None]:
        return await redis(shard).hmget(keys.VISIBLE, held)

    return await shards.by_shard(addresses, read) if addresses else []


async def _visible_states(shard: int, addresses: list[str]) -> list[tuple[str | None, ...]]:
    """(visible state, message) of each of `addresses`, all on `shard`."""
    # One transaction: a transition between the reads would pair a state with another message.
    async with redis(shard).pipeline(transaction=True) as pipe:
        pipe.hmget(keys.VISIBLE, addresses)
        pipe.hmget(keys.MESSAGE, addresses)  # [status]
        columns = await pipe.execute()
    return list(zip(*columns, strict=True))


async def visible_among(addresses: Iterable[str]) -> dict[str, Presence]:
    """The visible users among `addresses`, in one round trip per shard: O(len(addresses))."""
    wanted = list(addresses)
    if not wanted:
        return {}
    states = await shards.by_shard(wanted, _visible_states)
    return {
        address: _parse_visible(address, raw, message)
        for address, (raw, message) in zip(wanted, states, strict=True)
        if raw is not None
    }


async def visible_statuses_among(addresses: Iterable[str]) -> dict[str, Status]:
    """The status of each visible user among `addresses`, without what else they show: one
    HMGET per shard, for lists that show statuses only."""
    wanted = list(addresses)
    values = await _visible_values(wanted)
    return {
        address: STATUS_BY_NUMBER[int(raw.partition(":")[0])]
        for address, raw in zip(wanted, values, strict=True)
        if raw is not None
    }


async def visible_addresses_among(addresses: Iterable[str]) -> list[str]:
    """The visible users among `addresses`, in their order: visible_among without parsing
    each one's state, for answers that list addresses only."""
    wanted = list(addresses)
    values = await _visible_values(wanted)
    return [address for address, raw in zip(wanted, values, strict=True) if raw is not None]


_Stored = tuple[str | None, ...]


async def _stored_presence(shard: int, addresses: list[str]) -> list[_Stored]:
    """(visible state, version, last seen, message) of each of `addresses`, all on `shard`."""
    # One transaction: a transition between the reads would pair a status with another version.
    async with redis(shard).pipeline(transaction=True) as pipe:
        pipe.hmget(keys.VISIBLE, addresses)
        pipe.hmget(keys.VERSIONS, addresses)
        pipe.hmget(keys.LAST_SEEN, addresses)
        pipe.hmget(keys.MESSAGE, addresses)  # [status]
        columns = await pipe.execute()
    return list(zip(*columns, strict=True))


async def presence_of(addresses: Iterable[str]) -> list[Presence]:
    """Everyone in `addresses` as their friends see them, OFFLINE ones with their last_seen."""
    wanted = list(addresses)
    if not wanted:
        return []
    stored = await shards.by_shard(wanted, _stored_presence)
    return [
        _parse_visible(address, raw, message)
        if raw is not None
        else Presence(address, Status.OFFLINE, int(version or 0), int(seen) if seen else None)
        for address, (raw, version, seen, message) in zip(wanted, stored, strict=True)
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


async def connections_of(address: str) -> list[str]:
    """The ids of `address`'s open connections, on every process."""
    return sorted(await redis(shards.shard_of(address)).smembers(keys.CONNECTIONS.format(address)))
