"""Signed requests already used, remembered in Redis so that no process accepts one twice.

A key lives until its request's timestamp leaves the accepted window: after that the
timestamp check refuses the request anyway. The only Redis calls of signing in are here.
"""

import math
import time

from presence_project.cache import sync_redis

_SEEN = "signed-fetch:seen:{}"  # STRING with a TTL: a signed request was used


def first_use(key: str, valid_until_ms: int) -> bool:
    """Record the request named `key`; False if it was used before."""
    ttl_seconds = max(1, math.ceil(valid_until_ms / 1000 - time.time()))
    return bool(sync_redis().set(_SEEN.format(key), 1, nx=True, ex=ttl_seconds))
