"""The process's one channel-layer channel: every group its connections need, joined once.

The channel joins each followed user's presence group on behalf of every local follower,
and each connected user's own group on behalf of their local connections; one task decodes
each message (presence.events) and hands it straight to the sessions it concerns. A
presence change costs one channel-layer message per process instead of one per follower,
as Phoenix's PubSub subscribes once per node, and a connection has no channel, queue or
reader task of its own.
"""

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from presence import layer, observability
from presence.events import Presence, PresenceChanged, UserEvent, decode
from presence.store import online
from presence_project.loops import PerLoop

logger = logging.getLogger(__name__)

_READ_AGAIN_AFTER_SECONDS = 0.5


class Member(Protocol):
    async def presence_changed(self, presence: Presence) -> None: ...

    def hear(self, event: UserEvent) -> None:
        """An event for the member's own user; it must not wait, as the channel's task runs it."""


class _Groups:
    """One kind of group, by user address: the process's members of each, and the channel's
    memberships to match."""

    def __init__(
        self,
        group_of: Callable[[str], str],
        channel: "_Channel",
        on_joined: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._group_of = group_of
        self._channel = channel
        self._on_joined = on_joined
        self._members: dict[str, set[Member]] = {}
        # Addresses whose group the channel is in; it changes under the lock only, in the
        # order of needs.
        self._joined: set[str] = set()
        self._membership = asyncio.Lock()

    def members(self, address: str) -> list[Member]:
        return list(self._members.get(address, ()))

    async def add(self, member: Member, addresses: list[str]) -> None:
        for address in addresses:
            self._members.setdefault(address, set()).add(member)
        try:
            await self.reconcile(addresses)
        except BaseException:
            # The member is not in them after all (Redis failed, or it was cancelled).
            self.forget(member, addresses)
            raise

    async def remove(self, member: Member, addresses: Iterable[str]) -> None:
        wanted = list(addresses)
        self.forget(member, wanted)
        await self.reconcile(wanted)

    def forget(self, member: Member, addresses: list[str]) -> None:
        """Stop handing `member` the messages of `addresses`; reconcile() leaves the groups."""
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
                await layer.join(channel, [self._group_of(a) for a in self._joined])

    def _settled(self, addresses: list[str]) -> bool:
        return all((a in self._members) == (a in self._joined) for a in addresses)

    async def reconcile(self, addresses: list[str]) -> None:
        """Make the channel's groups match the members now, whatever raced before."""
        if self._settled(addresses):
            return
        async with self._membership:
            channel = await self._channel.name()
            join = [a for a in addresses if a in self._members and a not in self._joined]
            leave = [a for a in addresses if a not in self._members and a in self._joined]
            self._joined.difference_update(leave)
            await layer.leave(channel, [self._group_of(a) for a in leave])
            await layer.join(channel, [self._group_of(a) for a in join])
            self._joined.update(join)
            if join and self._on_joined is not None:
                self._on_joined(join)


class _Channel:
    def __init__(self) -> None:
        self.followers = _Groups(layer.presence_group, self, on_joined=self._read_again_later)
        self.own = _Groups(layer.user_group, self)
        self._name: str | None = None
        self._opening = asyncio.Lock()
        self._joined_recently: set[str] = set()
        # Held so that the loop's weak references are not the tasks' only ones.
        self._deliverer: asyncio.Task[None] | None = None
        self._rereader: asyncio.Task[None] | None = None

    async def name(self) -> str:
        async with self._opening:
            if self._name is None:
                self._name = await layer.new_channel()
                self._deliverer = _process_task(self._deliver(self._name))
        return self._name

    def _read_again_later(self, addresses: list[str]) -> None:
        """Read the state of presence groups joined just now again, shortly, for them all.

        With the pubsub layer, joining a group returns before Redis has applied the
        subscription, so a change published in between would reach no one; a follower's
        snapshot may have been read before it. Each address is read again between one and
        two half-seconds after its group was joined, in one round trip per batch, and handed
        to whoever follows it by then; versions make that a no-op when nothing was missed.
        """
        self._joined_recently.update(addresses)
        if self._rereader is None or self._rereader.done():
            self._rereader = _process_task(self._read_again())

    async def _read_again(self) -> None:
        while self._joined_recently:
            due, self._joined_recently = self._joined_recently, set()
            await asyncio.sleep(_READ_AGAIN_AFTER_SECONDS)
            try:
                current = await online.presence_of(due)
            except Exception:
                # Redis is unreachable; process housekeeping rebuilds and catches up after.
                observability.redis_failed("reread")
                logger.exception("reading newly followed presence again failed")
                continue
            for presence in current:
                await self._to_followers(presence)

    async def _deliver(self, channel: str) -> None:
        failing = False
        while True:
            try:
                message = await layer.receive(channel)
            except Exception:
                # Redis is unreachable; process housekeeping rebuilds and catches up after.
                observability.redis_failed("channel_receive")
                if not failing:
                    logger.exception("receiving channel-layer messages failed; retrying")
                failing = True
                await asyncio.sleep(1)
                continue
            if failing:
                observability.redis_recovered("channel_receive")
            failing = False
            try:
                await self._hand_over(message)
            except Exception:
                logger.exception("a channel-layer message could not be delivered: %r", message)

    async def _hand_over(self, message: dict[str, Any]) -> None:
        event, recipient = decode(message)
        if isinstance(event, PresenceChanged):
            await self._to_followers(event.presence)
            return
        for member in self.own.members(recipient):
            member.hear(event)

    async def _to_followers(self, presence: Presence) -> None:
        # A follower's stream sends the change before presence_changed returns: sends do
        # not wait on the client (daphne buffers), and no task per follower is made.
        for member in self.followers.members(presence.address):
            try:
                await member.presence_changed(presence)
            except Exception:
                logger.exception("delivering a presence change failed: %r", presence)


def _process_task(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task of the process, not of the connection whose call starts it: its log records
    name no connection or call (see presence.observability.current_connection)."""
    return asyncio.get_running_loop().create_task(work, context=contextvars.Context())


_channels = PerLoop(_Channel)


async def follow(member: Member, addresses: list[str]) -> None:
    """Hand `member` the presence changes of `addresses` from now on."""
    await _channels.get().followers.add(member, addresses)


async def unfollow(member: Member, addresses: Iterable[str]) -> None:
    await _channels.get().followers.remove(member, addresses)


async def join_own_group(member: Member, address: str) -> None:
    """Hand `member` the messages to `address`'s own group from now on."""
    await _channels.get().own.add(member, [address])


async def leave(member: Member, own_address: str, followed: Iterable[str]) -> None:
    """Take a closed connection's session out of every group at once: it hears nothing more
    even if Redis fails to let the channel leave the groups."""
    local = _channels.get()
    friends = list(followed)
    local.own.forget(member, [own_address])
    local.followers.forget(member, friends)
    await local.own.reconcile([own_address])
    await local.followers.reconcile(friends)


async def renew() -> None:
    """Join every group again: the core layer expires memberships and loses them with
    Redis's data."""
    local = _channels.get()
    await local.followers.renew()
    await local.own.renew()
