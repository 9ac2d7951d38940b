"""Interop: Decentraland's own dcl-rpc client (@dcl/rpc 1.1.2, from npm) against the service."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

INTEROP_DIR = Path(__file__).resolve().parent / "interop"
SCENARIO = INTEROP_DIR / "scenario.mjs"

# The lines scenario.mjs prints, in order, one per step.
STEPS = [
    "ok: A and B connected",
    "ok: A requested friendship with B",
    "ok: B accepted A",
    "ok: B subscribed to presence updates",
    "ok: A set status ONLINE",
    "ok: B saw A ONLINE",
    "ok: B's online friends list A",
    "ok: A closed its WebSocket",
    "ok: B saw A OFFLINE",
    "ok: B's online friends no longer list A",
    "ok: B cancelled its stream and disconnected",
    "interop scenario passed",
]


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the @dcl/rpc interop test needs Node.js 20")
    if not (INTEROP_DIR / "node_modules" / "@dcl" / "rpc").is_dir():
        pytest.fail(
            "tests/interop/node_modules is missing: run `npm ci` in tests/interop "
            "(scripts/test.sh does it)",
            pytrace=False,
        )
    return node


def test_dcl_rpc_client_sees_friend_online_then_offline(service, make_user):
    node = node_binary()
    alice, bob = make_user(), make_user()
    env = {
        **os.environ,
        "RPC_URL": service.ws_url,
        "USER_A_ADDRESS": alice.address,
        "USER_A_TOKEN": alice.token,
        "USER_B_ADDRESS": bob.address,
        "USER_B_TOKEN": bob.token,
    }
    # The script has its own 20 s timeout; this one only guards against a hung node.
    result = subprocess.run(
        [node, str(SCENARIO)],
        cwd=INTEROP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = (
        f"exit code {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        f"--- daphne log\n{service.log_tail()}"
    )
    print(result.stdout)
    assert result.returncode == 0, report
    lines = result.stdout.splitlines()
    position = 0
    for expected in STEPS:
        found = next(
            (i for i in range(position, len(lines)) if lines[i].startswith(expected)), None
        )
        assert found is not None, f"missing or out of order: {expected!r}\n{report}"
        position = found + 1
