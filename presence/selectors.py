"""Presence reads for the synchronous side (REST views, admin)."""

from asgiref.sync import async_to_sync

from friendships.selectors import friend_addresses
from presence import state
from presence.state import Presence


def visible_friends(address: str) -> list[Presence]:
    """`address`'s friends that are visible (ONLINE or AWAY), by address."""
    friends = friend_addresses(address)
    visible = async_to_sync(state.visible_among)(friends)
    return [visible[friend] for friend in friends if friend in visible]


def presence_of(addresses: list[str]) -> list[Presence]:
    """Each of `addresses` as a friend sees them, offline ones included."""
    return async_to_sync(state.presence_of)(addresses)


def visible_page(offset: int, limit: int) -> tuple[int, list[Presence]]:
    return async_to_sync(state.visible_page)(offset, limit)


def status_of(address: str) -> str:
    """'online', 'away' or 'offline', as operators read it."""
    presence = async_to_sync(state.visible_among)([address]).get(address)
    return presence.status.name.lower() if presence else "offline"
