"""The channel layer, as the service uses it: two groups per user, bounded calls.

`presence.<address>` is joined by every process holding a follower of the user, to hear
their presence changes; `user.<address>` by every process holding a connection of the user,
to hear the events for them (presence.events). A process joins with its one channel
(presence.delivery.process_channel). Calls are bounded per event loop, so a burst (a
subscriber with a thousand friends, a flood of status changes) waits for a Redis connection
instead of failing for want of one.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from redis.exceptions import ConnectionError as RedisConnectionError

from presence import observability
from presence.conf import presence_settings
from presence_project.loops import PerLoop

T = TypeVar("T")

_limits = PerLoop(lambda: asyncio.Semaphore(presence_settings().layer_concurrency))


def presence_group(address: str) -> str:
    return f"presence.{address}"


def user_group(address: str) -> str:
    return f"user.{address}"


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
    process through one Redis list, so another prefix would never be read)."""
    return await get_channel_layer().new_channel()


async def receive(channel_name: str) -> dict[str, Any]:
    return await get_channel_layer().receive(channel_name)


async def join(channel_name: str, groups: Iterable[str]) -> None:
    layer = get_channel_layer()
    await asyncio.gather(*(_bounded(partial(layer.group_add, g, channel_name)) for g in groups))


async def leave(channel_name: str, groups: Iterable[str]) -> None:
    layer = get_channel_layer()
    await asyncio.gather(*(_bounded(partial(layer.group_discard, g, channel_name)) for g in groups))
