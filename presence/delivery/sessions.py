"""What one WebSocket connection knows of its user: identity, feeds, followed friends.

The consumer owns one ClientSession; the process's channel (presence.delivery.process_channel)
hands it friends' presence changes and its user's own messages (friendship events,
revocation, an operator's disconnect); the FriendshipsService procedures read from it. It
holds no wire details.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.selectors import token_holder
from friendships.selectors import friend_addresses
from presence import observability
from presence.conf import presence_settings
from presence.delivery import process, process_channel
from presence.procedures.errors import Forbidden, ServiceError, TooManyRequests, Unauthorized
from presence.store import online as state
from presence.store.online import Presence, Status


@dataclass(frozen=True, slots=True)
class FriendshipNotice:
    """A friendship event as the channel layer carries it."""

    action: str
    actor: str
    target: str
    message: str
    created_at_ms: int
    event_id: int

    def as_message(self) -> dict[str, Any]:
        return {
            "type": "friendship.event",
            "action": self.action,
            "actor": self.actor,
            "target": self.target,
            "message": self.message,
            "created_at_ms": self.created_at_ms,
            "event_id": self.event_id,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "FriendshipNotice":
        return cls(
            action=message["action"],
            actor=message["actor"],
            target=message["target"],
            message=message["message"],
            created_at_ms=message["created_at_ms"],
            event_id=message["event_id"],
        )


class PresenceFeed:
    """Friends' presence waiting for the client to ask for it: the latest state per friend.

    A client that stops acking costs at most one entry per friend, whatever the churn.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Presence] = {}
        # Per friend: the version and status last offered; a friend never offered is OFFLINE.
        self._versions: dict[str, int] = {}
        self._statuses: dict[str, Status] = {}
        # Awaited whenever an entry comes in, so that the stream can push it at once.
        self.listener: Callable[[], Awaitable[None]] | None = None
        self.peak_backlog = 0

    async def offer(self, presence: Presence) -> None:
        """Keep `presence` if it is newer than what was offered and changes the status.

        A late publication of a state the snapshot already showed is dropped here.
        """
        # -1: after Redis lost its data, an OFFLINE friend reads as version 0 and must pass.
        if presence.version <= self._versions.get(presence.address, -1):
            return
        self._versions[presence.address] = presence.version
        if presence.status == self._statuses.get(presence.address, Status.OFFLINE):
            return
        self._statuses[presence.address] = presence.status
        await self._put(presence)

    def forget_versions(self) -> None:
        self._versions.clear()

    async def drop_friend(self, address: str) -> None:
        """A former friend: they read as OFFLINE once, and their history is forgotten."""
        version = self._versions.pop(address, 0)
        self._statuses.pop(address, None)
        await self._put(Presence(address, Status.OFFLINE, version, None))

    async def _put(self, presence: Presence) -> None:
        self._pending.pop(presence.address, None)
        self._pending[presence.address] = presence
        self.peak_backlog = max(self.peak_backlog, len(self._pending))
        if self.listener is not None:
            await self.listener()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def take(self, limit: int | None = None) -> list[Presence]:
        """The oldest waiting entries, at most `limit` of them (all by default)."""
        if limit is None or limit >= len(self._pending):
            batch = list(self._pending.values())
            self._pending.clear()
            return batch
        return [self._pending.pop(address) for address in list(self._pending)[:limit]]


class PresenceStream:
    """A session's presence feed as a pushed stream (presence.rpc.server.Feed): each item is
    `render` of up to `per_item` friends' presence, encoded. It never ends by itself."""

    finished = False

    def __init__(
        self,
        session: "ClientSession",
        feed: PresenceFeed,
        render: Callable[[list[Presence]], bytes],
        per_item: int | None,
    ) -> None:
        self._session = session
        self._feed = feed
        self._render = render
        self._per_item = per_item

    def take(self) -> bytes | None:
        """The next item; the server writes it at once, so it counts as delivered here."""
        batch = self._feed.take(self._per_item)
        if not batch:
            return None
        observability.delivered(batch)
        return self._render(batch)

    def on_ready(self, ready: Callable[[], Awaitable[None]]) -> None:
        self._feed.listener = ready

    async def close(self) -> None:
        self._feed.listener = None
        await self._session.close_presence_feed(self._feed)


