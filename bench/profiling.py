"""Sampling profiles of a server process with py-spy, summarised as the hottest functions.

A profile is taken in its own pass, never during a measured run, so that sampling does not
touch the reported figures.
"""

import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.system import load_cores

RATE = 200  # samples per second


@dataclass
class Profile:
    name: str
    samples: int
    busy: float
    own: list[tuple[str, float]]
    inclusive: list[tuple[str, float]]
    raw_file: str
    layers: list[tuple[str, float]] = field(default_factory=list)


class Sampler:
    """py-spy recording one process until `stop`."""

    def __init__(self, pid: int, out: Path, name: str) -> None:
        self.name = name
        self.out = out
        self.started = time.monotonic()
        cores = ",".join(str(c) for c in sorted(load_cores()))
        self.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                cores,
                "py-spy",
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                str(RATE),
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)

    def stop(self, top: int = 20) -> Profile:
        seconds = time.monotonic() - self.started
        self.process.send_signal(2)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return summarise(self.name, self.out, seconds, top)


# Which layer a frame's module belongs to (py-spy names files from their package root):
# the first rule whose prefix starts the path wins.
LAYERS = (
    ("twisted/", "Twisted (reactor, TCP transport)"),
    ("autobahn/", "autobahn (WebSocket frames, handshake)"),
    ("txaio/", "autobahn (WebSocket frames, handshake)"),
    ("daphne/", "daphne (HTTP, ASGI queues)"),
    ("presence_project/server.py", "daphne (HTTP, ASGI queues)"),
    ("channels_redis/", "channels-redis (and msgpack)"),
    ("msgpack/", "channels-redis (and msgpack)"),
    ("redis/", "redis-py and hiredis"),
    ("hiredis", "redis-py and hiredis"),
    ("channels/", "Channels (consumer base, layer API)"),
    ("asgiref/", "asgiref (thread hops)"),
    ("presence_project/sync_http.py", "asgiref (thread hops)"),
    ("rest_framework/", "DRF"),
    ("django/db/", "database (ORM, driver)"),
    ("sqlite3/", "database (ORM, driver)"),
    ("psycopg/", "database (ORM, driver)"),
    ("django/", "Django (request, middleware)"),
    ("google/protobuf/", "protobuf"),
    ("prometheus_client/", "prometheus_client (metrics)"),
    ("websockets/", "websockets (the floor's server)"),
    ("bench/relay.py", "relay (the floor's own code)"),
    ("presence/rpc/", "ours: dcl-rpc session and wire"),
    ("presence/delivery/", "ours: delivery (process channel, sessions)"),
    ("presence/store/", "ours: presence store"),
    ("presence/procedures/", "ours: procedures"),
    ("presence/protocol/", "protobuf"),
    ("presence/consumers.py", "ours: consumer"),
    ("presence/layer.py", "ours: consumer"),
    ("presence/api/", "ours: REST views"),
    ("presence/events.py", "ours: events, services, publishing"),
    ("presence/services.py", "ours: events, services, publishing"),
    ("presence/publishing.py", "ours: events, services, publishing"),
    ("presence/", "ours: other (observability, admission, auth)"),
    ("accounts/", "ours: accounts, friendships"),
    ("friendships/", "ours: accounts, friendships"),
    ("json/", "JSON (stdlib)"),
)
_EVENT_LOOP = "asyncio event loop (scheduling, selector)"
POLL_WAIT = "waiting in epoll (idle)"
THREAD_WAIT = "idle worker threads"
THREAD_POOL = "thread pool (hand-over)"
# Frames that run whatever was scheduled: what is below them is charged to the loop itself.
_LOOP = ("Handle._run (asyncio/", "BaseEventLoop._run_once (asyncio/")
_SCHEDULERS = (*_LOOP, "_WorkItem.run (concurrent/")


def _where(frame: str) -> str:
    return frame.rpartition(" (")[2].rsplit(":", 1)[0]


def _standard(where: str) -> bool:
    top = where.split("/", 1)[0].removesuffix(".py")
    return where.startswith("<") or top in sys.stdlib_module_names


def layer(stack: list[str]) -> str:
    """The layer a sample's time is charged to: its own frame's, or, when that frame is in
    the standard library (a socket call, an asyncio queue, a dataclass's __init__), the
    nearest caller's that is not; what only the event loop itself runs is the loop's."""
    leaf = stack[-1]
    if leaf.startswith(("select (selectors.py", "EpollSelector.select (selectors.py")):
        return POLL_WAIT
    if leaf.startswith(("_worker (concurrent", "wait (threading.py", "Condition.wait (threading")):
        return THREAD_WAIT
    scheduler = _EVENT_LOOP
    for frame in reversed(stack):
        if frame.startswith(_SCHEDULERS):
            scheduler = _EVENT_LOOP if frame.startswith(_LOOP) else THREAD_POOL
            break
        where = _where(frame)
        for prefix, name in LAYERS:
            if where.startswith(prefix):
                return name
        if not _standard(where):
            return f"other: {where}"
    return scheduler


def layers(raw: Path) -> list[tuple[str, float]]:
    """Samples per layer, in % of the samples that were not waiting (in epoll, or a worker
    thread with nothing to do), which are left out."""
    counts: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            counts[layer(stack.split(";"))] += int(count_text)
    for waiting in (POLL_WAIT, THREAD_WAIT):
        counts.pop(waiting, None)
    working = sum(counts.values())
    return [(name, 100 * c / working) for name, c in counts.most_common()]


def _function(frame: str) -> str:
    """'name (path/to/module.py:123)' -> 'name (module.py)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].split(':')[0]})" if where else name


def summarise(name: str, raw: Path, seconds: float, top: int) -> Profile:
    """Own time (the sampled frame) and inclusive time per function, in % of busy samples.

    py-spy leaves idle samples out, so `busy` (samples over the samples a fully busy
    thread would give) says how loaded the process was.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if raw.exists():
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_function(f) for f in stack.split(";")]
            total += count
            own[frames[-1]] += count
            for function in set(frames):
                inclusive[function] += count
    scale = 100 / total if total else 0
    # Frames on nearly every stack (the event loop, daphne's main) say nothing: left out.
    telling = [(f, c) for f, c in inclusive.most_common() if c < 0.9 * total]
    return Profile(
        name=name,
        samples=total,
        busy=total / (seconds * RATE) if seconds else 0.0,
        own=[(f, c * scale) for f, c in own.most_common(top)],
        inclusive=[(f, c * scale) for f, c in telling[:top]],
        raw_file=str(raw),
        layers=layers(raw) if raw.exists() else [],
    )


if __name__ == "__main__":
    # python -m bench.profiling RAW_FILE...: the layer table of py-spy raw files.
    for path in sys.argv[1:]:
        print(path)
        for name, share in layers(Path(path)):
            print(f"  {share:5.1f} %  {name}")
