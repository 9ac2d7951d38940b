"""Processes the benchmark starts, where they run, and what /proc says about them.

Every server process is pinned to its own core when the machine has more than one, and the
load (client processes, Redis) to the others, so that client cost does not hide server
cost. Children get SIGTERM when the runner dies, however it dies, so nothing outlives it.
"""

import ctypes
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent exits."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# Read once, at import: the runner later pins itself to the load cores, and reading the
# affinity then would leave the servers no core of their own.
_MACHINE_CORES = sorted(os.sched_getaffinity(0))


def cores() -> list[int]:
    return list(_MACHINE_CORES)


def server_cores(index: int) -> set[int]:
    """The core of the `index`-th server process: its own, round robin."""
    available = cores()
    return {available[index % len(available)]}


def load_cores() -> set[int]:
    """Where clients and Redis run: every core but the first server's, if there are others."""
    available = cores()
    return set(available[1:]) or set(available)


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of `pid` (a process started before us, such as Redis)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_setup(cpus: set[int]) -> Callable[[], None]:
    def setup() -> None:
        die_with_parent()
        os.sched_setaffinity(0, cpus)

    return setup


class Server:
    """A server process listening on 127.0.0.1:port, its output in a log file."""

    def __init__(
        self,
        command: list[str],
        port: int,
        env: dict[str, str],
        cpus: set[int],
        log: Path,
        cwd: Path = BASE_DIR,
    ) -> None:
        self.port = port
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(cpus),
            )
        self._wait_listening()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not listen within {timeout} s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def daphne(index: int, env: dict[str, str], log_dir: Path, code: Path = BASE_DIR) -> Server:
    """The service exactly as users run it: presence_project.server, i.e. daphne; `code`
    is the checkout whose service runs (another one, for a comparison)."""
    port = free_port()
    command = [sys.executable, "-m", "presence_project.server", "-b", "127.0.0.1", "-p", str(port)]
    log = log_dir / f"daphne-{index}-{port}.log"
    return Server(command, port, env, server_cores(index), log, code)


def relay(
    index: int, redis_url: str, graph_file: Path, log_dir: Path, server: str = "websockets"
) -> Server:
    """The floor (bench/relay.py), on `websockets` or on the service's daphne."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bench.relay",
        "--port",
        str(port),
        "--redis-url",
        redis_url,
        "--graph",
        str(graph_file),
        "--server",
        server,
    ]
    log = log_dir / f"relay-{server}-{index}-{port}.log"
    return Server(command, port, dict(os.environ), server_cores(index), log)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class CpuMeter:
    """CPU use of some processes over an interval, in cores (1.0 = one core busy)."""

    def __init__(self, pids: list[int]) -> None:
        self._pids = pids
        self._start = time.monotonic()
        self._used = [cpu_seconds(pid) for pid in pids]

    def read(self) -> float:
        elapsed = time.monotonic() - self._start
        used = sum(cpu_seconds(p) - u for p, u in zip(self._pids, self._used, strict=True))
        return used / elapsed if elapsed > 0 else 0.0


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    memory = next(
        line.split(":")[1].strip()
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    model = next(
        (
            line.split(":")[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{int(memory.split()[0]) / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _system_busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system_, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system_ + irq + softirq + steal) / _CLOCK_TICKS


def _tree(root: int) -> set[int]:
    """`root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = set(), [root]
    while stack:
        pid = stack.pop()
        found.add(pid)
        stack.extend(children.get(pid, []))
    return found


class Contention:
    """CPU that processes outside this benchmark used meanwhile (other jobs on the machine):
    the whole machine's busy time less that of the benchmark's process tree, every second."""

    def __init__(self, root: int) -> None:
        self._root = root
        self.foreign_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _ours(self) -> dict[int, float]:
        times = {}
        for pid in _tree(self._root):
            try:
                times[pid] = cpu_seconds(pid)
            except OSError:
                continue
        return times

    def _run(self) -> None:
        busy, ours = _system_busy_seconds(), self._ours()
        while not self._stop.wait(1.0):
            now_busy, now_ours = _system_busy_seconds(), self._ours()
            mine = sum(t - ours[p] for p, t in now_ours.items() if p in ours)
            self.foreign_seconds += max(0.0, now_busy - busy - mine)
            busy, ours = now_busy, now_ours

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
