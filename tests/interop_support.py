"""Running the Node.js interop scripts of tests/interop/ against the service, and reading
the one line per step they print."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Service

INTEROP_DIR = Path(__file__).resolve().parent / "interop"


def node_binary(*packages: str) -> str:
    """Node.js, once the npm `packages` a script imports are installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the interop tests need Node.js 20", pytrace=False)
    missing = [p for p in packages if not (INTEROP_DIR / "node_modules" / p).is_dir()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing from tests/interop/node_modules: run `npm ci` in "
            "tests/interop (scripts/test.sh does it)",
            pytrace=False,
        )
    return node


def run_script(
    node: str,
    script: str,
    *args: str,
    env: dict[str, str],
    service: Service,
    timeout: float = 60,
) -> tuple[list[str], str]:
    """Run a script of tests/interop/; (its stdout lines, a report for failures).

    The scripts have their own timeout, shorter than `timeout`, which only guards against a
    hung node.
    """
    result = subprocess.run(
        [node, str(INTEROP_DIR / script), *args],
        cwd=INTEROP_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    report = (
        f"exit code {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        f"--- daphne log\n{service.log_tail()}"
    )
    print(result.stdout)
    assert result.returncode == 0, report
    return result.stdout.splitlines(), report


def assert_steps(lines: list[str], steps: list[str], report: str) -> None:
    """Every step's line is there, in order (other lines may come between)."""
    position = 0
    for expected in steps:
        found = next(
            (i for i in range(position, len(lines)) if lines[i].startswith(expected)), None
        )
        assert found is not None, f"missing or out of order: {expected!r}\n{report}"
        position = found + 1
