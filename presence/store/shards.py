"""Which Redis shard holds a user's presence keys: the one where channels-redis places the
user's presence group (presence.layer.host_of), and with it their own group. All of a
user's keys live on one shard, so a transition stays one script on one server, and a
shard's outage stops its users alone: their state and their groups, nobody else's."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from presence.layer import host_of, presence_group
from presence_project import redis_clients

T = TypeVar("T")


def count() -> int:
    return redis_clients.shard_count()


def shard_of(address: str) -> int:
    return host_of(presence_group(address))


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
