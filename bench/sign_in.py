"""WebSocket sign-in latency on PostgreSQL, idle and while a staff page takes 2 s to render.

    bash bench/sign_in.sh [--runs 3] [--sign-ins 500] [--database-url postgres://...]

A sign-in is timed from the TCP connect to the answer of the first call: the client opens
the WebSocket with `?access_token=`, which the service looks up in the database before it
serves any frame, then creates a port. `--concurrency` clients sign in at a time, each
closing its connection before the next. Under load, `--slow-requests` clients keep GETting
a staff page (bench/sign_in_urls.py) that waits 2 s on PostgreSQL, one request after
another, so that that many are always in flight. Without --database-url, a throwaway
PostgreSQL cluster is started (initdb, pg_ctl) and removed after. The REST figure, idle, is
GET /api/v1/friends/ with a bearer token, one request at a time over a keep-alive connection.
"""

import argparse
import asyncio
import contextlib
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench import system, wsclient
from bench.stats import Histogram, ms
from presence.rpc.client import RpcClient

SETTINGS_MODULE = "bench.sign_in_settings"


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster for this run, durability off; its URL. As root, it runs as the
    `postgres` system user."""
    pg_bin = next(
        (str(p.parent) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))),
        None,
    )
    tool = shutil.which
    initdb = tool("initdb") or (pg_bin and f"{pg_bin}/initdb")
    pg_ctl = tool("pg_ctl") or (pg_bin and f"{pg_bin}/pg_ctl")
    if not initdb or not pg_ctl:
        raise SystemExit("initdb and pg_ctl are needed (the PostgreSQL server package)")
    as_user = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="presence-bench-pg-"))
    folder.chmod(0o755)
    data = folder / "data"
    data.mkdir()
    if as_user:
        shutil.chown(data, "postgres")
    port = system.free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], cwd=folder, check=True, stdout=subprocess.DEVNULL)

    run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    run(pg_ctl, "start", "-D", str(data), "-w", "-l", str(data / "log"), "-o", options)
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(pg_ctl, "stop", "-D", str(data), "-m", "fast", "-w")
        shutil.rmtree(folder, ignore_errors=True)


def prepare(users: int) -> tuple[list[str], str]:
    """Users with tokens, and a staff member's session cookie for the admin."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User
    from accounts.services import issue_token
    from bench.graph import address

    tokens = [issue_token(address("sign-in", i)) for i in range(users)]
    staff = User.objects.create_superuser(address("staff", 0))
    session = SessionStore()
    session[SESSION_KEY] = staff.pk
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = staff.get_session_auth_hash()
    session.create()
    return tokens, f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


async def sign_in(port: int, token: str) -> float:
    """Connect, sign in with the token, create a port: microseconds."""
    started = time.monotonic_ns()
    ws = await wsclient.connect("127.0.0.1", port, f"/?access_token={token}")
    rpc = RpcClient(ws)
    try:
        await rpc.create_port("bench")
        return (time.monotonic_ns() - started) / 1000
    finally:
        await rpc.close()
        await ws.close()


async def sign_ins(port: int, tokens: list[str], count: int, concurrency: int) -> Histogram:
    histogram = Histogram()
    remaining = iter(range(count))

    async def lane() -> None:
        for i in remaining:
            histogram.add(await sign_in(port, tokens[i % len(tokens)]))

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return histogram


def rest_requests(port: int, tokens: list[str], count: int) -> Histogram:
    """GET /api/v1/friends/ one at a time over one keep-alive connection, users in turn:
    what the HTTP side's thread model costs each request."""
    histogram = Histogram()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(count):
        started = time.monotonic_ns()
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        connection.request("GET", "/api/v1/friends/", headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"GET /api/v1/friends/ answered {response.status}")
        histogram.add((time.monotonic_ns() - started) / 1000)
    connection.close()
    return histogram


class SlowPageLoad:
    """`clients` threads, each GETting the slow page again as soon as it is answered."""

    def __init__(self, port: int, cookie: str, clients: int) -> None:
        from bench.sign_in_urls import SLOW_PAGE

        self._port, self._cookie, self._path = port, cookie, f"/{SLOW_PAGE}"
        self._stop = threading.Event()
        self.seconds: list[float] = []
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def _client(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=120)
        while not self._stop.is_set():
            started = time.monotonic()
            connection.request("GET", self._path, headers={"Cookie": self._cookie})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                self.failures.append(f"{response.status}: {body[:200]!r}")
                return
            self.seconds.append(time.monotonic() - started)
        connection.close()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def _p50_p99(histogram: Histogram) -> str:
    return f"{ms(histogram.percentile(0.5))} / {ms(histogram.percentile(0.99))}"


def _uptime() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(arguments: argparse.Namespace, database_url: str) -> None:
    os.environ.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE})
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=system.BASE_DIR,
        check=True,
    )
    tokens, cookie = prepare(arguments.users)
    work_dir = Path(tempfile.mkdtemp(prefix="presence-bench-sign-in-"))
    server = system.daphne(0, dict(os.environ), work_dir)
    print(f"commit {_commit()}; server log {server.log}", flush=True)
    print(
        "| run | sign-in idle p50 / p99 ms | sign-in loaded p50 / p99 ms | slow pages "
        "| REST idle p50 / p99 ms | load average |"
    )
    print("|---|---|---|---|---|---|")
    try:
        port, count, lanes = server.port, arguments.sign_ins, arguments.concurrency
        asyncio.run(sign_ins(port, tokens, 50, lanes))  # warm-up: connections, caches
        rest_requests(port, tokens, 50)
        for run in range(1, arguments.runs + 1):
            idle = asyncio.run(sign_ins(port, tokens, count, lanes))
            load = SlowPageLoad(port, cookie, arguments.slow_requests)
            time.sleep(0.5)  # the slow requests are in flight
            loaded = asyncio.run(sign_ins(port, tokens, count, lanes))
            load.stop()
            if load.failures:
                raise SystemExit(f"the slow page failed: {load.failures[0]}")
            rest = rest_requests(port, tokens, count)
            pages = f"{len(load.seconds)}, {min(load.seconds):.2f}-{max(load.seconds):.2f} s"
            print(
                f"| {run} | {_p50_p99(idle)} | {_p50_p99(loaded)} | {pages} "
                f"| {_p50_p99(rest)} | {_uptime()} |",
                flush=True,
            )
    finally:
        server.stop()


def _commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=system.BASE_DIR, capture_output=True, text=True
    )
    return found.stdout.strip() or "unknown"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="idle + loaded pairs (3)")
    parser.add_argument(
        "--sign-ins", type=int, default=500, help="sign-ins (and REST requests) per run (500)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="sign-ins at a time (4)")
    parser.add_argument("--slow-requests", type=int, default=3, help="slow pages in flight (3)")
    parser.add_argument("--users", type=int, default=100, help="users signing in in turn (100)")
    parser.add_argument("--database-url", help="an empty PostgreSQL database to use")
    arguments = parser.parse_args(argv)
    if not os.environ.get("REDIS_URL"):
        print("REDIS_URL is not set: run bash bench/sign_in.sh", file=sys.stderr)
        return 2
    if arguments.database_url:
        measure(arguments, arguments.database_url)
        return 0
    with throwaway_postgres() as url:
        measure(arguments, url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
