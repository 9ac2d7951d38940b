"""BENCHMARKS.md and the console table, from the raw figures of one run.

A section headed "## Analysis" in the existing file is carried over unchanged: it holds
what the profiles explain, written by whoever read them.
"""

import math
import statistics
from pathlib import Path
from typing import Any

from bench import capacity_report
from bench.stats import ms, table

TARGETS = {
    "fanout": 50_000,
    "throughput": 10_000,
    "throughput_p99": 100_000,
    "query": 10_000,
    "kib": 40,
    "rate": 500,
    "rss": 0.05,
    "ratio": 0.5,
}


def _mark(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "**missed**"


def _rate(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.0f}"


def _find(items: list[dict[str, Any]], system: str, processes: int = 1) -> dict[str, Any] | None:
    return next(
        (i for i in items if i["system"] == system and i.get("processes", 1) == processes), None
    )


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(figure, scenario, target, measured, verdict) for every figure that was run."""
    rows = []
    fanouts = results.get("fanout", [])
    ours = _find(fanouts, "pubsub")
    if ours:
        largest = max(ours["by_friends"], key=int)
        figures = ours["by_friends"][largest]
        per_size = ", ".join(
            f"F={size}: p50 {ms(f['p50_us'])} / p99 {ms(f['p99_us'])} ms"
            for size, f in ours["by_friends"].items()
        )
        relay = _find(fanouts, "relay")
        ratio = ""
        if relay:
            floor = relay["by_friends"][largest]["p99_us"]
            ratio = f"; floor p99 {ms(floor)} ms (ours {figures['p99_us'] / floor:.1f}x)"
        lost = sum(f["lost_rounds"] for f in ours["by_friends"].values())
        rows.append(
            (
                "fan-out latency",
                f"F = 10, 100, 1000 online subscribed friends, {ours['connections']:,} connections",
                "p99 <= 50 ms at F = 1000",
                f"{per_size}; {lost} rounds lost{ratio}",
                _mark(figures["p99_us"] <= TARGETS["fanout"] and lost == 0),
            )
        )
    throughputs = results.get("throughput", [])
    one = _find(throughputs, "pubsub", 1)
    if one:
        at = one["at_10000"]
        relay = _find(throughputs, "relay", 1)
        ratio_text, ratio_met = "", None
        if relay and relay["peak_per_s"]:
            ratio = one["peak_per_s"] / relay["peak_per_s"]
            ratio_text = (
                f"; floor: sustained {_rate(relay['sustained_per_s'])}/s, peak "
                f"{_rate(relay['peak_per_s'])}/s; ours / floor (peaks) {ratio:.2f}"
            )
            ratio_met = ratio >= TARGETS["ratio"]
        rows.append(
            (
                "delivery throughput",
                f"{one['users']:,} users x {one['friends']} friends, all subscribed, one "
                "daphne process",
                ">= 10,000 updates/s with p99 <= 100 ms",
                f"sustained {_rate(one['sustained_per_s'])}/s (peak {_rate(one['peak_per_s'])}/s); "
                f"at 10,000/s offered: {_rate(at['delivered_per_s'])}/s delivered, "
                f"p99 {ms(at['p99_us'])} ms{ratio_text}",
                _mark(one["sustained_per_s"] >= TARGETS["throughput"]),
            )
        )
        if ratio_met is not None:
            rows.append(
                (
                    "throughput vs floor",
                    "same load on the websockets + pub/sub relay (most delivered per second)",
                    ">= 0.5 of the floor",
                    ratio_text.removeprefix("; "),
                    _mark(ratio_met),
                )
            )
        two = _find(throughputs, "pubsub", 2)
        if two:
            growth = two["peak_per_s"] / one["peak_per_s"]
            rows.append(
                (
                    "throughput, 2 processes",
                    "same load split over two daphne processes",
                    "report growth",
                    f"sustained {_rate(two['sustained_per_s'])}/s, "
                    f"peak {_rate(two['peak_per_s'])}/s ({growth:.2f}x the peak of one)",
                    "reported",
                )
            )
    query = results.get("query")
    if query:
        hmget = query["redis_per_query"].get("hmget", {"per_query": 0, "usec_per_call": 0})
        worst = max(query["rpc"]["p99_us"], query["rest"]["p99_us"])
        rows.append(
            (
                "online-friends query",
                f"{query['friends']:,} friends, {query['online_users']:,} users online in Redis",
                "p99 <= 10 ms server time; O(friends) in one round trip",
                f"GetOnlineFriends p50 {ms(query['rpc']['p50_us'])} / p99 "
                f"{ms(query['rpc']['p99_us'])} ms; REST p50 {ms(query['rest']['p50_us'])} / p99 "
                f"{ms(query['rest']['p99_us'])} ms; {hmget['per_query']:.2f} HMGET per query, "
                f"{hmget['usec_per_call']:.0f} µs in Redis",
                _mark(worst <= TARGETS["query"] and abs(hmget["per_query"] - 1) < 0.05),
            )
        )
    conn = results.get("connections")
    if conn:
        rows.append(
            (
                "connection cost",
                f"{conn['runs'][0]['connections']:,} idle authenticated subscribed connections",
                "<= 40 KiB each; >= 500/s",
                f"{conn['kib_per_connection']:.1f} KiB per connection; {conn['per_s']:,.0f}/s",
                _mark(
                    conn["kib_per_connection"] <= TARGETS["kib"]
                    and conn["per_s"] >= TARGETS["rate"]
                ),
            )
        )
    soak = results.get("soak")
    if soak:
        rows.append(
            (
                "soak",
                f"{soak['users']:,} clients churning for {soak['minutes']:g} min",
                "RSS flat within 5 %; zero lost or wrong final states",
                f"RSS {soak['rss_change'] * 100:+.1f} % (last third vs middle third); "
                f"{soak['wrong_views']} wrong of {soak['views_checked']:,} views; "
                f"{soak['redis_wrong']} wrong in Redis",
                _mark(
                    abs(soak["rss_change"]) <= TARGETS["rss"]
                    and soak["wrong_views"] == 0
                    and soak["redis_wrong"] == 0
                ),
            )
        )
    crash = results.get("crash")
    if crash:
        rows.append(
            (
                "crash detection",
                f"kill -9 of one of 2 processes, after {crash['runs'][0]['load_seconds']:g} s "
                "at 10,000 updates/s offered",
                "friends see OFFLINE within 10 s; no live process reaped",
                f"last friend read OFFLINE after {crash['last_s']:.2f} s; longest heartbeat "
                f"interval {crash['longest_beat_interval_s']:.2f} s (TTL "
                f"{crash['ttl_seconds']} s); {crash['reaped']:g} reaped under load",
                _mark(crash["last_s"] <= 10 and crash["reaped"] == 0),
            )
        )
    walks = results.get("locations")
    if walks:
        at_target = [
            s
            for run in walks["runs"]
            for s in run
            if s["offered_per_s"] == walks["target_per_s"] and s["walk"]
        ]
        p99 = statistics.median(s["p99_us"] for s in at_target)
        delivered = statistics.median(s["delivered_per_s"] for s in at_target)
        rows.append(
            (
                "location updates",
                f"{walks['users']:,} users x {walks['friends']} friends each walking one "
                "parcel a second (SetLocation), one daphne process",
                "within the delivery target: full delivery, p99 <= 100 ms",
                f"{_rate(delivered)}/s delivered of {_rate(walks['target_per_s'])}/s offered, "
                f"p99 {ms(p99)} ms",
                _mark(delivered >= 0.95 * walks["target_per_s"] and p99 <= 100_000),
            )
        )
    if results.get("storm"):
        from bench import storm

        *row, met = storm.summary_row(results["storm"])
        rows.append((*row, _mark(met)))
    return rows


def console(results: dict[str, Any]) -> str:
    return "\n".join(
        f"{figure:<26} {verdict:<12} {measured}"
        for figure, _, _, measured, verdict in summary_rows(results)
    )


def _fanout_section(fanouts: list[dict[str, Any]]) -> list[str]:
    lines = ["## Fan-out latency", ""]
    rows = []
    for item in fanouts:
        for size, f in item["by_friends"].items():
            runs = ", ".join(f"{ms(r['p50_us'])}/{ms(r['p99_us'])}" for r in f["runs"])
            rows.append(
                [item["label"], size, ms(f["p50_us"]), ms(f["p99_us"]), str(f["lost_rounds"]), runs]
            )
    lines += table(["system", "F", "p50 ms", "p99 ms", "lost rounds", "each run: p50/p99 ms"], rows)
    lines += [
        "",
        "Subscribers whose view still missed a friend's ONLINE 60 s after everyone went "
        "ONLINE (before the rounds): "
        + ", ".join(f"{i['label']}: {i['incomplete_views_after_setup']}" for i in fanouts)
        + ".",
    ]
    return [*lines, ""]


def _locations_section(walks: dict[str, Any]) -> list[str]:
    """Issue 18's performance paragraph: location updates, step by step."""
    lines = [
        "## Location updates",
        "",
        f"{walks['users']:,} users with {walks['friends']} friends each, all subscribed, one "
        "daphne process; a growing share of them walk, each SetLocation one parcel further, "
        f"up to every user once a second ({_rate(walks['target_per_s'])} updates/s to "
        f"deliver). PRESENCE_LOCATION_INTERVAL_MS={walks['interval_ms']}, below a user's "
        "step, so that no step waits for the coalescing window and the latency is the "
        "delivery's (to the last of the walker's friends). Beside each location step, a "
        "status step (ONLINE <-> AWAY, the throughput scenario's) at the same rate, as a "
        "control under the same conditions.",
        "",
    ]
    rows = [
        [
            str(number),
            "location" if s["walk"] else "status",
            _rate(s["offered_per_s"]),
            _rate(s["delivered_per_s"]),
            ms(s["p50_us"]),
            ms(s["p99_us"]),
            f"{s['incomplete']:,} of {s['changes']:,}",
            f"{s['updates_per_item']:.2f}",
            f"{s['server_cores']:.2f}",
            f"{s['redis_cores']:.2f}",
        ]
        for number, run in enumerate(walks["runs"], 1)
        for s in run
    ]
    lines += table(
        [
            "run",
            "changes",
            "offered updates/s",
            "delivered /s",
            "p50 ms",
            "p99 ms",
            "steps not seen by every friend",
            "updates per item",
            "server cores",
            "Redis cores",
        ],
        rows,
    )
    return [*lines, ""]


def _throughput_section(items: list[dict[str, Any]]) -> list[str]:
    lines = ["## Delivery throughput", ""]
    rows = []
    for item in items:
        at = item["at_10000"]
        rows.append(
            [
                item["label"],
                str(item["processes"]),
                _rate(item["sustained_per_s"]),
                _rate(item["peak_per_s"]),
                _rate(at["delivered_per_s"]),
                ms(at["p99_us"]),
                f"{at['server_cores']:.2f}",
                f"{at['client_cores']:.2f}",
            ]
        )
    lines += table(
        [
            "system",
            "processes",
            "sustained /s",
            "peak delivered /s",
            "at 10k: delivered /s",
            "at 10k: p99 ms",
            "at 10k: server cores",
            "at 10k: client cores",
        ],
        rows,
    )
    lines += [
        "",
        "Subscribers whose view still missed a friend's ONLINE 60 s after everyone went "
        "ONLINE (before the steps): "
        + ", ".join(
            f"{i['label']} x{i['processes']}: {i['incomplete_views_after_setup']}" for i in items
        )
        + ".",
        "",
        "Every step of every run (offered -> delivered, latency per change):",
        "",
    ]
    steps = []
    for item in items:
        for number, run in enumerate(item["runs"], start=1):
            for s in run["steps"]:
                steps.append(
                    [
                        item["label"],
                        str(item["processes"]),
                        str(number),
                        _rate(s["offered_per_s"]),
                        _rate(s["delivered_per_s"]),
                        ms(s["p50_us"]),
                        ms(s["p99_us"]),
                        str(s["incomplete"]),
                        str(s["skipped"]),
                        f"{s['server_cores']:.2f}",
                        f"{s['client_cores']:.2f}",
                        f"{s['server_cores'] * 1e6 / s['delivered_per_s']:.0f}"
                        if s["delivered_per_s"]
                        else "",
                        f"{s.get('updates_per_item', math.nan):.2f}",
                    ]
                )
    lines += table(
        [
            "system",
            "procs",
            "run",
            "offered /s",
            "delivered /s",
            "p50 ms",
            "p99 ms",
            "incomplete changes",
            "skipped",
            "server cores",
            "client cores",
            "server µs per update",
            "updates per item",
        ],
        steps,
    )
    return [*lines, ""]


def _query_section(query: dict[str, Any]) -> list[str]:
    lines = ["## Online-friends query", ""]
    rows = []
    for name, key in (
        ("GetOnlineFriends (dcl-rpc)", "rpc"),
        ("GET /api/v1/friends/online/?limit=1000", "rest"),
    ):
        f = query[key]
        runs = ", ".join(f"{ms(r['p50_us'])}/{ms(r['p99_us'])}" for r in f["runs"])
        cpu = query.get("server_cpu_ms", {}).get(key)
        rows.append(
            [name, ms(f["p50_us"]), ms(f["p99_us"]), "" if cpu is None else f"{cpu:.2f}", runs]
        )
    lines += table(
        ["query", "p50 ms", "p99 ms", "server CPU ms per query", "each run: p50/p99 ms"], rows
    )
    lines += [
        "",
        f"{query['online_users']:,} users visible in Redis (seeded through the presence store in "
        f"{query['seed_seconds']:.0f} s); the user has {query['friends']:,} friends, "
        f"{query['online_friends_returned']['rpc']} of them online (both queries returned "
        f"{query['online_friends_returned']['rpc']} and "
        f"{query['online_friends_returned']['rest']}).",
        "",
        "Redis commands per GetOnlineFriends (INFO commandstats over 100 calls; the process's "
        "heartbeat runs beside them):",
        "",
    ]
    lines += table(
        ["command", "per query", "µs per call in Redis"],
        [
            [name, f"{v['per_query']:.2f}", f"{v['usec_per_call']:.1f}"]
            for name, v in sorted(query["redis_per_query"].items())
        ],
    )
    return [*lines, ""]


def _connections_section(conn: dict[str, Any]) -> list[str]:
    lines = ["## Connection cost", ""]
    lines += table(
        [
            "run",
            "connections",
            "seconds",
            "per s",
            "RSS before MiB",
            "RSS after MiB",
            "KiB per connection",
            "server CPU ms per connection",
        ],
        [
            [
                str(i),
                f"{r['connections']:,}",
                f"{r['seconds']:.1f}",
                f"{r['per_s']:,.0f}",
                f"{r['rss_before_kib'] / 1024:.0f}",
                f"{r['rss_after_kib'] / 1024:.0f}",
                f"{r['kib_per_connection']:.1f}",
                f"{r['server_cpu_ms']:.2f}" if "server_cpu_ms" in r else "",
            ]
            for i, r in enumerate(conn["runs"], start=1)
        ],
    )
    return [*lines, ""]


def _soak_section(soak: dict[str, Any]) -> list[str]:
    samples = soak["rss_samples"]
    step = max(1, len(samples) // 15)
    curve = ", ".join(f"{t / 60:.1f} min {rss / 1024:.0f}" for t, rss in samples[::step])
    return [
        "## Soak",
        "",
        f"{soak['users']:,} clients for {soak['minutes']:g} minutes: {soak['connects']:,} "
        f"connects, {soak['changes']:,} status changes, {soak['disconnects']:,} disconnects, "
        f"{soak['client_errors']} client errors, {soak['stream_errors']} stream errors; the "
        f"server used {soak['server_cores']:.2f} cores on average.",
        "",
        f"- Final views, checked once the server was idle ({soak['settle_seconds']:.0f} s "
        f"after the last change): {soak['views_checked']:,} (viewer, friend) pairs against the "
        f"truth, {soak['wrong_views']} wrong{'' if not soak['wrong_examples'] else ', e.g. '}"
        f"{'; '.join(str(e) for e in soak['wrong_examples'])}; Redis disagreed with the truth "
        f"for {soak['redis_wrong']} users.",
        f"- RSS: mean {soak['rss_middle_kib'] / 1024:.1f} MiB in the middle third, "
        f"{soak['rss_last_kib'] / 1024:.1f} MiB in the last third "
        f"({soak['rss_change'] * 100:+.1f} %).",
        f"- RSS (MiB) over time: {curve}.",
        f"- Heartbeat: the longest interval between two beats Redis took was "
        f"{soak['heartbeat']['longest_beat_interval_s']:.2f} s; processes reaped: "
        f"{soak['heartbeat']['reaped']:g}, rebuilds: {soak['heartbeat']['rebuilds']:g}.",
        "",
    ]


def _crash_section(crash: dict[str, Any]) -> list[str]:
    rows = [
        [
            str(i),
            f"{r['changes'] / r['load_seconds'] * crash['friends']:,.0f}",
            f"{r['server_cores']:.2f}",
            ", ".join(f"{p['longest_beat_interval_s']:.2f}" for p in r["processes"]),
            f"{sum(p['reaped'] for p in r['processes']):g}",
            f"{sum(p['rebuilds'] for p in r['processes']):g}",
            f"{r['offline_seen']:,} of {r['offline_expected']:,}",
            f"{r['first_s']:.2f}",
            f"{r['last_s']:.2f}",
        ]
        for i, r in enumerate(crash["runs"], 1)
    ]
    return [
        "## Crash detection",
        "",
        f"Heartbeat every {crash['heartbeat_seconds']} s, TTL {crash['ttl_seconds']} s (the "
        f"defaults); {crash['users']:,} users with {crash['friends']} friends on two processes. "
        "Under load: updates per second the clients' status changes made (changes x "
        "friends), both servers' cores, each process's longest interval between two "
        "heartbeats Redis took (a live process is reaped past "
        "the TTL), processes reaped and rebuilds. Then the kill: friends' OFFLINE updates "
        "read of the dead process's users, and seconds from the kill to the first and the "
        "last.",
        "",
        *table(
            [
                "run",
                "updates /s sent",
                "server cores",
                "longest beat interval s",
                "reaped",
                "rebuilds",
                "OFFLINE read",
                "first s",
                "last s",
            ],
            rows,
        ),
        "",
    ]


def _profiles_section(profiles: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Profiles",
        "",
        "py-spy (200 samples/s) on the server process, in a pass of its own after the measured "
        "runs. Busy: samples taken over those of one thread busy all the time (above 100 % "
        "when a thread of the pool ran beside the event loop). Own: the sampled function "
        "itself; inclusive: anywhere on the stack, leaving out the frames on nearly every "
        "stack (the event loop, daphne's main). By layer: each sample charged to its own frame's "
        "package, or, for a frame of the standard library (a socket call, an asyncio queue), "
        "to the nearest caller's (bench/profiling.py); in % of the samples not waiting in "
        "epoll or in an idle worker thread.",
        "",
    ]
    for p in profiles:
        lines += [f"### {p['name']} (busy {p['busy'] * 100:.0f} %, {p['samples']:,} samples)", ""]
        pairs = zip(p["own"], p["inclusive"], strict=False)
        lines += table(
            ["own %", "function", "inclusive %", "function"],
            [[f"{o[1]:.1f}", f"`{o[0]}`", f"{i[1]:.1f}", f"`{i[0]}`"] for o, i in pairs],
        )
        lines.append("")
        if p.get("layers"):
            lines += table(
                ["layer", "% of working samples"],
                [[name, f"{share:.1f}"] for name, share in p["layers"]],
            )
            lines.append("")
    return lines


def markdown(
    results: dict[str, Any], method: list[str], analysis: str, plots: list[str] | None = None
) -> str:
    """The whole file; `plots` (markdown showing the curves' images) come first, so that a
    reader sees the shape before the tables."""
    info = results["info"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {info['date']} with `{info['command']}` ({info['mode']}, "
        f"{info['minutes']:.0f} minutes), commit {info['commit']}.",
        "",
        *(plots or []),
        "## Machine",
        "",
        *table(["", ""], [[k, v] for k, v in info["machine"].items()]),
        "",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()) + ".",
        "",
        "CPU used by other processes on the machine while each scenario ran (in cores, of "
        f"{info['machine']['nproc']}); the figures below are only as clean as this:",
        "",
        *table(
            ["scenario", "seconds", "other processes, cores"],
            [
                [name, f"{c['seconds']:.0f}", f"{c['other_cores']:.2f}"]
                for name, c in results["contention"].items()
            ],
        ),
        "",
        "## Against the targets",
        "",
        *table(
            ["figure", "scenario", "target", "measured (medians of runs)", ""],
            [list(r) for r in summary_rows(results)],
        ),
        "",
    ]
    if results.get("fanout"):
        lines += _fanout_section(results["fanout"])
    if results.get("throughput"):
        lines += _throughput_section(results["throughput"])
    if results.get("locations"):
        lines += _locations_section(results["locations"])
    if results.get("query"):
        lines += _query_section(results["query"])
    if results.get("connections"):
        lines += _connections_section(results["connections"])
    if results.get("soak"):
        lines += _soak_section(results["soak"])
    if results.get("crash"):
        lines += _crash_section(results["crash"])
    lines += capacity_report.sections(results)
    if results.get("storm"):
        from bench import storm

        lines += storm.section(results["storm"])
    if results.get("profiles"):
        lines += _profiles_section(results["profiles"])
    lines += ["## Method", "", *method, ""]
    if analysis:
        lines += [analysis.rstrip(), ""]
    return "\n".join(lines)


def carried_analysis(path: Path) -> str:
    """The "## Analysis" section of an existing BENCHMARKS.md, up to the next "## "."""
    if not path.exists():
        return ""
    text = path.read_text()
    start = text.find("\n## Analysis")
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    return text[start + 1 : end if end >= 0 else len(text)]
