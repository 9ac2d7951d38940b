"""This server process as Redis knows it: its name, its heartbeat, its housekeeping.

Two asyncio tasks per process, started by the first ASGI call, and a third that finds idle
connections (`_idling`). One keeps the heartbeat
alive, on a Redis connection of its own, so that no other work delays a beat: a beat later
than the TTL gets a healthy process reaped. The other reaps processes whose heartbeat
expired, renews the process channel's group memberships before channels-redis expires them,
and rebuilds this process's share of presence from its live connections after a Redis
outage, or after another process reaped it while its beat was late. With several Redis
shards, the heartbeat, the reaping and the rebuild run on each shard on its own, all at
once: a shard that fails or loses its data is rebuilt alone, from the connections of the
users it holds.

On shutdown, restart() closes every connection for a restart, and hand_over() keeps them
counted in Redis for a grace period, then disconnects those that remain and deregisters the
process.
"""

import asyncio
import gc
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from presence import observability, services
from presence.conf import presence_settings
from presence.delivery import process_channel
from presence.store import online, processes, shards
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

    def idle_unless_active_since(self, since: float) -> None: ...

    async def catch_up(self, from_scratch: bool) -> None: ...

    def restart(self, reason: str) -> None: ...


_live_sessions: set[LiveSession] = set()
_tasks: list[asyncio.Task[None]] = []
# Connections closed since the last full garbage collection.
_closed_since_collection = 0
# Sign-ins between two freezes of everything alive (signed_in()).
FREEZE_EVERY_SIGN_INS = 100
_signed_in_since_freeze = 0
# time.monotonic() when Redis last took this process's heartbeat; None before the first.
_last_beat: float | None = None
_first_beat = asyncio.Event()
# When a beat after the first, by the time it was sent, last found this process
# unregistered on each shard: another process reaped it there, or the shard lost it.
_reaped_on: dict[int, float] = {}
# When a rebuild last registered this process on each shard, before reading what it holds
# there: it repairs what any beat sent before then found.
_registered_by_rebuild: dict[int, float] = {}
# Why the process closed its connections (restart()); from then until hand_over() ends, a
# connection that closes stays counted in Redis.
_restart_reason: str | None = None
_all_closed = asyncio.Event()
# Set when hand_over() stops the housekeeping for good.
_retiring = asyncio.Event()


def track(session: LiveSession) -> None:
    _live_sessions.add(session)
    if _restart_reason is not None:
        # Its consumer was made just before the process stopped taking connections.
        session.restart(_restart_reason)


def signed_in() -> None:
    """A connection was signed in: its objects live as long as it does.

    Every FREEZE_EVERY_SIGN_INS sign-ins, everything alive moves to CPython's permanent
    generation (gc.freeze(), which moves lists and scans nothing), where no automatic
    collection looks: a connection's objects are scanned by the young collections only,
    not once more by a middle collection on their way to the oldest generation, the
    larger share of a reconnect storm's collecting. Garbage frozen with them (cycles
    dropped since the last young collection) waits for untrack()'s full collection, which
    unfreezes everything first."""
    global _signed_in_since_freeze
    _signed_in_since_freeze += 1
    if _signed_in_since_freeze >= FREEZE_EVERY_SIGN_INS:
        _signed_in_since_freeze = 0
        gc.freeze()


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
    if not _live_sessions and _restart_reason is not None:
        _all_closed.set()
    _closed_since_collection += 1
    if _closed_since_collection >= max(
        presence_settings().gc_every_closed, len(_live_sessions) // 2
    ):
        _closed_since_collection = 0
        # Frozen garbage is freed here only: everything is collected, then what is left
        # frozen again.
        gc.unfreeze()
        gc.collect()
        gc.freeze()


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
    """Start the heartbeat and housekeeping tasks in the running loop, once (and never after
    hand_over)."""
    if (not _tasks or any(task.done() for task in _tasks)) and not _retiring.is_set():
        for task in _tasks:
            task.cancel()
        loop = asyncio.get_running_loop()
        _tasks[:] = [
            loop.create_task(_beating()),
            loop.create_task(_housekeeping()),
            loop.create_task(_recording_history()),  # [history]
        ]
        if presence_settings().idle_away_seconds > 0:
            _tasks.append(loop.create_task(_idling()))


