"""This server process as Redis knows it: its name, its heartbeat, its housekeeping.

Two asyncio tasks per process, started by the first ASGI call. One keeps the heartbeat
alive, on a Redis connection of its own, so that no other work delays a beat: a beat later
than the TTL gets a healthy process reaped. The other reaps processes whose heartbeat
expired, renews the process channel's group memberships before channels-redis expires them,
and rebuilds this process's share of presence from its live connections after a Redis
outage, or after another process reaped it while its beat was late.
"""

import asyncio
import gc
import logging
import os
import secrets
import socket
import time
from collections import Counter
from typing import Protocol

from django.conf import settings

from presence import observability, services
from presence.conf import presence_settings
from presence.delivery import process_channel
from presence.store import processes
from presence_project import redis_clients

logger = logging.getLogger(__name__)

NAME = presence_settings().process_name or f"{socket.gethostname()}:{os.getpid()}"
# A restart under the same name is a new incarnation: the old one's connections are reaped
# as a dead process's, never adopted.
INCARNATION = f"{NAME}#{secrets.token_hex(4)}"


class Backlog(Protocol):
    """A subscription's items waiting for the client (presence.rpc.feed.Feed)."""

    peak_backlog: int

    @property
    def backlog(self) -> int: ...


class LiveSession(Protocol):
    address: str | None
    connection_id: str
    signed_in_by: str

    @property
    def presence_feeds(self) -> frozenset[Backlog]: ...

    @property
    def event_subscriptions(self) -> int: ...

    async def restore(self) -> None: ...

    async def catch_up(self, from_scratch: bool) -> None: ...


_live_sessions: set[LiveSession] = set()
_tasks: list[asyncio.Task[None]] = []
# Connections closed since the last full garbage collection.
_closed_since_collection = 0
# time.monotonic() when Redis last took this process's heartbeat; None before the first.
_last_beat: float | None = None
_first_beat = asyncio.Event()
# Set when a beat after the first finds this process unregistered: another process reaped
# it, or Redis lost it.
_reaped = asyncio.Event()


def track(session: LiveSession) -> None:
    _live_sessions.add(session)


def untrack(session: LiveSession) -> None:
    """Forget a closed connection, and collect the garbage of many once they add up.

    A closed connection's objects (daphne's and Twisted's protocol, the consumer, the
    session, the exceptions that ended its tasks) are bound in reference cycles and have
    long been in CPython's oldest generation, which is collected only once a quarter of it
    is newly promoted: old objects turning into garbage never count towards that, so under
    churn memory would grow for as long as clients come and go. A full collection runs
    after as many closes as half the live connections (at least GC_EVERY_CLOSED): a pause
    proportional to the live objects, once per half a turnover.
    """
    global _closed_since_collection
    _live_sessions.discard(session)
    _closed_since_collection += 1
    if _closed_since_collection >= max(
        presence_settings().gc_every_closed, len(_live_sessions) // 2
    ):
        _closed_since_collection = 0
        gc.collect()


async def stats() -> dict[str, object]:
    """What this process holds, for operators: connections, subscriptions, worst backlog.

    Async so that it reads the sessions on the event loop that changes them.
    """
    sessions = list(_live_sessions)
    feeds = [feed for session in sessions for feed in session.presence_feeds]
    return {
        "process": INCARNATION,
        "connections": len(sessions),
        "presence_subscriptions": len(feeds),
        "peak_presence_backlog": max((feed.peak_backlog for feed in feeds), default=0),
    }


def heartbeat_age() -> float | None:
    """Seconds since Redis last took this process's heartbeat; None before the first."""
    return None if _last_beat is None else time.monotonic() - _last_beat


async def first_heartbeat() -> None:
    """Return once Redis has taken this process's heartbeat (at once if it has already)."""
    await _first_beat.wait()


def _published(local: dict[str, object]) -> dict[str, int]:
    """The stats other processes and operators read in this process's heartbeat."""
    return {key: value for key, value in local.items() if isinstance(value, int)}


