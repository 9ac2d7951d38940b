"""Reconnect storms: how fast one process sets up connections when many arrive at once.

Decentraland's own client drives it (bench/storm.mjs: @dcl/rpc over `ws`): each client
connects, creates a port, loads FriendshipsService and subscribes to its friends' presence
with its token in the payload, and is served when the subscription's first item arrives.
1,000 clients at 1, 10, 100 and 1,000 in flight, then a burst of 5,000 at once, each on a
fresh server process; the order of the measurements turns from run to run. With a
`before` checkout (bench/run.py --storm-before), each measurement is taken on that code's
server too, next to this code's, which one first alternating from run to run: pairs A/B
on the same machine minutes apart. Two floors take each storm too, bench/relay.py (Redis
pub/sub, no database, no presence state) on `websockets` and on the service's own daphne:
what a Python process, and the fixed stack's server, pay for the same set-ups with none of
the service's work.
"""

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import system
from bench.scenarios import Context, _seed, _settle_all
from bench.stats import Histogram, median, table

LEVELS = (1, 10, 100, 1000)
CLIENTS = 1000
DRIVER = system.BASE_DIR / "bench" / "storm.mjs"
# A client not served within this counts as failed.
CLIENT_TIMEOUT_MS = 60_000
WARM_UP = 50