async def _idling() -> None:
    """[conn] Find the connections idle for PRESENCE_IDLE_AWAY_SECONDS: a comparison per
    connection every tenth of that time (at most every 5 s), so that a frame costs a
    timestamp and nothing more."""
    idle = presence_settings().idle_away_seconds
    every = min(5.0, idle / 10)
    while not _retiring.is_set():
        since = time.monotonic() - idle
        for session in list(_live_sessions):
            session.idle_unless_active_since(since)
        with suppress(TimeoutError):
            await asyncio.wait_for(_retiring.wait(), every)


async def _beating() -> None:
    interval = presence_settings().heartbeat_seconds
    while not _retiring.is_set():
        beat = _published(await stats())
        # A shard that hangs holds up no other shard's heartbeat.
        await asyncio.gather(*(_beat(shard, beat) for shard in range(shards.count())))
        with suppress(TimeoutError):
            await asyncio.wait_for(_retiring.wait(), interval)


async def _beat(shard: int, beat: dict[str, int]) -> None:
    global _last_beat
    sent = time.monotonic()
    try:
        added = await processes.heartbeat(
            INCARNATION, presence_settings().process_ttl_seconds, beat, shard
        )
    except Exception:
        # The housekeeping's own calls fail too, and log it.
        observability.redis_failed("heartbeat")
        return
    beat_at = time.monotonic()
    if _last_beat is not None:
        observability.heartbeat_interval(beat_at - _last_beat)
        if added:
            _reaped_on[shard] = sent
    _last_beat = beat_at
    _first_beat.set()


@dataclass
class _ShardState:
    """What housekeeping remembers of one shard between rounds."""

    shard: int
    epoch: str | None = None
    failing: bool = False
    catch_up_again: bool = False
    catch_up_failing: bool = False


async def _housekeeping() -> None:
    interval = presence_settings().heartbeat_seconds
    # Only the core layer expires group memberships; pubsub memberships live with the process.
    group_expiry = settings.CHANNEL_LAYERS["default"]["CONFIG"].get("group_expiry", 86400)
    renew_every = max(1.0, group_expiry / 3)
    loop = asyncio.get_running_loop()
    next_renewal = loop.time() + renew_every
    states = [_ShardState(shard) for shard in range(shards.count())]
    while not _retiring.is_set():
        # A shard that hangs holds up no other shard's housekeeping.
        await asyncio.gather(*(_keep(state) for state in states))
        if loop.time() >= next_renewal:
            next_renewal = loop.time() + renew_every
            try:
                await process_channel.renew()
            except Exception:
                # A failing shard's rebuild renews them again once it answers.
                observability.redis_failed("housekeeping")
                logger.exception("renewing the process channel's groups failed; retrying")
        # A hand-over waits for the end of a pass, never interrupts one (a reaping half done).
        with suppress(TimeoutError):
            await asyncio.wait_for(_retiring.wait(), interval)


async def _keep(state: _ShardState) -> None:
    """One round of housekeeping on one shard: rebuild after a failure, a loss of data or a
    reaping of this live process, reap dead processes, expire stopped heartbeats."""
    try:
        epoch = await processes.epoch(state.shard)
        data_lost = state.epoch is not None and epoch != state.epoch
        reaped = _reaped_on.get(state.shard, -1.0) > _registered_by_rebuild.get(state.shard, 0.0)
        if state.failing:
            observability.redis_recovered("housekeeping")
        # [privacy] Before anyone is restored or read: who may see whom.
        await services.restore_sharing(state.shard)
        if state.failing or data_lost or reaped:
            if reaped:
                logger.warning(
                    "this live process was unregistered in Redis at its heartbeat on %s: "
                    "another process reaped it (a beat later than the TTL), or the shard "
                    "lost it; rebuilding",
                    redis_clients.description(state.shard),
                )
            outage = state.failing or data_lost
            cause = "after a Redis outage" if outage else "after another process reaped it"
            await _rebuild(state.shard, data_lost, cause)
            state.catch_up_again = True
        elif state.catch_up_again:
            # Changes published while the layer was still resubscribing were lost.
            state.catch_up_again = not await _caught_up(state)
        state.epoch, state.failing = epoch, False
        dead = await services.reap_dead_processes(state.shard, alive=INCARNATION)
        if dead:
            observability.processes_reaped.inc(len(dead))
            logger.warning("reaped dead server processes: %s", ", ".join(dead))
        # [location] Users whose heartbeats stopped go OFFLINE, unless a socket holds them.
        await services.expire_heartbeats(state.shard)
        await _apply_ends(state.shard)
    except Exception:
        observability.redis_failed("housekeeping")
        if not state.failing:
            logger.exception(
                "presence housekeeping failed on %s; retrying",
                redis_clients.description(state.shard),
            )
        state.failing = True


