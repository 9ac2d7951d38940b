"""This process's connections by the friends they follow, and one subscription for them all.

A channel of the process joins each followed user's presence group on behalf of every
local follower, and one task hands each change straight to their sessions: a change costs
one channel-layer message per process instead of one per follower, as Phoenix's PubSub
subscribes once per node. A message per follower, each with its own queue, deserialisation
and consumer dispatch, was most of the fan-out's server time.
"""

import asyncio
import logging
import weakref
from collections.abc import Iterable
from typing import Protocol

from presence import fanout
from presence.state import Presence

logger = logging.getLogger(__name__)


class Follower(Protocol):
    async def presence_changed(self, presence: Presence) -> None: ...


class _LocalFollowers:
    def __init__(self) -> None:
        self._by_address: dict[str, set[Follower]] = {}
        # Groups the channel is in, with the loop time each was joined; it changes under the
        # lock only, in the order of needs.
        self._joined: dict[str, float] = {}
        self._membership = asyncio.Lock()
        self._channel: str | None = None
        # Held so that the loop's weak reference is not the task's only one.
        self._deliverer: asyncio.Task[None] | None = None

    async def follow(self, follower: Follower, addresses: list[str]) -> None:
        for address in addresses:
            self._by_address.setdefault(address, set()).add(follower)
        try:
            await self._reconcile(addresses)
        except BaseException:
            # The caller does not follow them after all (Redis failed, or it was cancelled).
            self._forget(follower, addresses)
            raise

    async def unfollow(self, follower: Follower, addresses: Iterable[str]) -> None:
        wanted = list(addresses)
        self._forget(follower, wanted)
        await self._reconcile(wanted)

    def _forget(self, follower: Follower, addresses: list[str]) -> None:
        for address in addresses:
            followers = self._by_address.get(address)
            if followers is not None:
                followers.discard(follower)
                if not followers:
                    del self._by_address[address]

    async def renew(self) -> None:
        """Join every group again: the core layer expires memberships and loses them with
        Redis's data."""
        async with self._membership:
            if self._channel is not None:
                await fanout.follow(self._channel, list(self._joined))

    def joined_within(self, addresses: Iterable[str], seconds: float) -> list[str]:
        """Those of `addresses` whose group the channel joined less than `seconds` ago."""
        since = asyncio.get_running_loop().time() - seconds
        return [a for a in addresses if self._joined.get(a, since) > since]

    def _settled(self, addresses: list[str]) -> bool:
        return all((a in self._by_address) == (a in self._joined) for a in addresses)

    async def _reconcile(self, addresses: list[str]) -> None:
        """Make the channel's groups match who is followed now, whatever raced before."""
        if self._settled(addresses):
            return
        async with self._membership:
            channel = await self._ensure_channel()
            join = [a for a in addresses if a in self._by_address and a not in self._joined]
            leave = [a for a in addresses if a not in self._by_address and a in self._joined]
            for address in leave:
                del self._joined[address]
            await fanout.unfollow(channel, leave)
            await fanout.follow(channel, join)
            now = asyncio.get_running_loop().time()
            self._joined.update((address, now) for address in join)

    async def _ensure_channel(self) -> str:
        if self._channel is None:
            self._channel = await fanout.new_channel()
            self._deliverer = asyncio.get_running_loop().create_task(self._deliver(self._channel))
        return self._channel

    async def _deliver(self, channel: str) -> None:
        failing = False
        while True:
            try:
                message = await fanout.receive(channel)
            except Exception:
                # Redis is unreachable; process housekeeping rebuilds and catches up after.
                if not failing:
                    logger.exception("receiving presence changes failed; retrying")
                failing = True
                await asyncio.sleep(1)
                continue
            failing = False
            try:
                presence = Presence.from_message(message)
            except Exception:
                logger.exception("a presence change could not be read: %r", message)
                continue
            # A follower's stream sends the change before presence_changed returns: sends do
            # not wait on the client (daphne buffers), and no task per follower is made.
            for follower in list(self._by_address.get(presence.address, ())):
                try:
                    await follower.presence_changed(presence)
                except Exception:
                    logger.exception("delivering a presence change failed: %r", message)


_per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LocalFollowers]" = (
    weakref.WeakKeyDictionary()
)


def _local() -> _LocalFollowers:
    loop = asyncio.get_running_loop()
    local = _per_loop.get(loop)
    if local is None:
        local = _per_loop[loop] = _LocalFollowers()
    return local


async def follow(follower: Follower, addresses: list[str]) -> None:
    """Hand `follower` the presence changes of `addresses` from now on."""
    await _local().follow(follower, addresses)


async def unfollow(follower: Follower, addresses: Iterable[str]) -> None:
    await _local().unfollow(follower, addresses)


async def renew() -> None:
    await _local().renew()


def joined_within(addresses: Iterable[str], seconds: float) -> list[str]:
    """Those of `addresses` whose presence group this process joined less than `seconds`
    ago: with the pubsub layer, a subscription may not be in effect yet."""
    return _local().joined_within(addresses, seconds)
