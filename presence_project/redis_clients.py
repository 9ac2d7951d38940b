"""The one place that makes Redis clients, from REDIS_URL or through Sentinel, per shard.

Shards are numbered from 0 in the order of REDIS_SHARDS (or of REDIS_SENTINEL_MASTER's
names); without a list, shard 0 is REDIS_URL's server and the only one. What is not sharded
(rate limits, throttling, the cache, used signatures) lives on shard 0, every pool's
default. With REDIS_SENTINELS set, every pool asks the sentinels for the current primary of
its shard's master before each new connection, so after a failover the next connection
goes to the promoted server by itself; REDIS_URL then gives only the credentials and the
database number. The channel layer builds its own pools from the same settings
(settings.CHANNEL_LAYERS), as channels-redis does not take a client.
"""

from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelConnection
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

AnyPool = redis.ConnectionPool | redis.asyncio.ConnectionPool
AnyClient = redis.Redis | redis.asyncio.Redis


# Without it: redis-py's asyncio connections pack every command in Python, argument by argument.
class _HiredisPacking:
    """redis-py's asyncio connection packs commands in Python, whatever parser it has;
    hiredis packs them in C, which the online-friends query's HMGET of every friend needs
    (BENCHMARKS.md, c8d0649)."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: object) -> list[bytes]:
        return self._serializer.pack(*args)


class _PackedConnection(_HiredisPacking, redis.asyncio.Connection):
    pass


class _PackedSentinelConnection(_HiredisPacking, AsyncSentinelConnection):
    pass


# Without it: with Sentinel, a caller that finds every connection busy fails instead of waiting.
class _BlockingSentinelPool(AsyncSentinelPool, redis.asyncio.BlockingConnectionPool):
    """Sentinel's pool, waiting for a free connection like BlockingConnectionPool."""


def shard_count() -> int:
    """How many Redis shards there are: one unless REDIS_SHARDS or REDIS_SENTINEL_MASTER
    lists several."""
    return len(settings.REDIS_SENTINEL_MASTERS or settings.REDIS_SHARDS)


def description(shard: int = 0) -> str:
    """Which Redis server `shard`'s clients talk to, without credentials, for log lines."""
    which = f" (shard {shard})" if shard_count() > 1 else ""
    if not settings.REDIS_SENTINELS:
        target = urlsplit(settings.REDIS_SHARDS[shard])
        where = f"{target.hostname}:{target.port or 6379}" if target.hostname else "a socket"
        return f"Redis at {where}{which}"
    sentinels = ",".join(f"{host}:{port}" for host, port in settings.REDIS_SENTINELS)
    master = settings.REDIS_SENTINEL_MASTERS[shard]
    return f"the Sentinel primary {master!r}{which} (sentinels {sentinels})"


def _sentinel_kwargs(options: dict[str, Any], asynchronous: bool) -> dict[str, Any]:
    # The sentinels get the same socket timeouts as the data connections, and their own
    # password (not the primary's).
    kwargs = {key: value for key, value in options.items() if key.startswith("socket_")}
    # One try per sentinel: discovery asks the next sentinel anyway, and retrying a dead
    # one with backoff held every call up for seconds when no sentinel answered.
    kwargs["retry"] = (AsyncRetry if asynchronous else Retry)(NoBackoff(), 0)
    if settings.REDIS_SENTINEL_PASSWORD:
        kwargs["password"] = settings.REDIS_SENTINEL_PASSWORD
    return kwargs


def pool(
    *,
    asynchronous: bool,
    max_connections: int | None = None,
    wait: float | None = None,
    shard: int = 0,
    **options: Any,
) -> AnyPool:
    """A connection pool to `shard`'s primary. `wait`: seconds a caller waits for a free
    connection when all `max_connections` are busy (asyncio only); None fails at once."""
    if asynchronous and wait is not None:
        options["timeout"] = wait
    if max_connections is not None:
        options["max_connections"] = max_connections
    if settings.REDIS_SENTINELS:
        options = {**settings.REDIS_SENTINEL_CONNECTION, **options}
        master = settings.REDIS_SENTINEL_MASTERS[shard]
        if not asynchronous:
            sentinel = Sentinel(
                settings.REDIS_SENTINELS, sentinel_kwargs=_sentinel_kwargs(options, asynchronous)
            )
            return SentinelConnectionPool(master, sentinel, **options)
        pool_class = _BlockingSentinelPool if wait is not None else AsyncSentinelPool
        sentinels = AsyncSentinel(
            settings.REDIS_SENTINELS, sentinel_kwargs=_sentinel_kwargs(options, asynchronous)
        )
        return pool_class(
            master,
            sentinels,
            connection_class=_PackedSentinelConnection,
            **options,
        )
    url = settings.REDIS_SHARDS[shard]
    if not asynchronous:
        return redis.ConnectionPool.from_url(url, **options)
    plain_class = (
        redis.asyncio.BlockingConnectionPool if wait is not None else redis.asyncio.ConnectionPool
    )
    # The URL's scheme picks the connection class for rediss:// and unix://.
    return plain_class.from_url(url, connection_class=_PackedConnection, **options)


def client(*, asynchronous: bool, **options: Any) -> AnyClient:
    """A client of the primary (redis.asyncio's or redis's), with `pool`'s options."""
    client_class = redis.asyncio.Redis if asynchronous else redis.Redis
    return client_class.from_pool(pool(asynchronous=asynchronous, **options))
