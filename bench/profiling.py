"""Sampling profiles of a server process with py-spy, summarised as the hottest functions.

A profile is taken in its own pass, never during a measured run, so that sampling does not
touch the reported figures.
"""

import subprocess
import time
from collections import Counter
from dataclasses import dataclass
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
    )
