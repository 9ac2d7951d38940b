"""Presence reads for the synchronous side (REST views, admin, management commands)."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from asgiref.sync import async_to_sync
from django.db.models import QuerySet

from accounts.addresses import normalize_address
from accounts.models import User
from friendships.selectors import friend_addresses, sharing_of
from friendships.sharing import Sharing
from presence.events import Location, Presence
from presence.models import HistoryEntry, HistoryErasure
from presence.store import online
from presence.store.processes import process_beats


def visible_friends(address: str) -> list[Presence]:
    """`address`'s friends that are visible (ONLINE or AWAY) to them, by address."""
    friends = friend_addresses(address)
    visible = async_to_sync(online.visible_among)(friends, viewer=address)
    return [visible[friend] for friend in friends if friend in visible]


def choices_of(address: str) -> online.Choices:
    """[status] What `address` chose: their status while connected, message, their ends."""
    return async_to_sync(online.choices_of)(address)


def presence_of(addresses: list[str], viewer: str | None = None) -> list[Presence]:
    """Each of `addresses` as a friend who sees them sees them, offline ones included; with
    a `viewer`, as they are shown to that friend of theirs."""
    return async_to_sync(online.presence_of)(addresses, viewer)


def friends_presence(address: str) -> list[Presence]:
    """Every friend of `address` with their status as shown to them, by address."""
    return presence_of(friend_addresses(address), viewer=address)


class FriendsPresence:
    """`address`'s friends by address with their presence, as a list a paginator slices:
    presence is read for the one slice asked for."""

    def __init__(self, address: str) -> None:
        self._viewer = address
        self._friends = friend_addresses(address)

    def __len__(self) -> int:
        return len(self._friends)

    def __getitem__(self, window: slice) -> list[Presence]:
        return presence_of(self._friends[window], viewer=self._viewer)


class VisibleUsers:
    """Every visible user by address, as a list a paginator slices: its length and the one
    slice asked for are each read from Redis when asked, never the whole list."""

    def __len__(self) -> int:
        return async_to_sync(online.visible_count)()

    def __getitem__(self, window: slice) -> list[Presence]:
        return async_to_sync(online.visible_page)(window.start, window.stop - window.start)


def statuses_of(addresses: list[str]) -> dict[str, str]:
    """Each of `addresses`: 'online', 'away' or 'offline', as operators read it; one read."""
    visible = async_to_sync(online.visible_statuses_among)(addresses)
    return {
        address: visible[address].name.lower() if address in visible else "offline"
        for address in addresses
    }


@dataclass(frozen=True, slots=True)
class OnlineSummary:
    """How many users their friends see ONLINE and AWAY now, across all processes."""

    online: int
    away: int


def online_summary() -> OnlineSummary:
    online_count, away = async_to_sync(online.visible_counts)()
    return OnlineSummary(online=online_count, away=away)


@dataclass(frozen=True, slots=True)
class ProcessSummary:
    """A server process as its last heartbeat described it.

    The figures are as of that heartbeat (every PRESENCE_HEARTBEAT_SECONDS); all of them are
    None for a process whose heartbeat expired: it is dead, and the next housekeeping run of
    a living process disconnects its users.
    """

    name: str
    heartbeat_age_seconds: float | None
    connections: int | None
    presence_subscriptions: int | None
    peak_presence_backlog: int | None

    @property
    def alive(self) -> bool:
        return self.heartbeat_age_seconds is not None


def processes() -> list[ProcessSummary]:
    """Every registered server process, by name."""
    now_ms = time.time() * 1000
    return [
        ProcessSummary(
            name=beat.process,
            heartbeat_age_seconds=None
            if beat.at_ms is None
            else max(0.0, (now_ms - beat.at_ms) / 1000),
            connections=beat.stats.get("connections"),
            presence_subscriptions=beat.stats.get("presence_subscriptions"),
            peak_presence_backlog=beat.stats.get("peak_presence_backlog"),
        )
        for beat in async_to_sync(process_beats)()
    ]


@dataclass(frozen=True, slots=True)
class UserPresence:
    """One user as operators see them."""

    address: str
    # 'online', 'away' or 'offline': what their friends see.
    status: str
    last_seen_ms: int | None
    # Ids of their open connections, "<process incarnation>/<n>", on every process.
    connections: list[str]
    online_friends: list[Presence]
    # [status] What they chose: their message and when it ends, when a chosen status ends.
    choices: online.Choices
    # [location] Where friends see them, if they share it.
    location: Location | None = None
    # [conn] The kinds of device friends see (none while offline), and each connection's
    # kind, with ", idle" once it is idle.
    devices: tuple[str, ...] = ()
    connection_devices: dict[str, str] = field(default_factory=dict)

    @property
    def appears_offline(self) -> bool:
        """Connected, but chose OFFLINE: friends see them offline."""
        return self.status == "offline" and bool(self.connections)


def user_presence(address: str) -> UserPresence | None:
    """`address`'s presence, connections and visible friends; None if there is no such user.

    Raises InvalidAddress for anything that is not an address.
    """
    address = normalize_address(address)
    if not User.objects.filter(pk=address).exists():
        return None
    (presence,) = presence_of([address])
    devices = async_to_sync(online.devices_of)(address)
    return UserPresence(
        address=address,
        status=presence.status.name.lower(),
        last_seen_ms=presence.last_seen_ms,
        connections=list(devices),
        online_friends=visible_friends(address),
        location=presence.location,
        choices=choices_of(address),
        devices=presence.devices,
        connection_devices={
            connection: f"{device.kind}, idle" if device.idle else device.kind
            for connection, device in devices.items()
        },
    )


def sharing(address: str) -> Sharing:
    """[privacy] Who sees `address`'s presence and location, as they chose it."""
    return sharing_of(address)


# --- [history] A user's own presence history ----------------------------------------------

# What a user's history shows without a `since`: the "recent sessions".
HISTORY_DEFAULT_DAYS = 30


def history_of(
    address: str, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[HistoryEntry]:
    """`address`'s own presence history from `since` (default: the last
    HISTORY_DEFAULT_DAYS days) until `until` (default: now), newest first; nothing from
    before their last deletion of it."""
    since = since or datetime.now(UTC) - timedelta(days=HISTORY_DEFAULT_DAYS)
    entries = HistoryEntry.objects.filter(user_id=address, at__gte=since)
    if until is not None:
        entries = entries.filter(at__lt=until)
    erased = HistoryErasure.objects.filter(user_id=address).values_list("at", flat=True).first()
    if erased is not None:
        entries = entries.filter(at__gt=erased)
    return entries.order_by("-at", "-id")