async def update_gauges() -> None:
    """Set the metrics of what this process holds now; on the event loop, as stats()."""
    connections: Counter[str] = Counter()
    subscriptions: Counter[str] = Counter()
    backlog = peak = 0
    for session in list(_live_sessions):
        connections[session.signed_in_by] += 1
        feeds = session.presence_feeds
        subscriptions[observability.PRESENCE_SUBSCRIPTION] += len(feeds)
        subscriptions[observability.EVENT_SUBSCRIPTION] += session.event_subscriptions
        for feed in feeds:
            backlog = max(backlog, feed.backlog)
            peak = max(peak, feed.peak_backlog)
    observability.set_live_figures(connections, subscriptions, backlog, peak)


def ensure_running() -> None:
    """Start the heartbeat and housekeeping tasks in the running loop, once."""
    if not _tasks or any(task.done() for task in _tasks):
        for task in _tasks:
            task.cancel()
        loop = asyncio.get_running_loop()
        _tasks[:] = [loop.create_task(_beating()), loop.create_task(_housekeeping())]


async def _beating() -> None:
    global _last_beat
    interval = presence_settings().heartbeat_seconds
    ttl = presence_settings().process_ttl_seconds
    while True:
        try:
            added = await processes.heartbeat(INCARNATION, ttl, _published(await stats()))
        except Exception:
            # The housekeeping's own calls fail too, and log it.
            observability.redis_failed("heartbeat")
        else:
            beat_at = time.monotonic()
            if _last_beat is not None:
                observability.heartbeat_interval(beat_at - _last_beat)
                if added:
                    _reaped.set()
            _last_beat = beat_at
            _first_beat.set()
        await asyncio.sleep(interval)


async def _housekeeping() -> None:
    interval = presence_settings().heartbeat_seconds
    # Only the core layer expires group memberships; pubsub memberships live with the process.
    group_expiry = settings.CHANNEL_LAYERS["default"]["CONFIG"].get("group_expiry", 86400)
    renew_every = max(1.0, group_expiry / 3)
    loop = asyncio.get_running_loop()
    next_renewal = loop.time() + renew_every
    known_epoch: str | None = None
    failing = False
    catch_up_again = False
    while True:
        try:
            epoch = await processes.epoch()
            data_lost = known_epoch is not None and epoch != known_epoch
            reaped = _reaped.is_set()
            _reaped.clear()
            if failing:
                observability.redis_recovered("housekeeping")
            if failing or data_lost or reaped:
                if reaped:
                    logger.warning(
                        "this live process was unregistered in Redis at its heartbeat: "
                        "another process reaped it (a beat later than the TTL), or Redis "
                        "lost it; rebuilding"
                    )
                await _rebuild(data_lost)
                catch_up_again = True
            elif catch_up_again:
                # Changes published while the layer was still resubscribing were lost.
                await _catch_up_all(from_scratch=False)
                catch_up_again = False
            known_epoch, failing = epoch, False
            dead = await services.reap_dead_processes(alive=INCARNATION)
            if dead:
                observability.processes_reaped.inc(len(dead))
                logger.warning("reaped dead server processes: %s", ", ".join(dead))
            if loop.time() >= next_renewal:
                next_renewal = loop.time() + renew_every
                await process_channel.renew()
        except Exception:
            observability.redis_failed("housekeeping")
            if not failing:
                logger.exception(
                    "presence housekeeping failed on %s; retrying", redis_clients.description()
                )
            failing = True
        await asyncio.sleep(interval)


async def _rebuild(data_lost: bool) -> None:
    """Make Redis agree with this process's live connections, then refresh every feed.

    Connections that closed during the outage are disconnected; connections Redis lost (or
    another process reaped) are restored with their chosen status; subscribers get the
    current state of their friends.
    """
    live = {(s.address, s.connection_id): s for s in list(_live_sessions) if s.address}
    held = await processes.held_by(INCARNATION)
    for address, connection in held - set(live):
        await services.disconnect(address, connection)
    for key, session in live.items():
        if session in _live_sessions and (data_lost or key not in held):
            await session.restore()
    await process_channel.renew()
    # Only once every connection is back can a subscriber read its friends' true state.
    await _catch_up_all(from_scratch=data_lost)
    observability.rebuilds.inc()
    logger.warning("rebuilt presence of %d live connections", len(live))


async def _catch_up_all(from_scratch: bool) -> None:
    for session in list(_live_sessions):
        await session.catch_up(from_scratch)
