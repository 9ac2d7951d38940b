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


class RenewsGroups(Protocol):
    async def renew_groups(self) -> None: ...


_live_sessions: "weakref.WeakSet[RenewsGroups]" = weakref.WeakSet()
_task: asyncio.Task[None] | None = None


def track(session: RenewsGroups) -> None:
    _live_sessions.add(session)


def ensure_running() -> None:
    """Start the housekeeping task in the running loop, once."""
    global _task
    if _task is None or _task.done():
        _task = asyncio.get_running_loop().create_task(_housekeeping())


async def _housekeeping() -> None:
    interval = settings.PRESENCE["HEARTBEAT_SECONDS"]
    ttl = settings.PRESENCE["PROCESS_TTL_SECONDS"]
    renew_every = max(1.0, settings.CHANNEL_LAYERS["default"]["CONFIG"]["group_expiry"] / 3)
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
