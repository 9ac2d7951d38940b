"""Telling other processes: the step after a store transition or a committed change.

A presence change goes to the changed user's presence group, at most one per user per
coalescing window (the latest always goes out); events for a user go to their own group.
"""

import asyncio

from presence import layer, observability
from presence.conf import presence_settings
from presence.events import Presence, PresenceChanged, UserEvent, encode_presence, encode_to_user
from presence_project.loops import PerLoop


async def presence_changed(presence: Presence) -> None:
    """Publish a visible change, coalescing a user's flapping within the configured window."""
    _location_coalescers.get().drop_older(presence)  # [location]
    await _coalescers.get().publish(presence)


async def location_changed(presence: Presence) -> None:
    """[location] Publish a change of where a user is, at most one per user per
    PRESENCE_LOCATION_INTERVAL_MS (the latest always goes out). A status change carries the
    location too, and replaces a location change still waiting; it is never held back by
    one."""
    await _location_coalescers.get().publish(presence)


async def to_user(address: str, event: UserEvent) -> None:
    """Send `event` to every connection of `address`, on every process."""
    await layer.group_send(layer.user_group(address), encode_to_user(event, address))


async def flush() -> None:
    """Send every change still waiting for its coalescing window, now: the process exits."""
    await _coalescers.get().flush()
    await _location_coalescers.get().flush()  # [location]


async def _send(presence: Presence) -> None:
    message = encode_presence(PresenceChanged(presence))
    await layer.group_send(layer.presence_group(presence.address), message)
    observability.published()


class _Coalescer:
    """At most one publication per user per window; the latest change always goes out.

    A change inside the window waits for its end, replacing any change already waiting, so
    friends see the final status promptly and not every toggle.
    """

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        self._last_sent: dict[str, float] = {}
        self._waiting: dict[str, Presence] = {}

    async def publish(self, presence: Presence) -> None:
        address = presence.address
        loop = asyncio.get_running_loop()
        if address in self._waiting:
            self._waiting[address] = presence
            return
        since = loop.time() - self._last_sent.get(address, float("-inf"))
        if since >= self._window:
            self._mark_sent(address, loop.time())
            await _send(presence)
            return
        self._waiting[address] = presence
        loop.call_later(self._window - since, lambda: loop.create_task(self._flush(address)))

    def drop_older(self, presence: Presence) -> None:
        """Forget the change of `presence`'s user waiting here if `presence` is newer: it
        says all that one said."""
        waiting = self._waiting.get(presence.address)
        if waiting is not None and waiting.version <= presence.version:
            del self._waiting[presence.address]

    async def _flush(self, address: str) -> None:
        presence = self._waiting.pop(address, None)
        if presence is None:
            # flush() sent it.
            return
        self._mark_sent(address, asyncio.get_running_loop().time())
        await _send(presence)

    async def flush(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for presence in waiting.values():
            await _send(presence)

    def _mark_sent(self, address: str, now: float) -> None:
        self._last_sent[address] = now
        if len(self._last_sent) > 10_000:
            # Forget users whose window is long over, so the map stays small.
            self._last_sent = {a: t for a, t in self._last_sent.items() if now - t < self._window}


_coalescers = PerLoop(lambda: _Coalescer(presence_settings().status_coalesce_ms / 1000))
_location_coalescers = PerLoop(  # [location]
    lambda: _Coalescer(presence_settings().location_interval_ms / 1000)
)
