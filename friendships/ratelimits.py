"""How many friendship actions a user may take, shared by every process through Redis.

The numbers are Decentraland's social service's: 30 actions a minute per user, and 10 a
minute per pair of users. A friendship's pair is unordered; a block's is ordered, so one
user cannot spend the budget the other needs to block back. Only actions that are taken
count: one refused, by a rule or by these limits, spends nothing.
"""

import functools
import time

from redis.commands.core import Script

from friendships.models import FriendshipAction
from presence.conf import presence_settings
from presence_project.cache import sync_redis

_WINDOW_SECONDS = 60
_DIRECTIONAL = {FriendshipAction.BLOCK, FriendshipAction.UNBLOCK}
_COUNTER = "friendship-rate:{}:{}"  # STRING with a TTL: actions counted in one window

# KEYS: the counters; ARGV: each one's limit, then their lifetime. Counts one action on
# every counter, or on none when any is spent, so a refusal changes no count.
_TAKE = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i]) then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    redis.call('EXPIRE', key, ARGV[#KEYS + 1])
  end
end
return 1
"""


@functools.cache
def _take() -> Script:
    return sync_redis().register_script(_TAKE)


def allow_action(actor: str, other: str, action: FriendshipAction) -> bool:
    """Count the action against the user's and the pair's limits; False, counting nothing,
    when either is used up."""
    window = int(time.time()) // _WINDOW_SECONDS
    pair = f"{actor}>{other}" if action in _DIRECTIONAL else "~".join(sorted((actor, other)))
    counters = [_COUNTER.format(f"user:{actor}", window), _COUNTER.format(f"pair:{pair}", window)]
    limits = [
        presence_settings().friendship_actions_per_minute,
        presence_settings().friendship_actions_per_pair_per_minute,
    ]
    return bool(_take()(keys=counters, args=[*limits, _WINDOW_SECONDS * 2]))


def seconds_to_next_window() -> float:
    return _WINDOW_SECONDS - time.time() % _WINDOW_SECONDS
