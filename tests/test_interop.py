"""Interop: Decentraland's own dcl-rpc client (@dcl/rpc 1.1.2, from npm) against the service."""

import pytest

from tests.support import assert_steps, node_binary, run_script

pytestmark = pytest.mark.django_db(transaction=True)

# The lines scenario.mjs prints, in order, one per step.
STEPS = [
    "ok: A and B connected",
    "ok: A and B start with no friendship or pending request",
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


def test_dcl_rpc_client_sees_friend_online_then_offline_again_and_again(service, make_user):
    """The same users twice: the second run starts by ending the first one's friendship."""
    node = node_binary("@dcl/rpc")
    alice, bob = make_user(), make_user()
    env = {
        "RPC_URL": service.ws_url,
        "USER_A_ADDRESS": alice.address,
        "USER_A_TOKEN": alice.token,
        "USER_B_ADDRESS": bob.address,
        "USER_B_TOKEN": bob.token,
    }
    for _ in range(2):
        lines, report = run_script(node, "scenario.mjs", env=env, service=service)
        assert_steps(lines, STEPS, report)


def test_dcl_rpc_client_reconnecting_600_times_is_served_every_time(service, make_user):
    """@dcl/rpc numbers messages per process, so the 600 first frames carry 600 different
    message numbers: none of them may be taken for a signed-fetch sign-in."""
    node = node_binary("@dcl/rpc")
    user = make_user()
    env = {"RPC_URL": service.ws_url, "USER_TOKEN": user.token, "CONNECTIONS": "600"}
    lines, report = run_script(node, "reconnect.mjs", env=env, service=service, timeout=180)
    assert lines[-1] == "served: 600 of 600", report
