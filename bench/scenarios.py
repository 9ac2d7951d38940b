"""The five measured scenarios. Each starts its own servers on a flushed Redis, drives them
from client processes and returns raw figures (JSON-ready) for the report."""

import asyncio
import contextlib
import math
import multiprocessing
import os
import signal
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis

from bench import graph as bench_graph
from bench import load, system
from bench.profiling import Profile, Sampler
from bench.stats import Histogram, median

ONLINE, OFFLINE, AWAY = load.ONLINE, load.OFFLINE, load.AWAY
TARGET_RATE = 10_000  # updates delivered per second that the throughput target asks for
ROUND_GAP_SECONDS = 0.1  # between fan-out rounds

# What each system is, as the report names it.
LABELS = {
    "pubsub": "service, RedisPubSubChannelLayer",
    "core": "service, RedisChannelLayer",
    "relay": "floor: websockets + Redis pub/sub relay",
}


@dataclass
class Settings:
    """How long and how often: --quick shortens every scenario, sizes stay the same."""

    runs: int = 5
    fanout_rounds: int = 40
    throughput_runs: int = 3
    throughput_rates: tuple[int, ...] = (
        1000,
        2000,
        3000,
        5000,
        7500,
        10000,
        15000,
        20000,
        30000,
        40000,
        60000,
    )
    step_seconds: float = 5.0
    query_count: int = 200
    connection_runs: int = 2
    soak_minutes: float = 15.0
    soak_pause: float = 20.0
    crash_runs: int = 5
    crash_load_seconds: float = 60.0
    workers: int = 3
    profile: bool = False
    # A checkout of earlier code for the storm's pairs (bench/storm.py), or None.
    storm_before: str | None = None


@dataclass
class Context:
    graph: bench_graph.Graph
    sizes: bench_graph.Sizes
    settings: Settings
    database_url: str
    redis_url: str
    work_dir: Path
    relay_file: Path
    profiles: list[Profile] = field(default_factory=list)
    # The Redis-protocol servers' processes, when local: their CPU is read beside the server's.
    redis_pids: list[int] = field(default_factory=list)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def start(
        self, kind: str, processes: int = 1, extra: dict[str, str] | None = None
    ) -> list[system.Server]:
        """Fresh servers of `kind` (pubsub, core or relay) on a flushed Redis, with `extra`
        added to the service's environment."""
        with self.redis() as client:
            client.flushdb()
        if kind == "relay":
            return [
                system.relay(i, self.redis_url, self.relay_file, self.work_dir)
                for i in range(processes)
            ]
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CHANNEL_LAYER": kind,
            **(extra or {}),
        }
        return [system.daphne(i, env, self.work_dir) for i in range(processes)]

    def profile(self, server: system.Server, name: str) -> Sampler | None:
        if not self.settings.profile:
            return None
        slug = "".join(c if c.isalnum() else "-" for c in name)
        return Sampler(server.pid, self.work_dir / f"profile-{slug}.txt", name)

    def keep(self, sampler: Sampler | None) -> None:
        if sampler is not None:
            self.profiles.append(sampler.stop())


class Load:
    """The client processes, and the commands the runner sends them."""

    def __init__(self, count: int) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for _ in range(count):
            ours, theirs = spawn.Pipe()
            process = spawn.Process(
                target=load.main, args=(theirs, system.load_cores()), daemon=True
            )
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def send(self, worker: int, command: str, **arguments: Any) -> None:
        self.pipes[worker].send((command, arguments))

    def receive(self, worker: int, timeout: float = 600) -> dict[str, Any]:
        if not self.pipes[worker].poll(timeout):
            raise TimeoutError(f"client process {worker} did not answer within {timeout} s")
        answer = self.pipes[worker].recv()
        if "error" in answer:
            raise RuntimeError(f"client process {worker}: {answer['error']}")
        return answer

    def call(self, worker: int, command: str, **arguments: Any) -> dict[str, Any]:
        self.send(worker, command, **arguments)
        return self.receive(worker)

    def all(
        self,
        command: str,
        per_worker: list[dict[str, Any]] | None = None,
        wait: float = 600,
        **arguments: Any,
    ) -> list[dict[str, Any]]:
        """Send `command` to every worker, then gather every answer."""
        for worker in range(len(self.pipes)):
            self.send(worker, command, **(per_worker[worker] if per_worker else arguments))
        return [self.receive(worker, wait) for worker in range(len(self.pipes))]

    def close(self) -> None:
        for worker, process in enumerate(self.processes):
            if process.is_alive():
                with contextlib.suppress(OSError, TimeoutError, RuntimeError):
                    self.call(worker, "exit")
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


