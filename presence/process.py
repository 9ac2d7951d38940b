"""This server process as Redis knows it: its name, its heartbeat, its housekeeping.

One asyncio task per process, started by the first ASGI call, keeps the heartbeat alive,
reaps processes whose heartbeat expired, and renews the channel-layer group memberships
of long-lived connections before channels-redis expires them.
"""

import asyncio
import logging
import os
import secrets
import socket
import weakref
from typing import Protocol

from django.conf import settings

from presence import state

logger = logging.getLogger(__name__)

NAME = settings.PRESENCE["PROCESS_NAME"] or f"{socket.gethostname()}:{os.getpid()}"
# A restart under the same name is a new incarnation: the old one's connections are reaped
# as a dead process's, never adopted.
INCARNATION = f"{NAME}#{secrets.token_hex(4)}"


class Feed(Protocol):
    peak_backlog: int


class LiveSession(Protocol):
    @property
    def presence_feeds(self) -> frozenset[Feed]: ...

    async def renew_groups(self) -> None: ...


_live_sessions: "weakref.WeakSet[LiveSession]" = weakref.WeakSet()
_task: asyncio.Task[None] | None = None


def track(session: LiveSession) -> None:
    _live_sessions.add(session)


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


def ensure_running() -> None:
    """Start the housekeeping task in the running loop, once."""
    global _task
    if _task is None or _task.done():
        _task = asyncio.get_running_loop().create_task(_housekeeping())


async def _housekeeping() -> None:
    interval = settings.PRESENCE["HEARTBEAT_SECONDS"]
    ttl = settings.PRESENCE["PROCESS_TTL_SECONDS"]
    # Only the core layer expires group memberships; pubsub memberships live with the process.
    group_expiry = settings.CHANNEL_LAYERS["default"]["CONFIG"].get("group_expiry", 86400)
    renew_every = max(1.0, group_expiry / 3)
    loop = asyncio.get_running_loop()
    next_renewal = loop.time() + renew_every
    while True:
        try:
            await state.heartbeat(INCARNATION, ttl)
            reaped = await state.reap_dead_processes()
            if reaped:
                logger.warning("reaped dead server processes: %s", ", ".join(reaped))
            if loop.time() >= next_renewal:
                next_renewal = loop.time() + renew_every
                for session in list(_live_sessions):
                    await session.renew_groups()
        except Exception:
            logger.exception("presence housekeeping failed; retrying")
        await asyncio.sleep(interval)
