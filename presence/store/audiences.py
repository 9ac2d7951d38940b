"""[privacy] The mirror of users' sharing on their shard: the audience rules
(presence.sharing) that every read and publication of a presence carries.

Only users who share with fewer than all friends have a rule. A shard's mirror is marked
loaded once filled from the database, so that a shard that lost it (or never had it) is
filled again before anyone is shown what it holds (presence.services.restore_sharing).
"""

from presence.events import Presence
from presence.store import keys, shards
from presence.store.online import _change, redis

_REPLACE = """
local address, expected, audience = ARGV[1], ARGV[2], ARGV[3]
if (redis.call('HGET', KEYS[1], address) or '') ~= expected then return false end
if audience == '' then
  redis.call('HDEL', KEYS[1], address)
else
  redis.call('HSET', KEYS[1], address, audience)
end
-- Who sees the user changed: a visible change, newer than any a follower showed.
local version = redis.call('HINCRBY', KEYS[3], address, 1)
local visible = redis.call('HGET', KEYS[2], address)
if visible then
  local status, seen = string.match(visible, '^(%d+):%d+:(%d+)$')
  redis.call('HSET', KEYS[2], address, status .. ':' .. version .. ':' .. seen)
  -- The transition's shape: the presence keeps its location, message and devices.
  local message = string.match(redis.call('HGET', KEYS[6], address) or '0:', '^%d:(.*)$')
  return {1, status, version, seen, redis.call('HGET', KEYS[5], address) or '', message,
          redis.call('HGET', KEYS[7], address) or '', audience}
end
return {1, '1', version, redis.call('HGET', KEYS[4], address) or '', '', '', '', audience}
"""


async def current(address: str) -> tuple[str, bool, int | None]:
    """`address`'s (audience rule, "" for every friend; whether visible; last_seen)."""
    async with redis(shards.shard_of(address)).pipeline(transaction=True) as pipe:
        pipe.hget(keys.SHARING, address)
        pipe.hexists(keys.VISIBLE, address)
        pipe.hget(keys.LAST_SEEN, address)
        audience, visible, seen = await pipe.execute()
    return audience or "", bool(visible), int(seen) if seen else None


async def replace(address: str, expected: str, audience: str) -> Presence | None:
    """Make `audience` `address`'s rule if it is still `expected`, bumping their version:
    the user as friends who see them now see them, with the rule, or None if another
    change came first."""
    client = redis(shards.shard_of(address))
    script = client.register_script(_REPLACE)
    result = await script(
        keys=[
            keys.SHARING,
            keys.VISIBLE,
            keys.VERSIONS,
            keys.LAST_SEEN,
            keys.LOCATION,
            keys.MESSAGE,  # KEYS[6]
            keys.DEVICES,  # KEYS[7]
        ],
        args=[address, expected, audience],
    )
    return None if result is None else _change(address, result).presence


async def loaded(shard: int) -> bool:
    return bool(await redis(shard).exists(keys.SHARING_LOADED))


async def load(shard: int, audiences: dict[str, str]) -> None:
    """Fill `shard`'s mirror with `audiences` (rules already there are newer, and stay),
    and mark it loaded."""
    async with redis(shard).pipeline(transaction=True) as pipe:
        for address, audience in audiences.items():
            pipe.hsetnx(keys.SHARING, address, audience)
        pipe.set(keys.SHARING_LOADED, "1")
        await pipe.execute()