def _users(ctx: Context, addresses: list[str], ports: list[int]) -> list[load.User]:
    return [
        load.User(
            address,
            ctx.graph.tokens[address],
            frozenset(ctx.graph.friends.get(address, ())),
            ports[i % len(ports)],
        )
        for i, address in enumerate(addresses)
    ]


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def _open(
    load_: Load,
    shares: list[list[load.User]],
    subscribe: bool = True,
    wait_first: bool = False,
    concurrency: int = 16,
) -> list[dict[str, Any]]:
    """Every worker opens its share of users; any failed connection fails the scenario."""
    return _opened(
        load_.all(
            "open",
            [
                {
                    "users": share,
                    "subscribe": subscribe,
                    "wait_first": wait_first,
                    "concurrency": concurrency,
                }
                for share in shares
            ],
        )
    )


def _opened(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    failed = sum(a["failed"] for a in answers)
    if failed:
        errors = [e for a in answers for e in a["errors"]]
        raise RuntimeError(f"{failed} connections failed, e.g. {errors[:3]}")
    return answers


def _stop(servers: list[system.Server], load_: Load | None) -> None:
    if load_ is not None:
        load_.close()
    for server in servers:
        server.stop()


def _settle_all(pids: list[int], limit: float = 120) -> float:
    """Wait until the servers have been idle (< 5 % of a core each) for 2 s: backlogs done."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        meter = system.CpuMeter(pids)
        time.sleep(2)
        if meter.read() < 0.05 * len(pids):
            break
    return time.monotonic() - started


def _summary(histograms: list[Histogram]) -> dict[str, Any]:
    """Per run p50/p99/max, and the medians over runs."""
    runs = [
        {
            "p50_us": h.percentile(0.5),
            "p99_us": h.percentile(0.99),
            "max_us": h.percentile(1.0),
            "samples": h.total,
        }
        for h in histograms
    ]
    return {
        "runs": runs,
        "p50_us": median(r["p50_us"] for r in runs),
        "p99_us": median(r["p99_us"] for r in runs),
    }


# --- Fan-out latency -----------------------------------------------------------------------


def _status_spacing() -> float:
    """Seconds between two changes of one user that neither the flap coalescing nor the
    status rate limit of the service's settings would hold back."""
    from presence.conf import presence_settings

    presence = presence_settings()
    coalesce = presence.status_coalesce_ms / 1000
    per_minute = presence.status_changes_per_minute
    return max(coalesce + 0.05, 60 / per_minute * 1.2 if per_minute else 0)


def fanout(ctx: Context, kind: str) -> dict[str, Any]:
    """One user with F online subscribed friends goes ONLINE, then OFFLINE, and so on; each
    round times the request sent until the last friend's update arrived. Every round waits
    for the previous one, so each measures one change on an otherwise idle service."""
    settings, groups = ctx.settings, ctx.graph.groups
    servers = ctx.start(kind)
    ports = [s.port for s in servers]
    receivers = settings.workers
    load_ = Load(1 + receivers)
    try:
        actors = _users(ctx, groups["actors"], ports)
        # The graph may hold friends for larger F than this run's (bench/capacity.py).
        largest = max(ctx.sizes.fanout_friends)
        audience = _users(ctx, groups["fan-friends"][:largest] + groups["idle"], ports)
        _opened(
            load_.all(
                "open",
                [
                    {"users": actors, "subscribe": False, "wait_first": False, "concurrency": 4},
                    *(
                        {"users": share, "subscribe": True, "wait_first": False, "concurrency": 16}
                        for share in _split(audience, receivers)
                    ),
                ],
            )
        )
        load_.all("set_all", status=ONLINE)
        # A layer that loses messages leaves some views incomplete: counted, not fatal.
        views = load_.all("wait_views", status=ONLINE, timeout=60)
        incomplete = sum(a["incomplete"] for a in views)
        status = {actor.address: ONLINE for actor in actors}
        last_change = {actor.address: 0.0 for actor in actors}
        spacing = _status_spacing()

        def rounds(turns: list[str], friends: list[str], count: int) -> tuple[Histogram, int]:
            """`count` rounds, the users of `turns` taking turns."""
            histogram, lost = Histogram(), 0
            for number in range(count):
                actor = turns[number % len(turns)]
                wait = last_change[actor] + spacing - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                wanted = ONLINE if status[actor] == OFFLINE else OFFLINE
                for worker in range(1, 1 + receivers):
                    load_.send(worker, "expect", actor=actor, status=wanted, friends=friends)
                for worker in range(1, 1 + receivers):
                    load_.receive(worker)
                sent = load_.call(0, "set_status", address=actor, status=wanted)["sent_ns"]
                last_change[actor] = time.monotonic()
                status[actor] = wanted
                for worker in range(1, 1 + receivers):
                    load_.send(worker, "collect", timeout=10)
                answers = [load_.receive(worker) for worker in range(1, 1 + receivers)]
                if any(a["missing"] for a in answers):
                    lost += 1
                else:
                    histogram.add((max(a["last_ns"] for a in answers) - sent) / 1000)
                # The friends' acks of this round are still coming in: let the server finish
                # them, so that the next change meets an otherwise idle service.
                time.sleep(ROUND_GAP_SECONDS)
            return histogram, lost

        plan = [
            (size, bench_graph.actors_of(size, ctx.sizes), groups["fan-friends"][:size])
            for size in ctx.sizes.fanout_friends
        ]
        by_size: dict[int, list[Histogram]] = defaultdict(list)
        lost: dict[int, int] = defaultdict(int)
        for _, turns, friends in plan:
            rounds(turns, friends, 4)
        for _ in range(settings.runs):
            for size, turns, friends in plan:
                histogram, missed = rounds(turns, friends, settings.fanout_rounds)
                by_size[size].append(histogram)
                lost[size] += missed
        size, turns, friends = plan[-1]
        sampler = ctx.profile(servers[0], f"fan-out F={size}, {kind}")
        if sampler is not None:
            rounds(turns, friends, settings.fanout_rounds)
            ctx.keep(sampler)
        return {
            "system": kind,
            "label": LABELS[kind],
            "connections": len(actors) + len(audience),
            "incomplete_views_after_setup": incomplete,
            "by_friends": {
                str(size): {**_summary(by_size[size]), "lost_rounds": lost[size]}
                for size, _, _ in plan
            },
        }
    finally:
        _stop(servers, load_)


# --- Delivery throughput --------------------------------------------------------------------


def _step_figures(
    sent: list[tuple[str, int, int, int]],
    receipts: list[tuple[str, int, int]],
    friends: int,
    window: tuple[int, int],
) -> dict[str, Any]:
    """Join changes to the updates that carried them, by (user, last_seen): the sender
    knows the wall-clock window in which the server stamped its change."""
    arrivals: dict[str, dict[int, list[int]]] = defaultdict(dict)
    start, end = window
    delivered = 0
    for friend, last_seen, received in receipts:
        entry = arrivals[friend].setdefault(last_seen, [0, 0])
        entry[0] += 1
        entry[1] = max(entry[1], received)
        if start <= received <= end:
            delivered += 1
    histogram = Histogram()
    incomplete = 0
    for address, sent_ns, before, after in sent:
        seen = arrivals.get(address, {})
        found = [seen[ms] for ms in range(before, after + 1) if ms in seen]
        if len(found) == 1 and found[0][0] >= friends:
            histogram.add((found[0][1] - sent_ns) / 1000)
        else:
            incomplete += 1
    seconds = (end - start) / 1e9
    return {
        "changes": len(sent),
        "delivered_per_s": delivered / seconds,
        "p50_us": histogram.percentile(0.5),
        "p99_us": histogram.percentile(0.99),
        "incomplete": incomplete,
    }


def throughput(ctx: Context, kind: str, processes: int = 1) -> dict[str, Any]:
    """Every user changes status in turn (ONLINE <-> AWAY) at a fixed total rate; the rate
    steps up until the service falls behind. Updates delivered are presence entries the
    clients received; latency is per change, to the last of its 50 friends."""
    settings = ctx.settings
    mesh = ctx.graph.groups["mesh"]
    friends = ctx.sizes.mesh_friends
    servers = ctx.start(kind, processes)
    load_ = Load(settings.workers)
    try:
        incomplete = _mesh_online(ctx, load_, servers)
        server_pids = [s.pid for s in servers]

        def step(rate: int) -> dict[str, Any]:
            return _delivery_step(ctx, load_, server_pids, friends, rate)

        runs = []
        for _ in range(settings.throughput_runs):
            steps = []
            for rate in settings.throughput_rates:
                figures = step(rate)
                steps.append(figures)
                if (
                    figures["delivered_per_s"] < 0.9 * rate
                    or figures["p99_us"] > 1_000_000
                    or math.isnan(figures["p99_us"])
                ):
                    # Behind: stop, but always measure the target's rate once.
                    if rate < TARGET_RATE:
                        _settle_all(server_pids)
                        steps.append(step(TARGET_RATE))
                    break
            runs.append(_ramp_summary(steps))
            _settle_all(server_pids)
        # At the target's rate, and beyond the peak, where every sample is a cost per update.
        peak = median(r["peak_per_s"] for r in runs)
        beyond = next((r for r in settings.throughput_rates if r > peak), TARGET_RATE)
        for rate in dict.fromkeys((TARGET_RATE, beyond)):
            sampler = ctx.profile(servers[0], f"throughput {rate} updates/s, {kind} x{processes}")
            if sampler is not None:
                step(rate)
                ctx.keep(sampler)
                _settle_all(server_pids)
        return {
            "system": kind,
            "label": LABELS[kind],
            "users": len(mesh),
            "friends": friends,
            "incomplete_views_after_setup": incomplete,
            "processes": processes,
            "runs": runs,
            "sustained_per_s": median(r["sustained_per_s"] for r in runs),
            "peak_per_s": median(r["peak_per_s"] for r in runs),
            "at_10000": {
                key: median(r["at_10000"][key] for r in runs if r["at_10000"])
                for key in ("delivered_per_s", "p50_us", "p99_us", "server_cores", "client_cores")
            },
        }
    finally:
        _stop(servers, load_)


def _mesh_online(ctx: Context, load_: Load, servers: list[system.Server]) -> int:
    """Connect the mesh's users, subscribed, spread over the workers and `servers`, and make
    them ONLINE; how many views were still incomplete after a minute."""
    users = _users(ctx, ctx.graph.groups["mesh"], [s.port for s in servers])
    _open(load_, _split(users, ctx.settings.workers))
    load_.all("set_all", status=ONLINE)
    views = load_.all("wait_views", status=ONLINE, timeout=60)
    return sum(a["incomplete"] for a in views)


def _delivery_step(
    ctx: Context, load_: Load, server_pids: list[int], friends: int, rate: int, walk: bool = False
) -> dict[str, Any]:
    """`rate` updates offered per second for a step: changes round robin over every worker's
    users, each to its `friends` (status changes, or with `walk` location changes), with what
    was delivered, its latency and the CPU it took."""
    settings = ctx.settings
    per_worker = rate / friends / settings.workers
    load_.all("record", on=True)
    server_cpu, client_cpu = system.CpuMeter(server_pids), system.CpuMeter(load_.pids)
    redis_cpu = system.CpuMeter(ctx.redis_pids)
    started = time.monotonic_ns()
    answers = load_.all("changes", rate=per_worker, duration=settings.step_seconds, walk=walk)
    cpu = {
        "server_cores": server_cpu.read(),
        "client_cores": client_cpu.read(),
        "redis_cores": redis_cpu.read(),
    }
    time.sleep(1.0)
    load_.all("record", on=False)
    taken = load_.all("take_receipts")
    receipts = [r for a in taken for r in a["receipts"]]
    items = sum(a["items"] for a in taken)
    sent = [s for a in answers for s in a["sent"]]
    window = (started, started + int(settings.step_seconds * 1e9))
    return {
        "offered_per_s": rate,
        **_step_figures(sent, receipts, friends, window),
        # Above 1 when a friend's changes waited for the client's ack and went out together:
        # the per-frame costs are then shared.
        "updates_per_item": len(receipts) / items if items else math.nan,
        "skipped": sum(a["skipped"] for a in answers),
        "failed": sum(a["failed"] for a in answers),
        **cpu,
    }


def _ramp_summary(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest offered rate delivered in full with p99 <= 100 ms, and the peak rate."""
    kept = [
        s["offered_per_s"]
        for s in steps
        if s["delivered_per_s"] >= 0.95 * s["offered_per_s"]
        and s["p99_us"] <= 100_000
        and s["incomplete"] <= 0.01 * max(1, s["changes"])
    ]
    at_10000 = next((s for s in steps if s["offered_per_s"] == TARGET_RATE), None)
    return {
        "steps": steps,
        "sustained_per_s": max(kept, default=0),
        "peak_per_s": max(s["delivered_per_s"] for s in steps),
        "at_10000": at_10000,
    }


# --- Location updates (issue 18) -----------------------------------------------------------

# Users' location changes per second each in the issue's performance target.
LOCATION_RATE_PER_USER = 1.0
# The service's location interval in this scenario: below one change a second, so that no
# change waits for the coalescing window (which holds changes back by design) and the
# latency measured is the delivery's.
LOCATION_INTERVAL_MS = 900


def locations(ctx: Context) -> dict[str, Any]:
    """The throughput scenario's 1,000 users x 50 subscribed friends, on one process, each
    walking (SetLocation one parcel further) instead of changing status: steps of a growing
    share of the users walking, up to all of them at one step a second each. Each location
    step has a status step at the same rate beside it, as a control measured under the same
    conditions (a shared machine's other load included)."""
    settings = ctx.settings
    mesh = ctx.graph.groups["mesh"]
    friends = ctx.sizes.mesh_friends
    extra = {"PRESENCE_LOCATION_INTERVAL_MS": str(LOCATION_INTERVAL_MS)}
    servers = ctx.start("pubsub", extra=extra)
    load_ = Load(settings.workers)
    try:
        incomplete = _mesh_online(ctx, load_, servers)
        server_pids = [s.pid for s in servers]
        target = int(len(mesh) * LOCATION_RATE_PER_USER * friends)
        runs = []
        for _ in range(settings.throughput_runs):
            steps = []
            for rate in sorted({TARGET_RATE, target}):
                for walk in (False, True):
                    figures = _delivery_step(ctx, load_, server_pids, friends, rate, walk)
                    steps.append({**figures, "walk": walk})
                    _settle_all(server_pids)
            runs.append(steps)
        return {
            "users": len(mesh),
            "friends": friends,
            "interval_ms": LOCATION_INTERVAL_MS,
            "incomplete_views_after_setup": incomplete,
            "target_per_s": target,
            "runs": runs,
        }
    finally:
        _stop(servers, load_)


# --- Online-friends query -------------------------------------------------------------------


def query(ctx: Context) -> dict[str, Any]:
    """GetOnlineFriends and GET /api/v1/friends/online/ for users with 1,000 friends (half of
    them online) among 100,000 online users, one request at a time over loopback, 40 per
    second, taking turns among 10 such users: each stays within the service's frame budget
    and REST rate, which would otherwise answer instead of the query."""
    size = max(ctx.sizes.fanout_friends)
    return query_sizes(ctx, (size,), profile=True)[size]


def query_sizes(
    ctx: Context, friend_counts: tuple[int, ...], profile: bool = False
) -> dict[int, dict[str, Any]]:
    """The online-friends query for users with each of `friend_counts` friends (every other
    one online), on one server and one seeding of the online users."""
    settings, groups = ctx.settings, ctx.graph.groups
    online_friends = groups["fan-friends"][: max(friend_counts) : 2]
    servers = ctx.start("pubsub")
    port = servers[0].port
    filler = [
        bench_graph.address("online", i)
        for i in range(ctx.sizes.online_users - len(online_friends))
    ]
    started = time.monotonic()
    visible = asyncio.run(_seed(online_friends + filler))
    seed_seconds = time.monotonic() - started
    load_ = Load(1)

    def measure(size: int) -> dict[str, Any]:
        askers = bench_graph.actors_of(size, ctx.sizes)
        tokens = [ctx.graph.tokens[a] for a in askers]
        # 40 per second up to 1,000 friends; fewer beyond, where each answer is more
        # frames, so that no asker exceeds the frame budget (PRESENCE_FRAMES_PER_SECOND).
        interval = 0.025 * max(1.0, size / 1000)
        pace = {"count": settings.query_count, "interval": interval}
        _open(load_, [_users(ctx, askers, [port])], subscribe=False)
        load_.call(0, "query_rpc", addresses=askers, count=20, interval=interval)
        load_.call(0, "query_rest", port=port, tokens=tokens, count=20, interval=interval)
        with ctx.redis() as client:
            before = client.info("commandstats")
            found = load_.call(0, "query_rpc", addresses=askers, count=100, interval=interval)
            after = client.info("commandstats")
        redis_work = _commands_per_call(before, after, 100)
        rpc, rest = [], []
        # The server's CPU per query (ms), from /proc: robust where latency is not, on a
        # machine whose other processes take the server's core now and then.
        cpu_ms: dict[str, list[float]] = {"rpc": [], "rest": []}

        def timed(kind: str, command: str, **arguments: Any) -> dict[str, Any]:
            begun, meter = time.monotonic(), system.CpuMeter([servers[0].pid])
            answer = load_.call(0, command, **arguments, **pace)
            cpu_seconds = meter.read() * (time.monotonic() - begun)
            cpu_ms[kind].append(1000 * cpu_seconds / settings.query_count)
            return answer

        for _ in range(settings.runs):
            answer = timed("rpc", "query_rpc", addresses=askers)
            rpc.append(_histogram(answer["us"]))
            answer = timed("rest", "query_rest", port=port, tokens=tokens)
            rest.append(_histogram(answer["us"]))
            found_rest = answer["found"]
        profiled = [
            ("GetOnlineFriends", "query_rpc", {"addresses": askers}),
            ("GET /api/v1/friends/online/", "query_rest", {"port": port, "tokens": tokens}),
        ]
        for name, command, arguments in profiled if profile else ():
            sampler = ctx.profile(servers[0], f"{name}, {size} friends")
            if sampler is not None:
                load_.call(0, command, **arguments, **pace)
                ctx.keep(sampler)
        load_.call(0, "close_all")
        return {
            "online_users": visible,
            "seed_seconds": seed_seconds,
            "friends": size,
            "online_friends_returned": {"rpc": found["found"], "rest": found_rest},
            "rpc": _summary(rpc),
            "rest": _summary(rest),
            "redis_per_query": redis_work,
            "server_cpu_ms": {kind: median(values) for kind, values in cpu_ms.items()},
        }

    try:
        return {size: measure(size) for size in friend_counts}
    finally:
        _stop(servers, load_)


async def _seed(addresses: list[str]) -> int:
    """Make `addresses` online; returns how many users Redis then holds as visible."""
    from channels.layers import get_channel_layer

    from presence.store import online

    await bench_graph.seed_online(addresses)
    total = await online.visible_count()
    await get_channel_layer().flush()
    return total


def _histogram(values_us: list[float]) -> Histogram:
    histogram = Histogram()
    histogram.extend(values_us)
    return histogram


def _commands_per_call(before: dict[str, Any], after: dict[str, Any], calls: int) -> dict:
    """Redis commands (and HMGET's own time) per query, from INFO commandstats."""
    per_command = {}
    for name, stats in after.items():
        count = stats["calls"] - before.get(name, {}).get("calls", 0)
        if count:
            usec = stats["usec"] - before.get(name, {}).get("usec", 0)
            per_command[name.removeprefix("cmdstat_")] = {
                "per_query": count / calls,
                "usec_per_call": usec / count,
            }
    return per_command


# --- Connection cost ------------------------------------------------------------------------


def connections(ctx: Context) -> dict[str, Any]:
    """5,000 users connect (token on the URL), load the module and subscribe; a user counts
    once the first item of its subscription arrived (each has one online friend), so the
    server finished the subscription. Memory is the daphne process's VmRSS growth."""
    settings, groups = ctx.settings, ctx.graph.groups
    users_all = groups["conn"]
    runs = []
    for _ in range(settings.connection_runs):
        with ctx.redis() as client:
            client.flushdb()
        asyncio.run(_seed(groups["anchors"]))
        env = {
            **os.environ,
            "DATABASE_URL": ctx.database_url,
            "REDIS_URL": ctx.redis_url,
            "CHANNEL_LAYER": "pubsub",
        }
        server = system.daphne(0, env, ctx.work_dir)
        load_ = Load(settings.workers)
        try:
            users = _users(ctx, users_all, [server.port])
            _opened(
                [
                    load_.call(
                        0, "open", users=users[:50], subscribe=True, wait_first=True, concurrency=8
                    )
                ]
            )
            load_.call(0, "close_all")
            time.sleep(2)
            rss_before = system.rss_kib(server.pid)
            sampler = None if runs else ctx.profile(server, "connect, authenticate, subscribe")
            begun, meter = time.monotonic(), system.CpuMeter([server.pid])
            answers = _open(load_, _split(users, settings.workers), wait_first=True, concurrency=8)
            cpu_seconds = meter.read() * (time.monotonic() - begun)
            if sampler is not None:
                ctx.keep(sampler)
            opened = sum(a["opened"] for a in answers)
            seconds = (
                max(a["finished_ns"] for a in answers) - min(a["started_ns"] for a in answers)
            ) / 1e9
            time.sleep(3)
            rss_after = system.rss_kib(server.pid)
            runs.append(
                {
                    "connections": opened,
                    "seconds": seconds,
                    "per_s": opened / seconds,
                    "rss_before_kib": rss_before,
                    "rss_after_kib": rss_after,
                    "kib_per_connection": (rss_after - rss_before) / opened,
                    "server_cpu_ms": 1000 * cpu_seconds / opened,
                }
            )
        finally:
            _stop([server], load_)
    return {
        "runs": runs,
        "per_s": median(r["per_s"] for r in runs),
        "kib_per_connection": median(r["kib_per_connection"] for r in runs),
        "profiled_first_run": settings.profile,
    }


# --- Soak -----------------------------------------------------------------------------------


def soak(ctx: Context) -> dict[str, Any]:
    """1,000 users (50 friends each) connect, subscribe, change status and disconnect at
    random; at the end each client's view of every friend is checked against the truth
    (what each user last did), and Redis too. Memory: VmRSS every 5 s."""
    settings = ctx.settings
    mesh = ctx.graph.groups["mesh"]
    seconds = settings.soak_minutes * 60
    servers = ctx.start("pubsub", extra=_METRICS_FROM_RUNNER)
    load_ = Load(settings.workers)
    try:
        shares = _split(_users(ctx, mesh, [servers[0].port]), settings.workers)
        for worker, share in enumerate(shares):
            load_.send(
                worker, "soak", users=share, seconds=seconds, pause=settings.soak_pause, seed=worker
            )
        started = time.monotonic()
        server_cpu = system.CpuMeter([servers[0].pid])
        samples: list[tuple[float, int]] = []
        answers: dict[int, dict[str, Any]] = {}
        while len(answers) < len(shares):
            samples.append((time.monotonic() - started, system.rss_kib(servers[0].pid)))
            for worker in range(len(shares)):
                if worker not in answers and load_.pipes[worker].poll(5 / len(shares)):
                    answers[worker] = load_.receive(worker)
            if time.monotonic() - started > seconds + 300:
                raise TimeoutError("the soak's clients did not finish")
        server_cores = server_cpu.read()
        truth = {a: s for answer in answers.values() for a, s in answer["truth"].items()}
        history = {a: h for answer in answers.values() for a, h in answer["history"].items()}
        settle_seconds = _settle_all([servers[0].pid])
        beats = _heartbeat_figures(servers[0])
        views = load_.all("views")
        checked = wrong = 0
        examples = []
        for answer in views:
            for viewer, (friends, view) in answer["views"].items():
                for friend in friends:
                    checked += 1
                    if view.get(friend, OFFLINE) != truth[friend]:
                        wrong += 1
                        if len(examples) < 5:
                            examples.append(
                                {
                                    "viewer": viewer,
                                    "friend": friend,
                                    "seen": view.get(friend),
                                    "truth": truth[friend],
                                    "friend_history": history[friend],
                                    "viewer_history": history[viewer],
                                }
                            )
        redis_wrong = asyncio.run(_redis_mismatches(truth))
        third = seconds / 3
        middle = [rss for t, rss in samples if third <= t < 2 * third]
        last = [rss for t, rss in samples if t >= 2 * third]
        middle_mean = sum(middle) / max(1, len(middle))
        last_mean = sum(last) / max(1, len(last))
        return {
            "minutes": settings.soak_minutes,
            "users": len(mesh),
            "connects": sum(a["connects"] for a in answers.values()),
            "changes": sum(a["changes"] for a in answers.values()),
            "disconnects": sum(a["disconnects"] for a in answers.values()),
            "client_errors": sum(a["errors"] for a in answers.values()),
            "stream_errors": sum(a["stream_errors"] for a in views),
            "server_cores": server_cores,
            "settle_seconds": settle_seconds,
            "views_checked": checked,
            "wrong_views": wrong,
            "wrong_examples": examples,
            "redis_wrong": redis_wrong,
            "rss_samples": samples,
            "rss_middle_kib": middle_mean,
            "rss_last_kib": last_mean,
            "rss_change": last_mean / middle_mean - 1 if middle_mean else math.nan,
            "heartbeat": beats,
        }
    finally:
        _stop(servers, load_)


async def _redis_mismatches(truth: dict[str, int]) -> int:
    """Users whose visible presence in Redis is not what they last did."""
    from channels.layers import get_channel_layer

    from presence.store import online

    visible = await online.visible_among(list(truth))
    await get_channel_layer().flush()
    return sum(
        1
        for address, status in truth.items()
        if (visible[address].status if address in visible else OFFLINE) != status
    )


# --- Crash detection ------------------------------------------------------------------------

# The runner reads each process's /metrics from this address.
_METRICS_FROM_RUNNER = {"PRESENCE_METRICS_ALLOW": "127.0.0.1"}


def _heartbeat_figures(server: system.Server) -> dict[str, float]:
    """A process's heartbeat metrics: the longest interval between two beats Redis took,
    the processes it reaped and its rebuilds."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    wanted = {
        "presence_heartbeat_interval_max_seconds": "longest_beat_interval_s",
        "presence_processes_reaped_total": "reaped",
        "presence_rebuilds_total": "rebuilds",
    }
    figures = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            figures[wanted[name]] = float(value)
    return figures


def crash(ctx: Context) -> dict[str, Any]:
    """Two processes with the default timings share the mesh's users (alternately). Under the
    throughput scenario's load at its target rate (10,000 updates/s offered, more than two
    processes deliver on this machine), no process may be reaped: each process's longest
    interval between heartbeats shows the margin. Then, idle, one process is killed with
    SIGKILL: the time from the kill until friends on the other process read each of its
    users OFFLINE (the first and the last of them)."""
    from presence.conf import presence_settings

    settings = ctx.settings
    mesh = ctx.graph.groups["mesh"]
    friends = ctx.sizes.mesh_friends
    runs = []
    for _ in range(settings.crash_runs):
        servers = ctx.start("pubsub", 2, _METRICS_FROM_RUNNER)
        load_ = Load(settings.workers)
        try:
            users = _users(ctx, mesh, [s.port for s in servers])
            _open(load_, _split(users, settings.workers))
            load_.all("set_all", status=ONLINE)
            load_.all("wait_views", status=ONLINE, timeout=60)
            cpu = system.CpuMeter([s.pid for s in servers])
            answers = load_.all(
                "changes",
                rate=TARGET_RATE / friends / settings.workers,
                duration=settings.crash_load_seconds,
            )
            server_cores = cpu.read()
            changes = sum(len(a["sent"]) for a in answers)
            _settle_all([s.pid for s in servers])
            beats = [_heartbeat_figures(s) for s in servers]
            survivor, doomed = servers
            dead = {u.address: u.friends for u in users if u.port == doomed.port}
            alive = {u.address for u in users if u.port == survivor.port}
            expected = sum(len(f & alive) for f in dead.values())
            load_.all("record", on=True)
            killed_ns = time.monotonic_ns()
            os.kill(doomed.pid, signal.SIGKILL)
            wait = presence_settings().process_ttl_seconds + presence_settings().heartbeat_seconds
            time.sleep(wait + 10)
            load_.all("record", on=False)
            receipts = [r for a in load_.all("take_receipts") for r in a["receipts"]]
            # Idle: the only updates of the dead process's users are their OFFLINE.
            seen = sorted((at - killed_ns) / 1e9 for friend, _, at in receipts if friend in dead)
            runs.append(
                {
                    "load_seconds": settings.crash_load_seconds,
                    "changes": changes,
                    "server_cores": server_cores,
                    "processes": beats,
                    "offline_expected": expected,
                    "offline_seen": len(seen),
                    "first_s": seen[0] if seen else math.nan,
                    "last_s": seen[-1] if seen else math.nan,
                }
            )
        finally:
            _stop(servers, load_)
    return {
        "heartbeat_seconds": presence_settings().heartbeat_seconds,
        "ttl_seconds": presence_settings().process_ttl_seconds,
        "users": len(mesh),
        "friends": friends,
        "runs": runs,
        "last_s": median(r["last_s"] for r in runs),
        "longest_beat_interval_s": max(
            p["longest_beat_interval_s"] for r in runs for p in r["processes"]
        ),
        "reaped": sum(p["reaped"] for r in runs for p in r["processes"]),
    }
