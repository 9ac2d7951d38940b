"""Every use of the channel layer: which groups exist and who joins them.

Each user has two groups, both joined by the one channel of a process (see
presence.delivery.process_channel): `presence.<address>`, by every process holding connections of
their friends, to hear their presence changes, and `user.<address>`, by every process
holding connections of the user, to hear their friendship events and revocations.
Calls are bounded per event loop, so a burst (a subscriber with a thousand friends, a flood
of status changes) waits for a Redis connection instead of failing for want of one.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from redis.exceptions import ConnectionError as RedisConnectionError

from presence import observability
from presence.conf import presence_settings
from presence.loops import PerLoop

T = TypeVar("T")

_RECIPIENT = "recipient"

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


async def _each(calls: Iterable[Callable[[], Awaitable[Any]]]) -> None:
    await asyncio.gather(*(_bounded(call) for call in calls))


async def publish_presence(address: str, message: dict[str, Any]) -> None:
    """Publish a presence change, coalescing a user's flapping within the configured window."""
    await _coalescers.get().publish(address, message)


async def _send_presence(address: str, message: dict[str, Any]) -> None:
    await _bounded(lambda: get_channel_layer().group_send(presence_group(address), message))
    observability.published()


class _Coalescer:
    """At most one publication per user per window; the latest change always goes out.

    A change inside the window waits for its end, replacing any change already waiting, so
    friends see the final status promptly and not every toggle.
    """

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        self._last_sent: dict[str, float] = {}
        self._waiting: dict[str, dict[str, Any]] = {}

    async def publish(self, address: str, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        if address in self._waiting:
            self._waiting[address] = message
            return
        since = loop.time() - self._last_sent.get(address, float("-inf"))
        if since >= self._window:
            self._mark_sent(address, loop.time())
            await _send_presence(address, message)
            return
        self._waiting[address] = message
        loop.call_later(self._window - since, lambda: loop.create_task(self._flush(address)))

    async def _flush(self, address: str) -> None:
        message = self._waiting.pop(address)
        self._mark_sent(address, asyncio.get_running_loop().time())
        await _send_presence(address, message)

    def _mark_sent(self, address: str, now: float) -> None:
        self._last_sent[address] = now
        if len(self._last_sent) > 10_000:
            # Forget users whose window is long over, so the map stays small.
            self._last_sent = {a: t for a, t in self._last_sent.items() if now - t < self._window}


_coalescers = PerLoop(lambda: _Coalescer(presence_settings().status_coalesce_ms / 1000))


async def publish_to_user(address: str, message: dict[str, Any]) -> None:
    """Send `message` to `address`'s own group, naming them in it: the group is joined by a
    process's channel, which hands the message to that user's connections only."""
    to_user = {**message, _RECIPIENT: address}
    await _bounded(lambda: get_channel_layer().group_send(user_group(address), to_user))


def recipient(message: dict[str, Any]) -> str | None:
    """The user a message to a user's own group is for; None for a presence change."""
    return message.get(_RECIPIENT)


async def new_channel() -> str:
    """A channel of this process, like a consumer's (the core layer reads every channel of a
    process through one Redis list, so another prefix would never be read)."""
    return await get_channel_layer().new_channel()


async def receive(channel_name: str) -> dict[str, Any]:
    return await get_channel_layer().receive(channel_name)


async def join(channel_name: str, groups: Iterable[str]) -> None:
    layer = get_channel_layer()
    await _each(partial(layer.group_add, group, channel_name) for group in groups)


async def leave(channel_name: str, groups: Iterable[str]) -> None:
    layer = get_channel_layer()
    await _each(partial(layer.group_discard, group, channel_name) for group in groups)
