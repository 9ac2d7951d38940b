"""The channel layer, as the service uses it: two groups per user, bounded calls.

`presence.<address>` is joined by every process holding a follower of the user, to hear
their presence changes; `user.<address>` by every process holding a connection of the user,
to hear the events for them (presence.events). With several Redis hosts, both groups of a
user are placed on one host, the shard of the user's presence keys too
(presence.store.shards), so that one shard's outage stops its users alone. A process joins
with its one channel (presence.delivery.process_channel). Calls are bounded per event
loop, so a burst (a subscriber with a thousand friends, a flood of status changes) waits for
a Redis connection instead of failing for want of one.
"""

import asyncio
import binascii
import functools
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError

from presence import observability
from presence.conf import presence_settings
from presence_project.loops import PerLoop

T = TypeVar("T")

_limits = PerLoop(lambda: asyncio.Semaphore(presence_settings().layer_concurrency))


_RING = 4096


def ring_position(value: str, ring_size: int) -> int:
    """Which of `ring_size` hosts channels-redis places `value` on: a CRC-32 of it, masked
    to 12 bits, over a ring of as many equal arcs as hosts. channels_redis.utils.
    _consistent_hash is private: the agreement is a test (tests/test_shards.py)."""
    if ring_size == 1:
        return 0
    return int((binascii.crc32(value.encode()) & (_RING - 1)) / (_RING / ring_size))


def placement_name(group: str) -> str:
    """The name by which channels-redis places `group` on one of its hosts: the pubsub
    layer hashes the group's channel name, the core layer the group's own name."""
    config = settings.CHANNEL_LAYERS["default"]
    if config["BACKEND"].endswith(".RedisPubSubChannelLayer"):
        return f"{config['CONFIG']['prefix']}__group__{group}"
    return group


def _hosts() -> int:
    return len(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"])


def host_of(group: str) -> int:
    """The number of the host (the Redis shard) channels-redis places `group` on."""
    hosts = _hosts()
    return ring_position(placement_name(group), hosts) if hosts > 1 else 0


def presence_group(address: str) -> str:
    return f"presence.{address}"


@functools.lru_cache(maxsize=100_000)
def user_group(address: str) -> str:
    """`user.<address>`, with a number after it if that puts it on the host of the user's
    presence group: the first of `user.<address>.1`, `.2`, ... that lands there."""
    home = host_of(presence_group(address))
    group, number = f"user.{address}", 0
    while host_of(group) != home:
        number += 1
        group = f"user.{address}.{number}"
    return group


async def _bounded(call: Callable[[], Awaitable[T]]) -> T:
    """Run a layer call within the process's bound, retrying once on a dead connection.

    After Redis restarts, the layer's pool still holds connections to the old server: the
    first call on each fails, and the retry takes a fresh one.
    """
    async with _limits.get():
        try:
            return await call()
        except RedisConnectionError:
            observability.redis_failed("channel_layer")
            result = await call()
            observability.redis_recovered("channel_layer")
            return result


async def group_send(group: str, message: dict[str, Any]) -> None:
    await _bounded(lambda: get_channel_layer().group_send(group, message))


async def new_channel() -> str:
    """A channel of this process, like a consumer's (the core layer reads every channel of a
    process through one Redis list, so another prefix would never be read).

    With several hosts, one that does not answer is passed over: the pubsub layer
    subscribes a new channel on the host its random name falls on, and the process channel
    hears only through groups, so any host serves. The core layer reads a process's
    channels on one host, whichever name it gets.
    """
    layer = get_channel_layer()
    for _ in range(3 * _hosts() - 1 if _hosts() > 1 else 0):
        try:
            return await layer.new_channel()
        except RedisConnectionError:
            observability.redis_failed("channel_layer")
    return await layer.new_channel()


async def receive(channel_name: str) -> dict[str, Any]:
    return await get_channel_layer().receive(channel_name)


async def join(channel_name: str, groups: Iterable[str]) -> None:
    layer = get_channel_layer()
    await asyncio.gather(*(_bounded(partial(layer.group_add, g, channel_name)) for g in groups))


async def leave(channel_name: str, groups: Iterable[str]) -> None:
    layer = get_channel_layer()
    await asyncio.gather(*(_bounded(partial(layer.group_discard, g, channel_name)) for g in groups))
