"""Django's Redis cache with one connection pool per process."""

import threading
from typing import Any

from redis import ConnectionPool

from presence_project import redis_clients

_pools: dict[tuple[str, tuple[tuple[str, Any], ...]], ConnectionPool] = {}
_pools_lock = threading.Lock()


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
