"""The one rate-limit mechanism (presence_project/ratelimits.py), asyncio side and its
agreement with the synchronous side. Through the service, the friendship limits are
tested in test_limits.py."""

import asyncio
import time
import uuid

from presence_project.ratelimits import Limit, within_limits, within_limits_async
from tests.support import within_one_window


def limit(name: str, count: int, window_seconds: int = 60) -> Limit:
    return Limit(f"test:{uuid.uuid4().hex}:{name}", count, window_seconds)


async def within_one_second_window() -> None:
    """Start early in a second, so that a few calls share its window."""
    await asyncio.sleep(1 - time.time() % 1 + 0.01)


async def test_an_event_counts_against_every_limit_or_against_none():
    user, pair, other_pair = limit("user", 3), limit("pair", 2), limit("other-pair", 5)
    await within_one_window(3)
    assert await within_limits_async([user, pair])
    assert await within_limits_async([user, pair])
    # The pair is spent: refused, and the user's count is left as it was.
    assert not await within_limits_async([user, pair])
    assert await within_limits_async([user, other_pair])
    # Now the user is spent, whichever pair.
    assert not await within_limits_async([user, other_pair])
    assert not await within_limits_async([user])
    # The refusals counted nothing against the other pair: 4 left of 5.
    assert all([await within_limits_async([other_pair]) for _ in range(4)])
    assert not await within_limits_async([other_pair])


async def test_the_sync_and_async_sides_count_on_the_same_counters():
    shared = limit("shared", 3)
    await within_one_window(3)
    assert await asyncio.to_thread(within_limits, [shared])
    assert await within_limits_async([shared])
    assert await asyncio.to_thread(within_limits, [shared])
    assert not await within_limits_async([shared])
    assert not await asyncio.to_thread(within_limits, [shared])


async def test_a_new_window_starts_a_new_count():
    per_second = limit("per-second", 1, window_seconds=1)
    await within_one_second_window()
    assert await within_limits_async([per_second])
    assert not await within_limits_async([per_second])
    await within_one_second_window()
    assert await within_limits_async([per_second])
