"""presence_project.local_redis, as scripts start it: a real process, signalled to stop."""

import os
import signal
import subprocess
import sys

import pytest

from tests.support import BASE_DIR

# The command it runs: prints its pid, then waits far longer than the test.
COMMAND = "import os, time; print(os.getpid(), flush=True); time.sleep(120)"


def ignore_sigint() -> None:
    """What bash does for a job it starts in the background from a script."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_it_and_its_command_stop_on_sigint_or_sigterm_even_started_ignoring_sigint(signum):
    # With REDIS_URL set it starts no server of its own: only the command and the signals.
    runner = subprocess.Popen(
        [sys.executable, "-m", "presence_project.local_redis", "--", sys.executable, "-c", COMMAND],
        cwd=BASE_DIR,
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0"},
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint,
    )
    command_pid = int(runner.stdout.readline())
    try:
        runner.send_signal(signum)
        runner.wait(timeout=10)
        assert not alive(command_pid)
    finally:
        for pid in (runner.pid, command_pid):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        runner.wait()
        runner.stdout.close()