class EventFeed:
    """Friendship events for the client, oldest dropped first beyond a bound."""

    def __init__(self, bound: int) -> None:
        self._pending: deque[FriendshipNotice] = deque(maxlen=bound)
        self._ready = asyncio.Event()

    def push(self, notice: FriendshipNotice) -> None:
        self._pending.append(notice)
        self._ready.set()

    async def next_batch(self) -> list[FriendshipNotice]:
        await self._ready.wait()
        batch = list(self._pending)
        self._pending.clear()
        self._ready.clear()
        return batch


def _refused(reason: str, error: ServiceError) -> ServiceError:
    """`error`, counted and logged as a refusal for `reason`."""
    observability.refused(reason, str(error))
    return error


class ClientSession:
    """One connection's user and subscriptions."""

    def __init__(
        self, on_revoked: Callable[[], None], on_disconnected: Callable[[str], None]
    ) -> None:
        """`on_revoked` closes the connection: its user's access was revoked;
        `on_disconnected` closes it with the reason an operator gave."""
        self._on_revoked = on_revoked
        self._on_disconnected = on_disconnected
        self._closed = False
        self.connection_id = state.connection_id(process.INCARNATION)
        self.address: str | None = None
        self.signed_in_by = observability.ANONYMOUS
        self._token: str | None = None
        self._token_expires_at: datetime | None = None
        self._lock = asyncio.Lock()
        self._presence_feeds: set[PresenceFeed] = set()
        self._event_feeds: set[EventFeed] = set()
        self._followed: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        # The status last chosen on this connection, to restore if Redis loses it.
        self._chosen: Status | None = None
        process.track(self)

    async def authenticate(
        self, token: str | None, method: str = observability.PAYLOAD_TOKEN
    ) -> str:
        """The caller's address. The first valid token binds the connection to its user;
        `method` says where the token came from."""
        if token and token == self._token:
            if self._token_expires_at is not None and timezone.now() >= self._token_expires_at:
                raise _refused(
                    observability.EXPIRED_TOKEN, Unauthorized("the access token has expired")
                )
            return self.address
        if not token:
            if self.address is None:
                raise _refused(
                    observability.NO_TOKEN,
                    Unauthorized("an access token is required: send it as synapse_token"),
                )
            return self.address
        holder = await database_sync_to_async(token_holder)(token)
        if holder is None:
            raise _refused(
                observability.INVALID_TOKEN,
                Unauthorized("the access token is invalid, expired or revoked"),
            )
        await self.bind(holder.address, method)
        # The token that bound the connection is not looked up again; revoking it closes the
        # connection, and its expiry is checked here.
        self._token, self._token_expires_at = token, holder.expires_at
        return holder.address

    async def bind(self, address: str, method: str) -> None:
        """Make this connection `address`'s, once; another user's proof is Forbidden.
        `method` is how the user proved who they are (observability.SIGN_IN_METHODS)."""
        async with self._lock:
            if self.address is None:
                try:
                    await state.connect(
                        address,
                        self.connection_id,
                        presence_settings().max_connections_per_user,
                    )
                except state.TooManyConnections as exc:
                    raise _refused(
                        observability.CONNECTION_LIMIT, TooManyRequests(str(exc))
                    ) from exc
                self.address = address
                self.signed_in_by = method
                observability.signed_in(method)
                await process_channel.join_own_group(self, address)
            elif address != self.address:
                raise _refused(
                    observability.OTHER_USER, Forbidden("this connection belongs to another user")
                )

    async def set_status(self, status: Status) -> None:
        if self.address is None:
            raise Unauthorized("authenticate before setting a status")
        self._chosen = status
        await state.set_status(self.address, self.connection_id, status)

    async def default_status(self, status: Status) -> None:
        """For a client that has no way to choose (SocialService v2): `status`, unless the
        user already chose one on another connection."""
        if self.address is None:
            raise Unauthorized("authenticate before setting a status")
        if self._chosen is None:
            self._chosen = status
        await state.choose_unless_chosen(self.address, self.connection_id, status)

    async def close(self) -> None:
        """The connection is gone: the user may go OFFLINE, and no group keeps this session."""
        self._closed = True
        process.untrack(self)
        for task in list(self._background):
            task.cancel()
        if self.address is None:
            return
        followed, self._followed = self._followed, set()
        try:
            await state.disconnect(self.address, self.connection_id)
        finally:
            await process_channel.leave(self, self.address, followed)

    @property
    def presence_feeds(self) -> frozenset[PresenceFeed]:
        return frozenset(self._presence_feeds)

    @property
    def event_subscriptions(self) -> int:
        return len(self._event_feeds)

    async def restore(self) -> None:
        """Redis lost this connection (an outage): put it back; the feeds catch up after."""
        if self.address is None:
            return
        await state.restore(self.address, self.connection_id, self._chosen)

    async def catch_up(self, from_scratch: bool) -> None:
        """Offer every followed friend's current state, in case changes were lost.

        After Redis lost its data, versions start again, so the feeds forget theirs first.
        """
        followed = list(self._followed)
        current = await state.presence_of(followed)
        for feed in self._presence_feeds:
            if from_scratch:
                feed.forget_versions()
            for presence in current:
                await feed.offer(presence)

    # --- Presence ------------------------------------------------------------------------

    async def open_presence_feed(self, address: str) -> PresenceFeed:
        """Join friends' groups first, then read their state: no change falls in between."""
        feed = PresenceFeed()
        async with self._lock:
            if not self._presence_feeds:
                friends = await database_sync_to_async(friend_addresses)(address)
                await process_channel.follow(self, friends)
                self._followed = set(friends)
            self._presence_feeds.add(feed)
            followed = list(self._followed)
        for presence in (await state.visible_among(followed)).values():
            await feed.offer(presence)
        return feed

    async def presence_stream(
        self,
        address: str,
        render: Callable[[list[Presence]], bytes],
        per_item: int | None = None,
    ) -> PresenceStream:
        """Open a presence feed for `address`'s friends, to be pushed as `render`'s items."""
        return PresenceStream(self, await self.open_presence_feed(address), render, per_item)

    async def close_presence_feed(self, feed: PresenceFeed) -> None:
        async with self._lock:
            self._presence_feeds.discard(feed)
            if not self._presence_feeds:
                followed, self._followed = self._followed, set()
                await process_channel.unfollow(self, followed)

    async def presence_changed(self, presence: Presence) -> None:
        if presence.address in self._followed:
            for feed in list(self._presence_feeds):
                await feed.offer(presence)

    async def _friend_added(self, friend: str) -> None:
        async with self._lock:
            if not self._presence_feeds or friend in self._followed:
                return
            await process_channel.follow(self, [friend])
            self._followed.add(friend)
        for presence in (await state.visible_among([friend])).values():
            await self.presence_changed(presence)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` beside the connection's frames; closing the session cancels it."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _friend_removed(self, friend: str) -> None:
        async with self._lock:
            if friend not in self._followed:
                return
            self._followed.discard(friend)
            await process_channel.unfollow(self, [friend])
            for feed in list(self._presence_feeds):
                await feed.drop_friend(friend)

    # --- Friendship events ---------------------------------------------------------------

    def open_event_feed(self) -> EventFeed:
        feed = EventFeed(presence_settings().max_pending_events)
        self._event_feeds.add(feed)
        return feed

    def close_event_feed(self, feed: EventFeed) -> None:
        self._event_feeds.discard(feed)

    def hear(self, message: dict[str, Any]) -> None:
        """A message to this user's own group. A friendship event is handled in a task of its
        own, so that the process's channel goes on meanwhile; tasks start in the order the
        events came, and the session's lock keeps them in it."""
        if self._closed:
            return
        if message["type"] == "session.revoked":
            self._on_revoked()
        elif message["type"] == "session.disconnect":
            self._on_disconnected(message["reason"])
        elif message["type"] == "friendship.event":
            self._in_background(self._friendship_event(FriendshipNotice.from_message(message)))

    async def _friendship_event(self, notice: FriendshipNotice) -> None:
        assert self.address is not None, "only a bound session is in its user's group"
        other = notice.target if notice.actor == self.address else notice.actor
        if notice.actor != self.address:
            for feed in self._event_feeds:
                feed.push(notice)
        if notice.action == "accept":
            await self._friend_added(other)
        elif notice.action in ("delete", "block"):
            await self._friend_removed(other)
