"""The capacity curves in BENCHMARKS.md: PNG plots drawn with matplotlib, their tables and
their method (bench/capacity.py measures them)."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.stats import ms, table

if TYPE_CHECKING:  # bench.capacity needs Django set up; this module does not
    from bench.capacity import Curves

PLOTS = Path("bench") / "plots"  # beside BENCHMARKS.md
SERVICE, FLOOR = "tab:blue", "tab:gray"


def _figure(panels: int) -> tuple[Any, list[Any]]:
    import matplotlib

    # No display: files only, whatever the machine's default backend.
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, panels, figsize=(5.2 * panels, 3.8), squeeze=False)
    return figure, list(axes[0])


def _save(figure: Any, folder: Path, name: str) -> str:
    from matplotlib import pyplot

    (folder / PLOTS).mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(folder / PLOTS / name, dpi=110)
    pyplot.close(figure)
    return (PLOTS / name).as_posix()


def _latency_axes(axis: Any, xlabel: str) -> None:
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel("ms")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)


def _percentiles(axis: Any, by_size: dict[str, dict[str, Any]], label: str, color: str) -> None:
    sizes = sorted(by_size, key=int)
    x = [int(s) for s in sizes]
    axis.plot(
        x, [by_size[s]["p50_us"] / 1000 for s in sizes], "o-", color=color, label=f"{label} p50"
    )
    axis.plot(
        x, [by_size[s]["p99_us"] / 1000 for s in sizes], "s--", color=color, label=f"{label} p99"
    )


def _fanout_plot(items: list[dict[str, Any]], folder: Path) -> str:
    figure, (axis,) = _figure(1)
    for item in items:
        color = FLOOR if item["system"] == "relay" else SERVICE
        name = "floor" if item["system"] == "relay" else "service"
        _percentiles(axis, item["by_friends"], name, color)
    axis.set_title("Fan-out: one change to its last of F friends")
    _latency_axes(axis, "F, online subscribed friends")
    return _save(figure, folder, "fanout.png")


def _connections_plot(items: list[dict[str, Any]], folder: Path) -> str:
    figure, (rss, rate, redis_memory) = _figure(3)
    for item in items:
        color = FLOOR if item["system"] == "relay" else SERVICE
        name = "floor" if item["system"] == "relay" else "service"
        x = [0] + [level["connections"] for level in item["levels"]]
        points = [item["start"], *item["levels"]]
        rss.plot(x, [p["rss_kib"] / 1024 for p in points], "o-", color=color, label=name)
        redis_memory.plot(
            x, [p["used_memory"] / 2**20 for p in points], "o-", color=color, label=name
        )
        rate.plot(
            [level["connections"] for level in item["levels"]],
            [level["per_s"] for level in item["levels"]],
            "o-",
            color=color,
            label=name,
        )
    for axis, title, unit in (
        (rss, "Server process RSS", "MiB"),
        (rate, "Connect rate of each step", "connections/s"),
        (redis_memory, "Redis used_memory", "MiB"),
    ):
        axis.set_title(title)
        axis.set_xlabel("open connections (one process)")
        axis.set_ylabel(unit)
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    return _save(figure, folder, "connections.png")


def _query_plot(curve: dict[str, Any], folder: Path) -> str:
    figure, (axis,) = _figure(1)
    service = curve["service"]
    _percentiles(axis, {s: f["rpc"] for s, f in service.items()}, "GetOnlineFriends", SERVICE)
    _percentiles(axis, {s: f["rest"] for s, f in service.items()}, "REST", "tab:orange")
    _percentiles(axis, curve["floor"], "Redis read alone", FLOOR)
    axis.set_title("Online friends (half of them online)")
    _latency_axes(axis, "friends")
    return _save(figure, folder, "query.png")


def _shards_plot(items: list[dict[str, Any]], folder: Path) -> str:
    figure, (delivered, redis_cpu) = _figure(2)
    for item, color in zip(items, (SERVICE, "tab:green"), strict=False):
        steps = [s for run in item["runs"] for s in run["steps"]]
        steps.sort(key=lambda s: s["offered_per_s"])
        offered = [s["offered_per_s"] for s in steps]
        delivered.plot(
            offered, [s["delivered_per_s"] for s in steps], "o", color=color, label=item["label"]
        )
        redis_cpu.plot(
            offered, [s.get("redis_cores", 0) for s in steps], "o", color=color, label=item["label"]
        )
    top = max(s["offered_per_s"] for item in items for run in item["runs"] for s in run["steps"])
    delivered.plot([0, top], [0, top], ":", color=FLOOR, label="offered")
    delivered.set_title("Delivered against offered, one daphne process")
    delivered.set_ylabel("updates/s delivered")
    redis_cpu.set_title("Redis servers' CPU (all shards)")
    redis_cpu.set_ylabel("cores")
    redis_cpu.set_ylim(bottom=0)
    for axis in (delivered, redis_cpu):
        axis.set_xlabel("updates/s offered")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    return _save(figure, folder, "shards.png")


def draw(results: dict[str, Any], folder: Path) -> list[str]:
    """Draw the curves measured in `results` under `folder`/bench/plots; returns the
    markdown that shows them."""
    drawn = []
    if results.get("fanout_curve"):
        drawn.append(("Fan-out latency against F", _fanout_plot(results["fanout_curve"], folder)))
    if results.get("connection_curve"):
        path = _connections_plot(results["connection_curve"], folder)
        drawn.append(("Memory and connect rate against connections", path))
    if results.get("query_curve"):
        drawn.append(
            ("Online-friends query against friends", _query_plot(results["query_curve"], folder))
        )
    if results.get("shards"):
        drawn.append(
            ("Delivery on one and two Redis shards", _shards_plot(results["shards"], folder))
        )
    if not drawn:
        return []
    lines = [
        "## Curves",
        "",
        "How cost grows with work, the service beside the floor where one exists (drawn by "
        'bench/capacity_report.py; the tables are under "How cost grows with work").',
        "",
    ]
    for title, path in drawn:
        lines += [f"![{title}]({path})", ""]
    return lines


def _rows_fanout(items: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for item in items:
        for size, f in sorted(item["by_friends"].items(), key=lambda pair: int(pair[0])):
            runs = ", ".join(f"{ms(r['p50_us'])}/{ms(r['p99_us'])}" for r in f["runs"])
            rows.append(
                [item["label"], size, ms(f["p50_us"]), ms(f["p99_us"]), str(f["lost_rounds"]), runs]
            )
    return rows


def _rows_connections(items: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for item in items:
        previous = item["start"]
        for level in item["levels"]:
            opened = level["opened"]
            rows.append(
                [
                    item["label"],
                    f"{level['connections']:,}",
                    f"{level['per_s']:,.0f}",
                    f"{level['server_cpu_ms']:.2f}",
                    f"{level['rss_kib'] / 1024:.0f}",
                    f"{(level['rss_kib'] - previous['rss_kib']) / opened:.1f}",
                    f"{level['used_memory'] / 2**20:.1f}",
                    f"{(level['used_memory'] - previous['used_memory']) / opened:,.0f}",
                    f"{level['keys']:,}",
                    str(level.get("failed", 0)),
                ]
            )
            previous = level
    return rows


def _rows_query(curve: dict[str, Any]) -> list[list[str]]:
    rows = []
    for size, f in sorted(curve["service"].items(), key=lambda pair: int(pair[0])):
        floor = curve["floor"][size]
        hmget = f["redis_per_query"].get("hmget", {"per_query": 0.0, "usec_per_call": 0.0})
        rows.append(
            [
                size,
                str(f["online_friends_returned"]["rpc"]),
                f"{ms(f['rpc']['p50_us'])} / {ms(f['rpc']['p99_us'])}",
                f"{ms(f['rest']['p50_us'])} / {ms(f['rest']['p99_us'])}",
                f"{ms(floor['p50_us'])} / {ms(floor['p99_us'])}",
                f"{f['server_cpu_ms']['rpc']:.2f} / {f['server_cpu_ms']['rest']:.2f}",
                f"{hmget['per_query']:.2f}, {hmget['usec_per_call']:.0f} µs",
            ]
        )
    return rows


def _rows_shards(items: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for item in items:
        at = next(
            (s for run in item["runs"] for s in run["steps"] if s["offered_per_s"] == 10_000), None
        )
        rows.append(
            [
                item["label"],
                f"{item['sustained_per_s']:,.0f}",
                f"{item['peak_per_s']:,.0f}",
                "n/a" if at is None else f"{at['delivered_per_s']:,.0f}, {ms(at['p99_us'])}",
                "n/a" if at is None else f"{at['server_cores']:.2f} / {at['redis_cores']:.2f}",
                f"{item['redis_us_per_update']:.1f}",
                ", ".join(f"{c:,}" for c in item["commands"]),
            ]
        )
    return rows


# The tables' headers, columns separated by " | ".
FANOUT_HEADER = "system | F | p50 ms | p99 ms | lost rounds | each run: p50/p99 ms"
CONNECTIONS_HEADER = (
    "system | connections | step: per s | step: server CPU ms each | RSS MiB | step: KiB each"
    " | Redis used MiB | step: Redis bytes each | Redis keys | step: failed"
)
QUERY_HEADER = (
    "friends | online | GetOnlineFriends p50 / p99 ms | REST (first page, limit 1000) p50 / p99"
    " ms | Redis read alone p50 / p99 ms | server CPU ms per query, RPC / REST | HMGET per"
    " query, µs in Redis"
)
SHARDS_HEADER = (
    "system | sustained /s | peak /s | at 10k: delivered /s, p99 ms | at 10k: server / Redis"
    " cores | Redis µs per update (median of steps) | commands taken, per shard"
)


def _connections_note(first: dict[str, Any]) -> str:
    limit, reached = first["open_files_limit"], first["levels"][-1]["connections"]
    short = (
        f" The curve asked for {max(first['wanted']):,} connections and stopped at "
        f"{reached:,}: a process may not open more files here (the hard limit, which this "
        "container does not let even root raise)."
        if reached < max(first["wanted"])
        else ""
    )
    return (
        f"Open files allowed per process: {limit:,}.{short} Per-connection and per-user "
        "figures are those of each step (the growth since the previous level over the "
        "connections it added)."
    )


def sections(results: dict[str, Any]) -> list[str]:
    """The tables of the curves measured in `results`."""
    parts = [
        ("fanout_curve", "Fan-out latency against F", FANOUT_HEADER, _rows_fanout),
        (
            "connection_curve",
            "Memory and connect rate against connections (one process)",
            CONNECTIONS_HEADER,
            _rows_connections,
        ),
        ("query_curve", "Online-friends query against friends", QUERY_HEADER, _rows_query),
        ("shards", "Delivery throughput on one and two Redis shards", SHARDS_HEADER, _rows_shards),
    ]
    if not any(results.get(key) for key, *_ in parts):
        return []
    lines = ["## How cost grows with work", ""]
    for key, title, header, rows in parts:
        if results.get(key):
            lines += [f"### {title}", ""]
            if key == "connection_curve":
                lines += [_connections_note(results[key][0]), ""]
            lines += [*table(header.split(" | "), rows(results[key])), ""]
    lines += [
        "The failover's recovery time is not measured here: tests/test_sentinel.py measures it "
        '(the kill to the last correct view) and "Sentinel failover" under Analysis gives it.',
        "",
    ]
    return lines


def method(curves: "Curves", chosen: set[str]) -> list[str]:
    """How the curves were made, with this run's points."""
    lines = []
    if "fanout-curve" in chosen:
        lines.append(
            f"- Fan-out against F ({curves.runs} runs of {curves.fanout_rounds} rounds per F, F "
            f"= {', '.join(f'{f:,}' for f in curves.fanout_friends)}): the fan-out scenario "
            "above with these F, the service (pubsub layer) and the floor; the largest F's "
            "friends and the 10-friend users are all connected and subscribed throughout."
        )
    if "connection-curve" in chosen:
        lines.append(
            "- Connections against count: one fresh server process (the service, then the "
            f"floor); users connect up to {', '.join(f'{c:,}' for c in curves.connections)} "
            "in turn, 8 at a time per client process, with the open-files limit raised for "
            "the runner, the server and the clients. Each service user has 11 friends (one "
            "online from the start: its first item ends its subscription's set-up) and goes "
            "ONLINE once its step is open. At each level, after the server went idle: its "
            "VmRSS, and the Redis server's `used_memory` and key count (INFO, DBSIZE)."
        )
    if "query-curve" in chosen:
        lines.append(
            "- Query against friends (as the query scenario: 10 users with the same friends take "
            "turns; every other friend online; at 1,000 friends and beyond one request per "
            "0.025 s x friends / 1,000, so that no user passes the frame budget): "
            "GetOnlineFriends and REST's first page; the Redis read alone is the presence "
            "store's `visible_addresses_among` of the same friends, called from the runner."
        )
    if "shards" in chosen:
        lines.append(
            f"- Shards ({curves.throughput_runs} runs each): the throughput scenario on one "
            "daphne process, first with the one Redis server, then with a second Valkey server "
            "(on the load core too) and `REDIS_SHARDS` naming both, or, where the service has "
            "no such setting, its channel layer alone sharded over both "
            "(bench/layer_shards_settings.py; the label says which). The Redis servers' CPU is "
            "read from /proc per step; the commands each server took (INFO commandstats) show "
            "how the work was spread."
        )
    return lines
