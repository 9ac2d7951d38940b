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

from redis.asyncio import Redis

from presence.store import keys, shards
from presence.store.online import now_ms, redis
from presence_project import redis_clients
from presence_project.loops import PerLoop

# A reaped process's list of connections goes only while the process stays silent: one that
# beat again may have put its connections back in it.
_FORGET = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
"""


def _new_beat_client(shard: int) -> Redis:
    # The heartbeat's own connection: a beat never queues for the shared pool, whose
    # connections a burst of calls may hold for seconds.
    return redis_clients.client(
        asynchronous=True,
        shard=shard,
        decode_responses=True,
        max_connections=1,
        socket_timeout=5,
        socket_connect_timeout=3,
    )


_beat_clients = PerLoop(lambda: [_new_beat_client(shard) for shard in range(shards.count())])


async def heartbeat(process: str, ttl_seconds: int, stats: dict[str, int], shard: int) -> bool:
    """Say on `shard` that `process` is alive for `ttl_seconds` more, and publish its
    `stats` for operators.

    True if `process` was not registered there: its first beat, or another process reaped
    it (its heartbeat expired while it lived) or the shard lost it; then it puts its
    connections back.
    """
    beat = json.dumps({"at_ms": now_ms(), "stats": stats})
    async with _beat_clients.get()[shard].pipeline(transaction=False) as pipe:
        pipe.set(keys.HEARTBEAT.format(process), beat, ex=ttl_seconds)
        pipe.sadd(keys.PROCESSES, process)
        _, added = await pipe.execute()
    return bool(added)


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


async def claim_dead_processes(shard: int, alive: str) -> dict[str, set[tuple[str, str]]]:
    """The processes whose heartbeat expired on `shard`, each with the (address, connection
    id) pairs it held there, claimed by this caller: removing a process from the shard's set
    is the claim, so of several claimants one wins each. The caller reaps them, then calls
    `forget`. `alive` is the caller's own process, which is never dead to itself even when
    its beat is late."""
    client = redis(shard)
    others = [p for p in await client.smembers(keys.PROCESSES) if p != alive]
    # One round trip for every heartbeat, as every process checks them once an interval.
    beats = await client.mget([keys.HEARTBEAT.format(p) for p in others]) if others else []
    claimed = {}
    for process, beat in zip(others, beats, strict=True):
        if beat is None and await client.srem(keys.PROCESSES, process):
            claimed[process] = await held_by(process, shard)
    return claimed


async def unclaim(process: str, shard: int) -> None:
    """Give back a claimed process whose reaping failed half way: its list holds the
    connections not reaped yet, and its heartbeat is still gone."""
    await redis(shard).sadd(keys.PROCESSES, process)


async def forget(process: str, shard: int) -> None:
    """Drop a reaped process's list of connections on `shard`, unless it beats again."""
    await redis(shard).eval(
        _FORGET, 2, keys.HEARTBEAT.format(process), keys.PROCESS_CONNECTIONS.format(process)
    )


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
