"""What processes tell each other through the channel layer, typed, and its encoding.

A presence change goes to the group of the user who changed (`presence.<address>`), joined
by every process that holds a follower of theirs. The others go to a user's own group
(`user.<address>`), joined by every process that holds a connection of that user, and carry
the user they are for. Each message has a `type`; receivers dispatch on it as Channels'
consumers do (`presence.changed` -> `presence_changed`).
"""

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar


class Status(IntEnum):
    """The numbers of Status.StatusType on the wire."""

    ONLINE = 0
    OFFLINE = 1
    AWAY = 2


# By wire number: indexing a tuple is several times cheaper than calling the enum, which
# counts when a query parses a thousand friends.
STATUS_BY_NUMBER = tuple(sorted(Status, key=int))

# [conn] The kinds of device a connection may say it is. One that says nothing is a desktop:
# Decentraland's explorer is a desktop client.
DESKTOP, MOBILE, WEB = "desktop", "mobile", "web"
DEVICE_KINDS = (DESKTOP, MOBILE, WEB)


def device_kind(said: str | None) -> str:
    """The device kind a connection said it is (None: it said nothing, a desktop); ValueError
    for any other word than DEVICE_KINDS'."""
    if said is None:
        return DESKTOP
    kind = said.strip().lower()
    if kind not in DEVICE_KINDS:
        # A WebSocket close frame's reason holds 123 bytes: the value is cut short.
        raise ValueError(f"unknown device {said[:20]!r}: say desktop, mobile or web")
    return kind


# --- [location] ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Location:
    """Where a user is, as Decentraland clients name it: a realm (a world is a realm named
    like `name.dcl.eth`) and a parcel."""

    realm: str
    x: int
    y: int


def encode_location(location: Location | None) -> list[str | int] | None:
    return None if location is None else [location.realm, location.x, location.y]


def decode_location(value: list[str | int] | None) -> Location | None:
    if value is None:
        return None
    realm, x, y = value
    return Location(str(realm), int(x), int(y))


# --- [/location] --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Presence:
    """A user as their friends see them."""

    address: str
    status: Status
    # Grows with every visible change: a follower drops what is older than what it showed.
    version: int
    # When the last visible change happened; for a published change, its transition time,
    # the time delivery is measured from.
    last_seen_ms: int | None
    # [status] The status message the user shows while visible; "" for none, and always ""
    # while OFFLINE.
    message: str = ""
    # [conn] The sorted, distinct kinds (DEVICE_KINDS) of the user's open connections;
    # () when OFFLINE.
    devices: tuple[str, ...] = ()
    # [location] Where the user is, if they share it; None while OFFLINE, always.
    location: Location | None = None
    # A change as published, rather than a state read (a snapshot, a catch-up).
    live: bool = field(default=False, compare=False)
    # [privacy] Who may see this user, as the store mirrors it (presence.sharing); "" for
    # every friend. Never on the wire: each viewer is shown what presence.sharing.shown
    # makes of it.
    audience: str = field(default="", compare=False, repr=False)

    def seen_as(self) -> tuple[object, ...]:
        """What a friend sees of the user, versions and times aside: a follower shows a
        change only when this differs from what it showed."""
        return (self.status, self.message, self.devices, self.location)


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    type: ClassVar[str] = "presence.changed"
    presence: Presence


@dataclass(frozen=True, slots=True)
class FriendshipNotice:
    """A committed friendship event, told to both users."""

    type: ClassVar[str] = "friendship.notice"
    action: str
    actor: str
    target: str
    message: str
    created_at_ms: int
    event_id: int

    def other(self, address: str) -> str:
        """The user on the far side from `address`."""
        return self.target if self.actor == address else self.actor


@dataclass(frozen=True, slots=True)
class SessionRevoked:
    """The user's tokens were revoked: their connections close."""

    type: ClassVar[str] = "session.revoked"


@dataclass(frozen=True, slots=True)
class SessionDisconnect:
    """An operator disconnects the user: their connections close with `reason`."""

    type: ClassVar[str] = "session.disconnect"
    reason: str


UserEvent = FriendshipNotice | SessionRevoked | SessionDisconnect
Event = PresenceChanged | UserEvent

_RECIPIENT = "recipient"


def handler_name(event: Event) -> str:
    """The method a receiver handles `event` with, as Channels names them."""
    return event.type.replace(".", "_")


def encode_presence(change: PresenceChanged) -> dict[str, Any]:
    presence = change.presence
    return {
        "type": PresenceChanged.type,
        "address": presence.address,
        "status": int(presence.status),
        "version": presence.version,
        "last_seen_ms": presence.last_seen_ms,
        # [status]
        **({"message": presence.message} if presence.message else {}),
        # [privacy] Receivers filter per follower with it, without asking Redis.
        **({"audience": presence.audience} if presence.audience else {}),
        # [location]
        **({"location": encode_location(presence.location)} if presence.location else {}),
        # [conn]
        **({"devices": list(presence.devices)} if presence.devices else {}),
    }


def encode_to_user(event: UserEvent, recipient: str) -> dict[str, Any]:
    """`event` for the group of `recipient`, naming them: the process channel that receives
    it hands it to that user's connections only."""
    fields = {name: getattr(event, name) for name in event.__dataclass_fields__}
    return {"type": event.type, _RECIPIENT: recipient, **fields}


def decode(message: dict[str, Any]) -> tuple[Event, str | None]:
    """The event a channel-layer message carries, and the user it is for (None for a
    presence change, which is for its user's followers)."""
    kind = message["type"]
    if kind == PresenceChanged.type:
        presence = Presence(
            message["address"],
            STATUS_BY_NUMBER[message["status"]],
            message["version"],
            message["last_seen_ms"],
            message=message.get("message", ""),
            location=decode_location(message.get("location")),  # [location]
            devices=tuple(message.get("devices", ())),  # [conn]
            live=True,
            audience=message.get("audience", ""),
        )
        return PresenceChanged(presence), None
    fields = {k: v for k, v in message.items() if k not in ("type", _RECIPIENT)}
    return _USER_EVENTS[kind](**fields), message[_RECIPIENT]


_USER_EVENTS: dict[str, type[UserEvent]] = {
    kind.type: kind for kind in (FriendshipNotice, SessionRevoked, SessionDisconnect)
}
