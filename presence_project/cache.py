"""Redis for synchronous code: Django's cache with one connection pool per process, and the
client of the code that runs in worker threads beside the database."""

import functools
import threading
from typing import Any

import redis
from redis import ConnectionPool

from presence_project import redis_clients

_pools: dict[tuple[str, tuple[tuple[str, Any], ...]], ConnectionPool] = {}
_pools_lock = threading.Lock()


# Without it: Django's cache opens a new Redis connection for every HTTP request's throttle.
class ProcessConnectionPool(ConnectionPool):
    """A pool made once per set of options, then reused; to REDIS_URL's server or the
    Sentinel-managed primary (redis_clients), whatever LOCATION says.

    Django keeps a cache object per async context and each builds its own pool, so under
    ASGI every HTTP request (a context of its own) opened a new Redis connection for DRF's
    throttle: a TCP handshake per request, and a socket in TIME_WAIT after it.
    """

    @classmethod
    def from_url(cls, url: str, **options: Any) -> ConnectionPool:
        key = (url, tuple(sorted(options.items())))
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = redis_clients.pool(asynchronous=False, **options)
            return pool


@functools.cache
def sync_redis() -> redis.Redis:
    """Thread-safe: signing in's used signatures and the friendship-action limits, whose
    calls run in worker threads."""
    return redis_clients.client(asynchronous=False, socket_timeout=5, socket_connect_timeout=3)