# --- [status] Ends of status messages and chosen statuses ---------------------------------

# The most ends one round takes from a shard; the rest wait for the next round.
ENDS_PER_ROUND = 1000
# A timer may fire a little before its time (asyncio runs what is due within its clock's
# resolution), and an end applied before it is due does nothing until the next round.
_END_MARGIN_SECONDS = 0.005
_ending: set[asyncio.Task[object]] = set()


async def _apply_ends(shard: int) -> None:
    """Apply the ends on `shard` that are due before the next round, each at its time:
    friends hear of an end within moments of it, however the rounds fall. Every process
    does so; the transition applies an end once, and does nothing for an end not yet due
    or already applied."""
    interval = presence_settings().heartbeat_seconds
    now = online.now_ms()
    due = await online.ends_before(shard, now + interval * 1000, ENDS_PER_ROUND)
    loop = asyncio.get_running_loop()
    for address, at_ms in due:
        if at_ms <= now:
            await services.apply_ends(address)
        else:
            loop.call_later((at_ms - now) / 1000 + _END_MARGIN_SECONDS, _end_later, address)


def _end_later(address: str) -> None:
    task = asyncio.get_running_loop().create_task(services.apply_ends(address))
    _ending.add(task)
    task.add_done_callback(_ended)


def _ended(task: asyncio.Task[object]) -> None:
    _ending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # The end stays due in Redis: the next round applies it.
        observability.redis_failed("housekeeping")
        logger.error("applying an end failed; the next round retries", exc_info=task.exception())


# --- [/status] -----------------------------------------------------------------------------


async def _rebuild(shard: int, data_lost: bool, cause: str) -> None:
    """Make `shard` agree with this process's live connections of the users it holds, then
    refresh every feed (any subscriber may follow them); `cause` says why, for the log.

    Connections that closed during the outage are disconnected; connections the shard lost
    (or another process reaped) are restored with their chosen status; subscribers get the
    current state of their friends.
    """
    # Registered first: the heartbeat task, meeting the same loss meanwhile, asks for no
    # second rebuild (_keep).
    registered = time.monotonic()
    await processes.heartbeat(
        INCARNATION, presence_settings().process_ttl_seconds, _published(await stats()), shard
    )
    _registered_by_rebuild[shard] = registered
    live = {
        (s.address, s.connection_id): s
        for s in list(_live_sessions)
        if s.address and shards.shard_of(s.address) == shard
    }
    held = await processes.held_by(INCARNATION, shard)
    for address, connection in held - set(live):
        await services.disconnect(address, connection)
    for key, session in live.items():
        if session in _live_sessions and (data_lost or key not in held):
            await session.restore()
    await process_channel.renew()
    # Only once every connection is back can a subscriber read its friends' true state.
    await _catch_up_all(from_scratch=data_lost)
    observability.rebuilds.inc()
    logger.warning(
        "rebuilt presence of %d live connections on %s %s",
        len(live),
        redis_clients.description(shard),
        cause,
    )


async def _caught_up(state: _ShardState) -> bool:
    """Catch every feed up after `state`'s shard came back; False if that failed.

    The catch-up reads the friends' state on every shard: a failure is another shard's
    (this one just answered), so this shard is not marked failing, nor rebuilt for it; the
    next round tries again."""
    try:
        await _catch_up_all(from_scratch=False)
    except Exception as exc:
        observability.redis_failed("housekeeping")
        if not state.catch_up_failing:
            logger.warning(
                "catching feeds up after %s came back failed on another shard (%s); retrying",
                redis_clients.description(state.shard),
                type(exc).__name__,
            )
        state.catch_up_failing = True
        return False
    state.catch_up_failing = False
    return True


