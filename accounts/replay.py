"""Signed requests already used, remembered in Redis so that no process accepts one twice.

A key lives until its request's timestamp leaves the accepted window: after that the
timestamp check refuses the request anyway. The only Redis calls of signing in are here.
"""

import functools
import math
import time

import redis

from presence_project import redis_clients

_SEEN = "signed-fetch:seen:{}"  # STRING with a TTL: a signed request was used


@functools.cache
def _redis() -> redis.Redis:
    # Synchronous and thread-safe: signing in runs in a worker thread, beside the database.
    return redis_clients.client(asynchronous=False, socket_timeout=5, socket_connect_timeout=3)


def first_use(key: str, valid_until_ms: int) -> bool:
    """Record the request named `key`; False if it was used before."""
    ttl_seconds = max(1, math.ceil(valid_until_ms / 1000 - time.time()))
    return bool(_redis().set(_SEEN.format(key), 1, nx=True, ex=ttl_seconds))
