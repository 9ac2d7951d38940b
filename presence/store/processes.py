"""Server processes in Redis: heartbeats, the connections each holds, and Redis's epoch,
all per shard.

Each process keeps a heartbeat key that expires on every shard, and on each shard the set
of its connections whose users live there. When a heartbeat expires on a shard (the process
died without cleaning up), any living process claims the dead one's connections on that
shard, and presence.services disconnects them as if they had closed. A shard that lost its
data shows a new epoch, and each process rebuilds its share of that shard alone.
"""

import json
import uuid
from dataclasses import dataclass

from presence.store import keys, shards
from presence.store.online import now_ms, redis


async def heartbeat(process: str, ttl_seconds: int, stats: dict[str, int], shard: int) -> None:
    """Say on `shard` that `process` is alive for `ttl_seconds` more, and publish its
    `stats` for operators."""
    beat = json.dumps({"at_ms": now_ms(), "stats": stats})
    async with redis(shard).pipeline(transaction=False) as pipe:
        pipe.set(keys.HEARTBEAT.format(process), beat, ex=ttl_seconds)
        pipe.sadd(keys.PROCESSES, process)
        await pipe.execute()


@dataclass(frozen=True, slots=True)
class ProcessBeat:
    """A registered process as its last heartbeat left it."""

    process: str
    # When the process last beat, by its own clock; None once its heartbeat has expired (it
    # is dead, not reaped yet) or if it publishes no stats.
    at_ms: int | None
    stats: dict[str, int]


def _parse_beat(process: str, raw: str | None) -> ProcessBeat:
    try:
        beat = json.loads(raw) if raw is not None else None
    except ValueError:
        beat = None
    if not isinstance(beat, dict):
        # Expired, or written by a version that published no stats.
        return ProcessBeat(process, None, {})
    return ProcessBeat(process, int(beat["at_ms"]), dict(beat["stats"]))


async def _shard_beats(shard: int) -> list[ProcessBeat]:
    client = redis(shard)
    processes = sorted(await client.smembers(keys.PROCESSES))
    beats = await client.mget([keys.HEARTBEAT.format(p) for p in processes]) if processes else []
    return [_parse_beat(p, raw) for p, raw in zip(processes, beats, strict=True)]


async def process_beats() -> list[ProcessBeat]:
    """Every registered process with its latest heartbeat on any shard, by name."""
    latest: dict[str, ProcessBeat] = {}
    for beats in await shards.each_shard(_shard_beats):
        for beat in beats:
            known = latest.get(beat.process)
            if known is None or (beat.at_ms or 0) > (known.at_ms or 0):
                latest[beat.process] = beat
    return [latest[process] for process in sorted(latest)]


async def claim_dead_processes(shard: int) -> dict[str, set[tuple[str, str]]]:
    """The processes whose heartbeat expired on `shard`, each with the (address, connection
    id) pairs it held there, claimed by this caller: removing a process from the shard's set
    is the claim, so of several claimants one wins each. The caller disconnects them, then
    calls `forget`."""
    client = redis(shard)
    claimed = {}
    for process in await client.smembers(keys.PROCESSES):
        if await client.exists(keys.HEARTBEAT.format(process)):
            continue
        if await client.srem(keys.PROCESSES, process):
            claimed[process] = await held_by(process, shard)
    return claimed


async def forget(process: str, shard: int) -> None:
    """Drop a reaped process's list of connections on `shard`."""
    await redis(shard).delete(keys.PROCESS_CONNECTIONS.format(process))


async def retire(process: str, shard: int) -> None:
    """Deregister a process that shut down cleanly from `shard`: nobody is to reap it."""
    async with redis(shard).pipeline(transaction=True) as pipe:
        pipe.srem(keys.PROCESSES, process)
        pipe.delete(keys.HEARTBEAT.format(process), keys.PROCESS_CONNECTIONS.format(process))
        await pipe.execute()


async def held_by(process: str, shard: int) -> set[tuple[str, str]]:
    """(address, connection id) of every connection `shard` believes `process` holds."""
    members = await redis(shard).smembers(keys.PROCESS_CONNECTIONS.format(process))
    return {tuple(member.split(" ", 1)) for member in members}  # type: ignore[misc]


async def epoch(shard: int) -> str:
    """A value that changes when `shard` may have lost writes, so processes can rebuild:
    when it lost its data, and when another server answers (a Sentinel failover promotes a
    replica that asynchronous replication may have left behind)."""
    client = redis(shard)
    await client.set(keys.EPOCH, uuid.uuid4().hex, nx=True)
    data = await client.get(keys.EPOCH)
    server = (await client.info("server"))["run_id"]
    return f"{data}@{server}"
