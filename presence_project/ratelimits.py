"""The one rate-limit mechanism: fixed windows counted in Redis, shared by every process.

An event counts against all of its limits or against none (a user's and a pair's budget,
say): one script checks every counter and increments them only when each is within its
limit, in one round trip, so a refused event spends nothing.
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from redis.commands.core import AsyncScript, Script

from presence_project import redis_clients
from presence_project.cache import sync_redis
from presence_project.loops import PerLoop

_COUNTER = "rate:{}:{}"  # STRING with a TTL: events of one key counted in one window

# KEYS: the counters; ARGV: each one's limit, then each one's lifetime in seconds.
_TAKE = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i]) then
    return 0
  end
end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    redis.call('EXPIRE', key, ARGV[#KEYS + i])
  end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `limit` events of `key` per window of `window_seconds`."""

    key: str
    limit: int
    window_seconds: int


def _arguments(limits: Sequence[Limit]) -> tuple[list[str], list[int]]:
    now = int(time.time())
    counters = [_COUNTER.format(limit.key, now // limit.window_seconds) for limit in limits]
    # A counter outlives its window, so that a clock a little behind still finds it.
    lifetimes = [limit.window_seconds * 2 for limit in limits]
    return counters, [*(limit.limit for limit in limits), *lifetimes]


@cache
def _sync_take() -> Script:
    return sync_redis().register_script(_TAKE)


def within_limits(limits: Sequence[Limit]) -> bool:
    """Count one event against every limit, or, when any is spent, against none: False."""
    counters, args = _arguments(limits)
    return bool(_sync_take()(keys=counters, args=args))


def _async_take() -> AsyncScript:
    # Its own small pool: a burst waits up to 5 s for a free connection.
    client = redis_clients.client(
        asynchronous=True, max_connections=8, wait=5, socket_timeout=5, socket_connect_timeout=3
    )
    return client.register_script(_TAKE)


_async_takes = PerLoop(_async_take)


async def within_limits_async(limits: Sequence[Limit]) -> bool:
    """within_limits for the event loop."""
    counters, args = _arguments(limits)
    return bool(await _async_takes.get()(keys=counters, args=args))


def seconds_until_reset(limits: Sequence[Limit]) -> int:
    """Whole seconds until every one of these limits starts a new window."""
    now = time.time()
    return max(math.ceil(limit.window_seconds - now % limit.window_seconds) for limit in limits)
