"""What one WebSocket connection knows of its user: identity, subscriptions, followed friends.

The consumer owns one ClientSession. The process's channel (presence.delivery.process_channel)
hands it its friends' presence changes and the events for its user; the session offers them
to the feeds (presence.rpc.feed) its subscriptions opened, which render and send them. It
holds no wire details.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial

from django.utils import timezone
from redis.exceptions import RedisError

from accounts.selectors import token_holder
from friendships.selectors import friend_addresses
from presence import observability, services, sharing
from presence.delivery import process, process_channel
from presence.errors import Forbidden, ServiceError, TooManyRequests, Unauthorized
from presence.events import (
    DESKTOP,
    FriendshipNotice,
    Location,
    Presence,
    SessionDisconnect,
    SessionRevoked,
    Status,
    UserEvent,
    handler_name,
)
from presence.rpc.feed import Feed
from presence.store import keys, online
from presence.store.online import Choice, MessageChoice
from presence_project.db import database_sync_to_async

logger = logging.getLogger(__name__)

PresenceFeed = Feed[str, Presence]
EventFeed = Feed[int, FriendshipNotice]
# Wrapped once, not on every call: wrapping (asgiref inspects the function) costs the
# event loop on each sign-in and subscription.
_token_holder = database_sync_to_async(token_holder)
_friend_addresses = database_sync_to_async(friend_addresses)


_NEVER_SHOWN = Presence("", Status.OFFLINE, 0, None).seen_as()


class _PresenceSubscription:
    """One presence subscription: its feed, and what it has shown of each friend, so that a
    late publication of a state it showed already, or the same state again, is not shown."""

    def __init__(self, feed: PresenceFeed) -> None:
        self.feed = feed
        self._versions: dict[str, int] = {}
        # What each friend was shown as (Presence.seen_as); a friend never shown is OFFLINE.
        self._shown: dict[str, tuple[object, ...]] = {}

    async def offer(self, presence: Presence) -> None:
        # -1: after Redis lost its data, an OFFLINE friend reads as version 0 and must pass.
        if presence.version <= self._versions.get(presence.address, -1):
            return
        self._versions[presence.address] = presence.version
        shown = presence.seen_as()
        if shown == self._shown.get(presence.address, _NEVER_SHOWN):
            return
        self._shown[presence.address] = shown
        await self.feed.offer(presence.address, presence)

    def forget_versions(self) -> None:
        self._versions.clear()

    async def drop_friend(self, address: str) -> None:
        """A former friend: they read as OFFLINE once, and their history is forgotten."""
        version = self._versions.pop(address, 0)
        self._shown.pop(address, None)
        await self.feed.offer(address, Presence(address, Status.OFFLINE, version, None))


def _refused(reason: str, error: ServiceError) -> ServiceError:
    """`error`, counted and logged as a refusal for `reason`."""
    observability.refused(reason, str(error))
    return error


class ClientSession:
    """One connection's user and subscriptions."""

    def __init__(
        self,
        on_revoked: Callable[[], None],
        on_disconnected: Callable[[str], None],
        on_restart: Callable[[str], None],
        on_signed_in: Callable[[], None] | None = None,
        device_kind: str = DESKTOP,
    ) -> None:
        """`on_revoked` closes the connection: its user's access was revoked;
        `on_disconnected` closes it with the reason an operator gave; `on_restart` with the
        reason the process restarts; `on_signed_in` is called once the connection is its
        user's. `device_kind` is what the connection says it is (events.DEVICE_KINDS)."""
        self._on_signed_in = on_signed_in
        self._on_revoked = on_revoked
        self._on_disconnected = on_disconnected
        self._on_restart = on_restart
        self._closed = False
        self.connection_id = keys.connection_id(process.INCARNATION)
        self.address: str | None = None
        self.signed_in_by = observability.ANONYMOUS
        self._token: str | None = None
        self._token_expires_at: datetime | None = None
        self._lock = asyncio.Lock()
        self._subscriptions: set[_PresenceSubscription] = set()
        # Each friendship-event feed with the notices it takes.
        self._event_feeds: dict[EventFeed, Callable[[FriendshipNotice], bool]] = {}
        self._followed: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        # The status last chosen on this connection, to restore if Redis loses it; [status]
        # with its end, and the message last set on this connection.
        self._choice = Choice(None)
        # [location] The location last shared on this connection, to restore likewise.
        self._location: Location | None = None
        # [conn] The device as this process knows it, and as Redis last took it; when the
        # client last did something (time.monotonic()): process.py's timer finds it idle.
        self._device = self._stored_device = online.Device(device_kind)
        self._last_active = time.monotonic()
        self._storing_device: asyncio.Task[None] | None = None
        process.track(self)

    # --- Who the user is -----------------------------------------------------------------

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
        holder = await _token_holder(token)
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
                device = self._device
                try:
                    await services.connect(address, self.connection_id, device)
                except services.TooManyConnections as exc:
                    raise _refused(
                        observability.CONNECTION_LIMIT, TooManyRequests(str(exc))
                    ) from exc
                self.address = address
                self._device_stored(device)
                self.signed_in_by = method
                observability.signed_in(method)
                process.signed_in()
                await process_channel.join_own_group(self, address)
                if self._on_signed_in is not None:
                    self._on_signed_in()
            elif address != self.address:
                raise _refused(
                    observability.OTHER_USER, Forbidden("this connection belongs to another user")
                )

    def _bound(self, doing: str) -> str:
        if self.address is None:
            raise Unauthorized(f"authenticate before {doing}")
        return self.address

    # --- The user's status ---------------------------------------------------------------

    async def set_status(self, choice: Choice) -> Presence:
        """Choose a status for all of the user's connections, with its end and message if it
        has them; the user as friends now see them."""
        address = self._bound("setting a status")
        presence = await services.set_status(address, self.connection_id, choice)
        self._choice = replace(choice, message=choice.message or self._choice.message)
        return presence

    async def set_message(self, message: MessageChoice) -> Presence:
        """[status] Set or clear the user's status message; the user as friends now see
        them."""
        address = self._bound("setting a status message")
        presence = await services.set_message(address, message)
        self._choice = replace(self._choice, message=message)
        return presence

    async def default_status(self, status: Status) -> None:
        """For a client that has no way to choose (SocialService v2): `status`, unless the
        user already chose one on another connection."""
        address = self._bound("setting a status")
        if self._choice.status is None:
            self._choice = replace(self._choice, status=status)
        device = self._device
        await services.default_status(address, self.connection_id, status, device)
        self._device_stored(device)

    # [location]
    async def set_location(self, location: Location | None) -> Presence:
        """Share where the user is (None: nowhere); the user as friends see them now."""
        address = self._bound("sharing a location")
        self._location = location
        return await services.set_location(address, location)

    async def heartbeat(self, location: Location | None) -> Presence:
        """The user's heartbeat, as a client without a socket of its own sends it; its
        device is this connection's kind."""
        address = self._bound("sending a heartbeat")
        return await services.heartbeat(address, location, self._device.kind)

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
            # Closed for a restart, it stays counted until process.hand_over(): the user's
            # reconnection to another process meanwhile shows friends nothing.
            if not process.restarting():
                await services.disconnect(self.address, self.connection_id)
        finally:
            await process_channel.leave(self, self.address, followed)

    def restart(self, reason: str) -> None:
        """The process restarts: close the connection, saying why."""
        if not self._closed:
            self._on_restart(reason)

    async def restore(self) -> None:
        """Redis lost this connection (an outage): put it back; the feeds catch up after."""
        if self.address is None:
            return
        choice = self._choice
        # [status] What ended during the outage is not restored; a chosen status ends in ONLINE.
        now = online.now_ms()
        if choice.until_ms is not None and choice.until_ms <= now:
            choice = replace(choice, status=Status.ONLINE, until_ms=None)
        message = choice.message
        if message is not None and message.until_ms is not None and message.until_ms <= now:
            choice = replace(choice, message=None)
        device = self._device
        await services.restore(self.address, self.connection_id, choice, device)
        self._device_stored(device)
        if self._location is not None:  # [location]
            await services.set_location(self.address, self._location)

    # --- Idle and active [conn] ----------------------------------------------------------

    def active(self) -> None:
        """The client did something (a frame but a stream ack): a timestamp, and a Redis
        write only when the connection was idle."""
        self._last_active = time.monotonic()
        if self._device.idle:
            self._set_device(online.Device(self._device.kind, idle=False))

    def idle_unless_active_since(self, since: float) -> None:
        """Mark the connection idle if the client did nothing since `since` (monotonic)."""
        if self._last_active < since and not self._device.idle and not self._closed:
            self._set_device(online.Device(self._device.kind, idle=True))

    def _set_device(self, device: online.Device) -> None:
        self._device = device
        if self.address is not None and self._storing_device is None:
            self._storing_device = task = asyncio.get_running_loop().create_task(
                self._store_device(self.address)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _device_stored(self, device: online.Device) -> None:
        """A transition wrote `device`: write the state again if it changed meanwhile."""
        self._stored_device = device
        if device != self._device:
            self._set_device(self._device)

    async def _store_device(self, address: str) -> None:
        """Write the device state to Redis until Redis has the latest: one write at a time,
        so that an older state never lands after a newer one."""
        try:
            while self._stored_device != self._device:
                device = self._device
                await services.set_device(address, self.connection_id, device)
                self._stored_device = device
        except RedisError:
            # The next change writes it again; a rebuild after an outage restores it.
            logger.warning("storing connection %s's device state failed", self.connection_id)
        finally:
            self._storing_device = None

    # --- Friends' presence ---------------------------------------------------------------

    @property
    def presence_feeds(self) -> frozenset[PresenceFeed]:
        return frozenset(subscription.feed for subscription in self._subscriptions)

    async def subscribe_presence(self, feed: PresenceFeed) -> PresenceFeed:
        """Offer `feed` the state of the user's visible friends, then each change. Friends'
        groups are joined before their state is read: no change falls in between."""
        address = self._bound("subscribing")
        subscription = _PresenceSubscription(feed)
        async with self._lock:
            if not self._subscriptions:
                friends = await _friend_addresses(address)
                await process_channel.follow(self, friends)
                self._followed = set(friends)
            self._subscriptions.add(subscription)
            followed = list(self._followed)
        feed.on_close(partial(self._unsubscribe, subscription))
        for presence in (await online.visible_among(followed, viewer=address)).values():
            await subscription.offer(presence)
        return feed

    async def _unsubscribe(self, subscription: _PresenceSubscription) -> None:
        async with self._lock:
            self._subscriptions.discard(subscription)
            if not self._subscriptions:
                followed, self._followed = self._followed, set()
                await process_channel.unfollow(self, followed)

    async def presence_changed(self, presence: Presence) -> None:
        if presence.address in self._followed:
            assert self.address is not None, "only a bound session follows friends"
            # [privacy] The one place a friend's change is shown to this viewer.
            presence = sharing.shown(presence, self.address)
            for subscription in list(self._subscriptions):
                await subscription.offer(presence)

    async def catch_up(self, from_scratch: bool) -> None:
        """Offer every followed friend's current state, in case changes were lost.

        After Redis lost its data, versions start again, so the subscriptions forget theirs.
        """
        if self.address is None:
            return
        current = await online.presence_of(list(self._followed), viewer=self.address)
        for subscription in list(self._subscriptions):
            if from_scratch:
                subscription.forget_versions()
            for presence in current:
                await subscription.offer(presence)

    async def _friend_added(self, friend: str) -> None:
        async with self._lock:
            if not self._subscriptions or friend in self._followed:
                return
            await process_channel.follow(self, [friend])
            self._followed.add(friend)
        for presence in (await online.visible_among([friend], viewer=self.address)).values():
            await self.presence_changed(presence)

    async def _friend_removed(self, friend: str) -> None:
        async with self._lock:
            if friend not in self._followed:
                return
            self._followed.discard(friend)
            await process_channel.unfollow(self, [friend])
            for subscription in list(self._subscriptions):
                await subscription.drop_friend(friend)

    # --- Events for the user -------------------------------------------------------------

    @property
    def event_subscriptions(self) -> int:
        return len(self._event_feeds)

    def subscribe_events(
        self, feed: EventFeed, accepts: Callable[[FriendshipNotice], bool] = lambda _: True
    ) -> EventFeed:
        """Offer `feed` the friendship events others make with the user that `accepts`
        takes, from now on."""
        self._bound("subscribing")
        self._event_feeds[feed] = accepts
        feed.on_close(partial(self._unsubscribe_events, feed))
        return feed

    async def _unsubscribe_events(self, feed: EventFeed) -> None:
        self._event_feeds.pop(feed, None)

    def hear(self, event: UserEvent) -> None:
        """An event for this user, dispatched on its type. It must not wait: the process
        channel's task runs it."""
        if not self._closed:
            getattr(self, handler_name(event))(event)

    def session_revoked(self, event: SessionRevoked) -> None:
        self._on_revoked()

    def session_disconnect(self, event: SessionDisconnect) -> None:
        self._on_disconnected(event.reason)

    def friendship_notice(self, notice: FriendshipNotice) -> None:
        """Handled in a task of its own, so that the process's channel goes on meanwhile;
        tasks start in the order the events came, and the session's lock keeps them in it."""
        task = asyncio.get_running_loop().create_task(self._friendship_changed(notice))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _friendship_changed(self, notice: FriendshipNotice) -> None:
        assert self.address is not None, "only a bound session is in its user's group"
        if notice.actor != self.address:
            for feed, accepts in list(self._event_feeds.items()):
                if accepts(notice):
                    await feed.offer(notice.event_id, notice)
        other = notice.other(self.address)
        if notice.action == "accept":
            await self._friend_added(other)
        elif notice.action in ("delete", "block"):
            await self._friend_removed(other)
