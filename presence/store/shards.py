"""Which Redis shard holds a user's presence keys: channels-redis's rule for placing groups
(a CRC-32 of the name, masked to 12 bits, over a ring of as many equal arcs as shards),
applied to the address, so that all of a user's keys live on one shard and a transition
stays one script on one server."""

import asyncio
import binascii
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from presence_project import redis_clients

T = TypeVar("T")

_RING = 4096


def ring_position(value: str, ring_size: int) -> int:
    """channels_redis.utils._consistent_hash, which is private: the agreement is a test
    (tests/test_shards.py)."""
    if ring_size == 1:
        return 0
    return int((binascii.crc32(value.encode()) & (_RING - 1)) / (_RING / ring_size))


def count() -> int:
    return redis_clients.shard_count()


def shard_of(address: str) -> int:
    return ring_position(address, count())


async def each_shard(read: Callable[[int], Awaitable[T]]) -> list[T]:
    """`read` of every shard, all at once, in shard order."""
    return list(await asyncio.gather(*(read(shard) for shard in range(count()))))


async def by_shard(
    addresses: Sequence[str], read: Callable[[int, list[str]], Awaitable[Sequence[T]]]
) -> list[T]:
    """`read(shard, its addresses)` once per shard that holds any of `addresses`, all at
    once; the answers put back in the order of `addresses`."""
    if count() == 1:
        return list(await read(0, list(addresses)))
    positions: dict[int, list[int]] = {}
    for position, address in enumerate(addresses):
        positions.setdefault(shard_of(address), []).append(position)
    answers = await asyncio.gather(
        *(read(shard, [addresses[p] for p in held]) for shard, held in positions.items())
    )
    merged: list[T] = [None] * len(addresses)  # type: ignore[list-item]
    for held, answer in zip(positions.values(), answers, strict=True):
        for position, value in zip(held, answer, strict=True):
            merged[position] = value
    return merged
