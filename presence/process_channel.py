"""The process's one channel-layer channel: every group its connections need, joined once.

The channel joins each followed user's presence group on behalf of every local follower,
and each connected user's own group (friendship events, revocations) on behalf of their
local connections; one task hands each message straight to the sessions it concerns. A
presence change costs one channel-layer message per process instead of one per follower,
as Phoenix's PubSub subscribes once per node, and a connection has no channel, queue or
reader task of its own: a message per follower, each with its own queue, deserialisation
and consumer dispatch, was most of the fan-out's server time, and a channel per connection
a tenth of its memory.
"""

import asyncio
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from presence import fanout
from presence.state import Presence

logger = logging.getLogger(__name__)


class Member(Protocol):
    async def presence_changed(self, presence: Presence) -> None: ...

    def hear(self, message: dict[str, Any]) -> None:
        """A message to the member's own user; it must not wait, as the channel's task runs it."""


class _Groups:
    """One kind of group, by user address: the process's members of each, and the channel's
    memberships to match."""

    def __init__(self, group_of: Callable[[str], str], channel: "_Channel") -> None:
        self._group_of = group_of
        self._channel = channel
        self._members: dict[str, set[Member]] = {}
        # Groups the channel is in, with the loop time each was joined; it changes under the
        # lock only, in the order of needs.
        self._joined: dict[str, float] = {}
        self._membership = asyncio.Lock()

    def members(self, address: str) -> list[Member]:
        return list(self._members.get(address, ()))

    async def add(self, member: Member, addresses: list[str]) -> None:
        for address in addresses:
            self._members.setdefault(address, set()).add(member)
        try:
            await self._reconcile(addresses)
        except BaseException:
            # The member is not in them after all (Redis failed, or it was cancelled).
            self._forget(member, addresses)
            raise

    async def remove(self, member: Member, addresses: Iterable[str]) -> None:
        wanted = list(addresses)
        self._forget(member, wanted)
        await self._reconcile(wanted)

    def _forget(self, member: Member, addresses: list[str]) -> None:
        for address in addresses:
            members = self._members.get(address)
            if members is not None:
                members.discard(member)
                if not members:
                    del self._members[address]

    async def renew(self) -> None:
        async with self._membership:
            if self._joined:
                channel = await self._channel.name()
                await fanout.join(channel, [self._group_of(a) for a in self._joined])

    def joined_within(self, addresses: Iterable[str], seconds: float) -> list[str]:
        since = asyncio.get_running_loop().time() - seconds
        return [a for a in addresses if self._joined.get(a, since) > since]

    def _settled(self, addresses: list[str]) -> bool:
        return all((a in self._members) == (a in self._joined) for a in addresses)

    async def _reconcile(self, addresses: list[str]) -> None:
        """Make the channel's groups match the members now, whatever raced before."""
        if self._settled(addresses):
            return
        async with self._membership:
            channel = await self._channel.name()
            join = [a for a in addresses if a in self._members and a not in self._joined]
            leave = [a for a in addresses if a not in self._members and a in self._joined]
            for address in leave:
                del self._joined[address]
            await fanout.leave(channel, [self._group_of(a) for a in leave])
            await fanout.join(channel, [self._group_of(a) for a in join])
            now = asyncio.get_running_loop().time()
            self._joined.update((address, now) for address in join)


class _Channel:
    def __init__(self) -> None:
        self.followers = _Groups(fanout.presence_group, self)
        self.own = _Groups(fanout.user_group, self)
        self._name: str | None = None
        self._opening = asyncio.Lock()
        # Held so that the loop's weak reference is not the task's only one.
        self._deliverer: asyncio.Task[None] | None = None

    async def name(self) -> str:
        async with self._opening:
            if self._name is None:
                self._name = await fanout.new_channel()
                self._deliverer = asyncio.get_running_loop().create_task(self._deliver(self._name))
        return self._name

    async def _deliver(self, channel: str) -> None:
        failing = False
        while True:
            try:
                message = await fanout.receive(channel)
            except Exception:
                # Redis is unreachable; process housekeeping rebuilds and catches up after.
                if not failing:
                    logger.exception("receiving channel-layer messages failed; retrying")
                failing = True
                await asyncio.sleep(1)
                continue
            failing = False
            try:
                await self._hand_over(message)
            except Exception:
                logger.exception("a channel-layer message could not be delivered: %r", message)

    async def _hand_over(self, message: dict[str, Any]) -> None:
        recipient = fanout.recipient(message)
        if recipient is not None:
            for member in self.own.members(recipient):
                member.hear(message)
            return
        presence = Presence.from_message(message)
        # A follower's stream sends the change before presence_changed returns: sends do
        # not wait on the client (daphne buffers), and no task per follower is made.
        for member in self.followers.members(presence.address):
            try:
                await member.presence_changed(presence)
            except Exception:
                logger.exception("delivering a presence change failed: %r", message)


_per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Channel]" = (
    weakref.WeakKeyDictionary()
)


def _local() -> _Channel:
    loop = asyncio.get_running_loop()
    local = _per_loop.get(loop)
    if local is None:
        local = _per_loop[loop] = _Channel()
    return local


async def follow(member: Member, addresses: list[str]) -> None:
    """Hand `member` the presence changes of `addresses` from now on."""
    await _local().followers.add(member, addresses)


async def unfollow(member: Member, addresses: Iterable[str]) -> None:
    await _local().followers.remove(member, addresses)


async def join_own_group(member: Member, address: str) -> None:
    """Hand `member` the messages to `address`'s own group from now on."""
    await _local().own.add(member, [address])


async def leave_own_group(member: Member, address: str) -> None:
    await _local().own.remove(member, [address])


async def renew() -> None:
    """Join every group again: the core layer expires memberships and loses them with
    Redis's data."""
    local = _local()
    await local.followers.renew()
    await local.own.renew()


def joined_within(addresses: Iterable[str], seconds: float) -> list[str]:
    """Those of `addresses` whose presence group this process joined less than `seconds`
    ago: with the pubsub layer, a subscription may not be in effect yet."""
    return _local().followers.joined_within(addresses, seconds)
