"""Presence reads for the synchronous side (REST views, admin)."""

import time
from dataclasses import dataclass

from asgiref.sync import async_to_sync

from accounts.addresses import normalize_address
from accounts.selectors import user_exists
from friendships.selectors import friend_addresses
from presence import state
from presence.state import Presence, Status


def visible_friends(address: str) -> list[Presence]:
    """`address`'s friends that are visible (ONLINE or AWAY), by address."""
    friends = friend_addresses(address)
    visible = async_to_sync(state.visible_among)(friends)
    return [visible[friend] for friend in friends if friend in visible]


def presence_of(addresses: list[str]) -> list[Presence]:
    """Each of `addresses` as a friend sees them, offline ones included."""
    return async_to_sync(state.presence_of)(addresses)


def friends_presence(address: str) -> list[Presence]:
    """Every friend of `address` with their status, by address."""
    return presence_of(friend_addresses(address))


def open_connections(address: str) -> list[str]:
    """The ids of `address`'s open connections, on any process ("<process>/<n>")."""
    return async_to_sync(state.connections_of)(address)


def visible_page(offset: int, limit: int) -> tuple[int, list[Presence]]:
    return async_to_sync(state.visible_page)(offset, limit)


def status_of(address: str) -> str:
    """'online', 'away' or 'offline', as operators read it."""
    presence = async_to_sync(state.visible_among)([address]).get(address)
    return presence.status.name.lower() if presence else "offline"


# --- For operators: the whole service at a glance --------------------------------------------


@dataclass(frozen=True, slots=True)
class OnlineSummary:
    online: int
    away: int


def online_summary() -> OnlineSummary:
    """How many users are online and away now, across every process."""
    counts = async_to_sync(state.visible_counts)()
    return OnlineSummary(online=counts[Status.ONLINE], away=counts[Status.AWAY])


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A server process as its last heartbeat described it. A dead one (its heartbeat
    expired, not reaped yet) has no figures."""

    name: str
    alive: bool
    heartbeat_age_seconds: float | None
    connections: int | None
    presence_subscriptions: int | None
    peak_presence_backlog: int | None


def processes() -> list[ProcessInfo]:
    """Every registered server process, by name, with what it holds."""
    now_ms = time.time() * 1000
    infos = []
    for entry in async_to_sync(state.process_reports)():
        report = entry.report or {}
        at_ms = report.get("at_ms")
        infos.append(
            ProcessInfo(
                name=entry.process,
                alive=entry.report is not None,
                heartbeat_age_seconds=max(0.0, (now_ms - at_ms) / 1000) if at_ms else None,
                connections=report.get("connections"),
                presence_subscriptions=report.get("presence_subscriptions"),
                peak_presence_backlog=report.get("peak_presence_backlog"),
            )
        )
    return infos


@dataclass(frozen=True, slots=True)
class UserPresence:
    """One user as operators see them: `presence.status` is what their friends see (OFFLINE
    while they appear offline, even with connections open)."""

    presence: Presence
    connections: list[str]
    online_friends: list[Presence]


def user_presence(address: str) -> UserPresence | None:
    """The user at `address` (any case), or None if there is no such user.

    Raises accounts.addresses.InvalidAddress if `address` is not an address.
    """
    address = normalize_address(address)
    if not user_exists(address):
        return None
    (presence,) = presence_of([address])
    return UserPresence(
        presence=presence,
        connections=open_connections(address),
        online_friends=visible_friends(address),
    )