async def _catch_up_all(from_scratch: bool) -> None:
    for session in list(_live_sessions):
        await session.catch_up(from_scratch)


# --- [history] ----------------------------------------------------------------------------

# The retention pass runs once per this many seconds, on one process of all.
HISTORY_PURGE_EVERY_SECONDS = 3600
# The share of each round a shard's history drain may take: a backlog beyond what it
# stores meanwhile waits for the next round, so that a burst of transitions (a reconnect
# storm) does not turn into a burst of database writes on the process.
HISTORY_DRAIN_SHARE = 0.25


async def _recording_history() -> None:
    """Store the users' presence history waiting in each shard's stream, once per heartbeat
    interval, and run the retention pass when due: a task of its own, so that a slow
    database holds up neither the reaping nor a rebuild."""
    interval = presence_settings().heartbeat_seconds
    failing: set[str] = set()
    while not _retiring.is_set():
        await asyncio.gather(
            *(
                _history_step(f"history:{shard}", _drain_history(shard, interval), failing)
                for shard in range(shards.count())
            ),
            _history_step(
                "history:retention",
                services.purge_history_if_due(INCARNATION, HISTORY_PURGE_EVERY_SECONDS),
                failing,
            ),
        )
        with suppress(TimeoutError):
            await asyncio.wait_for(_retiring.wait(), interval)


async def _drain_history(shard: int, interval: float) -> None:
    """Store the history entries waiting in `shard`'s stream, a batch at a time, for at most
    HISTORY_DRAIN_SHARE of `interval`."""
    loop = asyncio.get_running_loop()
    until = loop.time() + HISTORY_DRAIN_SHARE * interval
    while (
        await services.record_history(shard, INCARNATION) == services.HISTORY_BATCH
        and loop.time() < until
    ):
        pass


async def _history_step(name: str, step: Awaitable[object], failing: set[str]) -> None:
    """Run `step`, logging its first failure of a series; the next round retries."""
    try:
        await step
    except Exception:
        if name not in failing:
            logger.exception("presence history step %s failed; retrying", name)
        failing.add(name)
    else:
        failing.discard(name)


def restarting() -> bool:
    """Whether a connection that closes now stays counted in Redis: the process closed its
    connections for a restart, and hand_over() will disconnect what remains."""
    return _restart_reason is not None and not _retiring.is_set()


async def restart(reason: str, within: float) -> int:
    """Close every connection for a restart, with `reason`; once they are closed (or after
    `within` seconds), return how many were signed in. Those stay counted in Redis until
    hand_over(), so that friends see nothing of a reconnection elsewhere."""
    global _restart_reason
    _restart_reason = reason
    sessions = list(_live_sessions)
    for session in sessions:
        session.restart(reason)
    if _live_sessions:
        try:
            await asyncio.wait_for(_all_closed.wait(), within)
        except TimeoutError:
            logger.warning("%d connections did not close within %g s", len(_live_sessions), within)
    return sum(1 for session in sessions if session.address is not None)


async def hand_over(grace_seconds: float) -> None:
    """After restart(): keep the heartbeat for `grace_seconds`, while users reconnect to
    other processes, then stop the housekeeping, disconnect the connections Redis still
    counts for this process (users who did not come back go OFFLINE) and deregister it.

    Killed meanwhile, or with Redis away, the process is reaped as a dead one once its
    heartbeat expires."""
    if grace_seconds > 0:
        logger.warning("keeping closed connections counted for %g s", grace_seconds)
        await asyncio.sleep(grace_seconds)
    _retiring.set()
    await asyncio.gather(*_tasks, return_exceptions=True)
    try:
        released = await services.retire_process(INCARNATION)
    except Exception:
        # A shard that failed is logged by retire_process; this is the last publication.
        logger.exception("sending the last presence changes of this process failed")
        return
    logger.warning("disconnected %d connections that did not come back", released)
