"""How many friendship actions a user may take, shared by every process through the cache.

The numbers are Decentraland's social service's: 30 actions a minute per user, and 10 a
minute per pair of users. A friendship's pair is unordered; a block's is ordered, so one
user cannot spend the budget the other needs to block back.
"""

import time

from django.conf import settings
from django.core.cache import cache

from friendships.models import FriendshipAction

_WINDOW_SECONDS = 60
_DIRECTIONAL = {FriendshipAction.BLOCK, FriendshipAction.UNBLOCK}


def _hit(key: str, limit: int) -> bool:
    counter = f"friendship-rate:{key}:{int(time.time()) // _WINDOW_SECONDS}"
    cache.add(counter, 0, timeout=_WINDOW_SECONDS * 2)
    return cache.incr(counter) <= limit


def allow_action(actor: str, other: str, action: FriendshipAction) -> bool:
    """Count the action; False when the user or the pair is over its limit."""
    pair = f"{actor}>{other}" if action in _DIRECTIONAL else "~".join(sorted((actor, other)))
    return _hit(f"user:{actor}", settings.PRESENCE["FRIENDSHIP_ACTIONS_PER_MINUTE"]) and _hit(
        f"pair:{pair}", settings.PRESENCE["FRIENDSHIP_ACTIONS_PER_PAIR_PER_MINUTE"]
    )


def seconds_to_next_window() -> float:
    return _WINDOW_SECONDS - time.time() % _WINDOW_SECONDS