def _drive(
    ctx: Context, server: system.Server, tokens: list[str], concurrency: int, name: str
) -> tuple[dict[str, Any], subprocess.Popen[str]]:
    """Run storm.mjs against `server` until every client is served or failed; the clients
    stay connected until the returned process's stdin closes."""
    spec = ctx.work_dir / f"storm-{name}.json"
    spec.write_text(
        json.dumps(
            {
                "url": f"ws://127.0.0.1:{server.port}/",
                "tokens": tokens,
                "concurrency": concurrency,
                "timeout_ms": CLIENT_TIMEOUT_MS,
            }
        )
    )
    cores = ",".join(str(c) for c in sorted(system.load_cores()))
    node = subprocess.Popen(
        ["taskset", "-c", cores, "node", str(DRIVER), str(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(ctx.work_dir / f"storm-{name}.err").open("w"),
        text=True,
    )
    assert node.stdout is not None
    line = node.stdout.readline()
    if not line:
        node.wait()
        raise RuntimeError(f"storm.mjs exited with {node.returncode}, see storm-{name}.err")
    return json.loads(line), node


def _listen_overflows() -> int:
    """The kernel's count of connections dropped for a full listen queue, machine-wide."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))["ListenOverflows"])
    return 0


def _waiting_seconds(pid: int) -> float:
    """Seconds the process's main thread (the event loop) has waited for a core to run on."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def _end(node: subprocess.Popen[str]) -> None:
    assert node.stdin is not None
    node.stdin.close()
    try:
        node.wait(timeout=30)
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait()


def _server(ctx: Context, code: Path | str) -> system.Server:
    """The service of the checkout `code`, or the floor on the server `code` names."""
    if isinstance(code, str):
        return system.relay(0, ctx.redis_url, ctx.relay_file, ctx.work_dir, code)
    env = {
        **os.environ,
        "DATABASE_URL": ctx.database_url,
        "REDIS_URL": ctx.redis_url,
        "CHANNEL_LAYER": "pubsub",
    }
    return system.daphne(0, env, ctx.work_dir, code)


def _measure(
    ctx: Context,
    tokens: list[str],
    concurrency: int,
    code: Path | str,
    name: str,
    profile: str | None = None,
) -> dict[str, Any]:
    """One storm on a fresh server (`_server`), after a few warm-up clients; with
    `profile`, py-spy samples the server meanwhile (ctx.profile) under that name."""
    with ctx.redis() as client:
        client.flushdb()
    asyncio.run(_seed(ctx.graph.groups["anchors"]))
    server = _server(ctx, code)
    warm = [ctx.graph.tokens[a] for a in ctx.graph.groups["storm"][-WARM_UP:]]
    try:
        _end(_drive(ctx, server, warm, 10, f"{name}-warm")[1])
        _settle_all([server.pid])
        load = os.getloadavg()[0]
        meter = system.CpuMeter([server.pid])
        cpu_before = system.cpu_seconds(server.pid)
        begun, overflows = time.monotonic(), _listen_overflows()
        waited = _waiting_seconds(server.pid)
        sampler = ctx.profile(server, profile) if profile else None
        answer, node = _drive(ctx, server, tokens, concurrency, name)
        if sampler is not None:
            ctx.keep(sampler)
        cores = meter.read()
        cpu = system.cpu_seconds(server.pid) - cpu_before
        wall = time.monotonic() - begun
        overflows = _listen_overflows() - overflows
        waited = _waiting_seconds(server.pid) - waited
        # Every client closes at once: the closes' burst, which must not fail either.
        _end(node)
        _settle_all([server.pid])
        setup = Histogram()
        setup.extend(1000 * ms for ms in answer["setup_ms"])
        served_s = max(answer["served_at_ms"], default=0) / 1000
        return {
            "clients": len(tokens),
            "in_flight": concurrency,
            "served": answer["served"],
            "failed": answer["failed"],
            "errors": answer["errors"],
            # Set-up rate: clients served per second, from the first connect to the last
            # client's end (served or failed).
            "per_s": answer["served"] / (answer["finished_ms"] / 1000),
            "all_served_s": served_s,
            "p50_us": setup.percentile(0.5),
            "p99_us": setup.percentile(0.99),
            # The server's CPU, and the share of the time its event loop was ready to run
            # but waited for a core (other processes on the machine): what is left of 1.0
            # is time it had nothing to do.
            "server_cores": cores,
            "server_waiting": waited / wall,
            # The server's CPU per client served, in ms of one core: what a set-up costs,
            # a figure that holds on a loaded machine where rates and times do not.
            "cpu_ms_per_setup": 1000 * cpu / max(answer["served"], 1),
            "listen_overflows": overflows,
            "errors_logged": server.log.read_text(errors="replace").count(" ERROR "),
            "wall_s": wall,
            "load_1min": load,
        }
    finally:
        server.stop()


def storm(ctx: Context) -> dict[str, Any]:
    settings = ctx.settings
    users = ctx.graph.groups["storm"]
    tokens = [ctx.graph.tokens[a] for a in users]
    codes: dict[str, Path | str] = {
        "after": system.BASE_DIR,
        "floor": "websockets",
        "floor on daphne": "daphne",
    }
    if settings.storm_before:
        codes = {"before": Path(settings.storm_before).resolve(), **codes}
    plan = [*((n, CLIENTS) for n in LEVELS), (len(tokens), len(tokens))]
    runs: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
    for run in range(settings.runs):
        measured: dict[str, dict[str, Any]] = {code: {} for code in codes}
        # The order turns from run to run, so that no level always meets the same moment.
        for in_flight, clients in plan[run % len(plan) :] + plan[: run % len(plan)]:
            key = "burst" if clients == len(tokens) else str(in_flight)
            # Which code goes first in a pair alternates too.
            for name, code in list(codes.items())[:: 1 if run % 2 == 0 else -1]:
                slug = name.replace(" ", "-")
                figures = _measure(ctx, tokens[:clients], in_flight, code, f"{slug}-{run}-{key}")
                measured[name][key] = figures
                print(
                    f"   storm {name} run {run + 1} {key}: {figures['per_s']:,.0f}/s, "
                    f"{figures['failed']} failed, all served in {figures['all_served_s']:.1f} s, "
                    f"{figures['listen_overflows']} listen overflows, "
                    f"{figures['cpu_ms_per_setup']:.2f} ms of CPU per set-up, "
                    f"load {figures['load_1min']:.2f}",
                    flush=True,
                )
        for code in codes:
            runs[code].append(measured[code])
    # Profiles in a pass of their own, never during a measured run.
    for name, code in codes.items() if settings.profile else ():
        title = f"reconnect storm, {len(tokens):,} at once ({name})"
        _measure(ctx, tokens, len(tokens), code, f"{name.replace(' ', '-')}-profile", title)
    return {
        "clients": CLIENTS,
        "burst_clients": len(tokens),
        "friends": ctx.sizes.storm_friends,
        "levels": list(LEVELS),
        "codes": {name: str(code) for name, code in codes.items()},
        "runs": runs,
        "summary": {code: _summary(code_runs) for code, code_runs in runs.items()},
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": median(values), "min": min(values), "max": max(values)}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [*(str(n) for n in LEVELS), "burst"]
    return {
        key: {
            "per_s": _spread([r[key]["per_s"] for r in runs]),
            "all_served_s": _spread([r[key]["all_served_s"] for r in runs]),
            "failed": sum(r[key]["failed"] for r in runs),
            "server_cores": median(r[key]["server_cores"] for r in runs),
            "cpu_ms_per_setup": _spread([r[key]["cpu_ms_per_setup"] for r in runs]),
        }
        for key in keys
    }


# --- The report ------------------------------------------------------------------------


def _range(spread: dict[str, float], digits: int = 0) -> str:
    return (
        f"{spread['median']:,.{digits}f} ({spread['min']:,.{digits}f} to "
        f"{spread['max']:,.{digits}f})"
    )


def met(result: dict[str, Any]) -> bool:
    """The targets: no lower rate at 100 and 1,000 in flight than at 10 (medians), and the
    burst all served within 10 s with none refused, in every run."""
    after = result["summary"]["after"]
    floor = after["10"]["per_s"]["median"]
    return (
        all(after[key]["per_s"]["median"] >= floor for key in ("100", "1000"))
        and after["burst"]["all_served_s"]["max"] <= 10
        and after["burst"]["failed"] == 0
    )


def summary_row(result: dict[str, Any]) -> tuple[str, str, str, str, bool]:
    """(figure, scenario, target, measured, met) for the report's targets table."""
    after = result["summary"]["after"]
    rates = ", ".join(
        f"{n} in flight {after[str(n)]['per_s']['median']:,.0f}/s" for n in result["levels"]
    )
    burst = after["burst"]
    floors = " and ".join(
        f"{name}'s {_range(result['summary'][name]['burst']['all_served_s'], 1)} s"
        for name in ("floor", "floor on daphne")
    )
    return (
        "reconnect storm",
        f"{result['clients']:,} @dcl/rpc clients at 1 to 1,000 in flight; "
        f"{result['burst_clients']:,} at once",
        "rate at 100 and 1,000 in flight >= at 10; the burst all served within 10 s, none refused",
        f"{rates}; burst all served in {_range(burst['all_served_s'], 1)} s, "
        f"{burst['failed']} refused or failed; bursts of the {floors}",
        met(result),
    )


def section(result: dict[str, Any]) -> list[str]:
    """The "Reconnect storms" section of BENCHMARKS.md."""
    codes = list(result["runs"])
    summary = result["summary"]
    keys = [*(str(n) for n in result["levels"]), "burst"]
    runs = len(result["runs"][codes[-1]])

    def label(key: str) -> str:
        return f"{result['burst_clients']:,} at once" if key == "burst" else f"{key} in flight"

    lines = [
        "## Reconnect storms",
        "",
        "Decentraland's own client (`@dcl/rpc` over `ws`, bench/storm.mjs): each connects, "
        "creates a port, loads FriendshipsService and subscribes to its friends' presence "
        "with its token in the payload, and is served when the subscription's first item "
        f"arrives; each user has {result['friends']} friends and one online. "
        f"{result['clients']:,} clients at each number in flight, then "
        f"{result['burst_clients']:,} at once, each on a fresh server process after "
        f"{WARM_UP} warm-up clients; {runs} runs, the order of the storms turned from run "
        "to run"
        + (
            ", and each storm taken on the code before (`"
            + result["codes"]["before"]
            + "`) next to this code's, which one first alternating from run to run: pairs "
            "A/B minutes apart."
            if "before" in codes
            else "."
        )
        + " The floor (`bench/relay.py`: `websockets` and Redis pub/sub on asyncio's loop, no "
        "database, no presence state, the snapshot from what it heard since it started, "
        "the token looked up in a dict) takes the same storms: what a Python process with "
        "none of the service's work pays for the same set-ups. The floor on daphne is the "
        "same relay as an ASGI application behind the service's own server "
        "(presence_project.server: daphne, Twisted, autobahn, admission pacing): what the "
        "fixed stack's WebSocket server costs alone."
        + " Figures: the median over runs (lowest to highest). Listen overflows: "
        "connections the kernel dropped for a full listen queue meanwhile (machine-wide). "
        "Server: its CPU in cores, then the share of the time its event loop waited for a "
        "core taken by other processes; the rest of 1.0 it had nothing to do. Server CPU "
        "per set-up: the server process's CPU time (user and system, all threads) from the "
        "storm's first connect to its last client served, over the clients served, in ms of "
        "one core: the cost of a set-up, which a loaded machine changes less than rates and "
        "times (one client at a time, it also holds the process's periodic work over the "
        "storm's longer time).",
        "",
    ]
    header = ["storm", *(f"{code}: set-up rate per s" for code in codes)]
    header += [*(f"{code}: all served in s" for code in codes)]
    header += [*(f"{code}: failed" for code in codes)]
    header += [*(f"{code}: server CPU ms per set-up" for code in codes)]
    lines += table(
        header,
        [
            [
                label(key),
                *(_range(summary[code][key]["per_s"]) for code in codes),
                *(_range(summary[code][key]["all_served_s"], 1) for code in codes),
                *(str(summary[code][key]["failed"]) for code in codes),
                *(_range(summary[code][key]["cpu_ms_per_setup"], 2) for code in codes),
            ]
            for key in keys
        ],
    )
    lines += ["", "Every storm, run by run, in the order the storms were taken:", ""]
    rows = []
    for run in range(runs):
        order = list(result["runs"][codes[0]][run])
        for key in order:
            for code in codes:
                r = result["runs"][code][run][key]
                rows.append(
                    [
                        str(run + 1),
                        label(key),
                        code,
                        f"{r['per_s']:,.0f}",
                        f"{r['served']:,}",
                        f"{r['failed']:,}",
                        f"{r['all_served_s']:.1f}",
                        f"{r['p50_us'] / 1000:,.0f}",
                        f"{r['p99_us'] / 1000:,.0f}",
                        f"{r['listen_overflows']:,}",
                        f"{r['server_cores']:.2f} + {r['server_waiting']:.2f}",
                        f"{r['cpu_ms_per_setup']:.2f}",
                        str(r["errors_logged"]),
                        f"{r['load_1min']:.2f}",
                    ]
                )
    lines += table(
        [
            "run",
            "storm",
            "code",
            "per s",
            "served",
            "failed",
            "all served in s",
            "set-up p50 ms",
            "set-up p99 ms",
            "listen overflows",
            "server cores + waiting",
            "server CPU ms per set-up",
            "errors logged",
            "load (1 min)",
        ],
        rows,
    )
    return [*lines, ""]
