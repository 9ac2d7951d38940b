"""Who may see a user: the audience rule, and what a viewer is shown of a presence.

A user's sharing (friendships.selectors.Sharing) is mirrored on their shard as an audience
rule, a short JSON text carried by every `Presence` read or published (`Presence.audience`,
"" for every friend), so a process filters per viewer without asking Redis or the database.
A friend who may not see the presence is shown exactly an OFFLINE presence with the
last_seen frozen when hiding started for them, as if the user had gone offline then; a friend
who may see the presence but not the location is shown it without the location.
"""

import dataclasses
import functools
import json

from friendships.sharing import LocationAudience, PresenceAudience, Sharing
from presence.events import Presence, Status

EVERYONE = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Audience:
    """A sharing as delivery applies it, with the last_seen each hidden viewer is shown."""

    presence: str = PresenceAudience.ALL.value
    presence_list: frozenset[str] = frozenset()
    location: str = LocationAudience.ALL.value
    location_list: frozenset[str] = frozenset()
    # The last_seen shown to a hidden viewer: theirs in `frozen`, else `frozen_rest`.
    frozen: dict[str, int | None] = dataclasses.field(default_factory=dict, hash=False)
    frozen_rest: int | None = None

    def sees_presence(self, viewer: str) -> bool:
        if self.presence == PresenceAudience.ONLY:
            return viewer in self.presence_list
        if self.presence == PresenceAudience.EXCEPT:
            return viewer not in self.presence_list
        return True

    def sees_location(self, viewer: str) -> bool:
        if self.location == LocationAudience.NOBODY:
            return False
        if self.location == LocationAudience.ONLY:
            return viewer in self.location_list
        return self.sees_presence(viewer)

    def frozen_for(self, viewer: str) -> int | None:
        return self.frozen.get(viewer, self.frozen_rest)

    def encode(self) -> str:
        if self.presence == PresenceAudience.ALL and self.location == LocationAudience.ALL:
            return EVERYONE
        return json.dumps(
            {
                "p": self.presence,
                "pl": sorted(self.presence_list),
                "l": self.location,
                "ll": sorted(self.location_list),
                "f": self.frozen,
                "r": self.frozen_rest,
            },
            separators=(",", ":"),
            sort_keys=True,
        )


_ALL = Audience()


@functools.lru_cache(maxsize=4096)
def parse(audience: str) -> Audience:
    """The rule an audience text says; parsed once per distinct text on this process."""
    if not audience:
        return _ALL
    rule = json.loads(audience)
    return Audience(
        presence=rule["p"],
        presence_list=frozenset(rule["pl"]),
        location=rule["l"],
        location_list=frozenset(rule["ll"]),
        frozen=rule["f"],
        frozen_rest=rule["r"],
    )


def shown(presence: Presence, viewer: str) -> Presence:
    """What `viewer`, a friend of `presence`'s user, is shown of it."""
    if not presence.audience:
        return presence
    rule = parse(presence.audience)
    if not rule.sees_presence(viewer):
        return Presence(presence.address, Status.OFFLINE, presence.version, rule.frozen_for(viewer))
    if presence.location is not None and not rule.sees_location(viewer):
        return dataclasses.replace(presence, location=None)
    return presence


def sees(audience: str, viewer: str) -> bool:
    """Whether `viewer` sees the presence of a user whose audience text is `audience`."""
    return not audience or parse(audience).sees_presence(viewer)


def following(previous: str, sharing: Sharing, hide_at: int | None) -> str:
    """The audience text of `sharing`, replacing `previous`: a viewer it hides who was hidden
    already keeps their frozen last_seen, one it starts hiding gets `hide_at` (now if the
    user is visible, else their last_seen: what they would see had the user gone offline
    now)."""
    old = parse(previous)
    listed = frozenset(sharing.presence_list)
    new = Audience(
        presence=sharing.presence,
        presence_list=listed,
        location=sharing.location,
        location_list=frozenset(sharing.location_list),
    )
    if sharing.presence == PresenceAudience.ALL:
        return new.encode()

    def frozen(viewer: str) -> int | None:
        return old.frozen_for(viewer) if not old.sees_presence(viewer) else hide_at

    if sharing.presence == PresenceAudience.EXCEPT:
        return dataclasses.replace(new, frozen={v: frozen(v) for v in sorted(listed)}).encode()
    # "only": everyone unlisted whom the old rule names by neither list nor frozen value was
    # hidden by an old "only" (since its frozen_rest), or is hidden from now.
    rest = old.frozen_rest if old.presence == PresenceAudience.ONLY else hide_at
    named = (old.presence_list | old.frozen.keys()) - listed
    values = {viewer: frozen(viewer) for viewer in sorted(named)}
    return dataclasses.replace(
        new,
        frozen={viewer: value for viewer, value in values.items() if value != rest},
        frozen_rest=rest,
    ).encode()
