"""Interop: Decentraland's own social client (@dcl/social-rpc-client, its v2 client,
unchanged) with identities made by @dcl/crypto, against the service."""

import json
from pathlib import Path

import pytest

from accounts.services import user_for_token
from tests.support import assert_steps, node_binary, run_script

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGES = ("@dcl/social-rpc-client", "@dcl/crypto", "decentraland-crypto-fetch")

# The lines social_v2.mjs prints, in order, one per step.
FRIENDS_STEPS = [
    "ok: A (",
    "ok: A and B start with no friendship, request or block",
    "ok: A requested friendship with B",
    "ok: B sees A's request",
    "ok: B accepted A and lists A as a friend",
    "ok: B saw A ONLINE",
    "ok: B saw A OFFLINE",
    "ok: B saw A come back ONLINE",
    "ok: A and B disconnected",
    "social v2 friends scenario passed",
]
TOKEN_STEPS = [
    "ok: A got a token for",
    "ok: the token reads A's friends",
    "ok: a replay of the signed headers is refused",
    "social v2 token scenario passed",
]


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory, service) -> tuple[Path, Path]:
    """Two identities, made once by @dcl/crypto for both tests: a wallet and its ephemeral key."""
    directory = tmp_path_factory.mktemp("identities")
    run_script(
        node_binary(*PACKAGES),
        "social_v2.mjs",
        "identities",
        str(directory),
        env={},
        service=service,
    )
    return directory / "a.json", directory / "b.json"


def address_of(identity: Path) -> str:
    return json.loads(identity.read_text())["address"].lower()


def test_social_client_befriends_and_sees_a_friend_come_and_go_again_and_again(service, identities):
    """The same identities twice: the second run starts by ending the first one's friendship."""
    node = node_binary(*PACKAGES)
    a, b = identities
    for _ in range(2):
        lines, report = run_script(
            node,
            "social_v2.mjs",
            "friends",
            str(a),
            str(b),
            env={"RPC_URL": service.ws_url},
            service=service,
        )
        assert_steps(lines, FRIENDS_STEPS, report)


def test_the_same_identity_signs_a_token_request(service, identities):
    node = node_binary(*PACKAGES)
    a, _ = identities
    lines, report = run_script(
        node,
        "social_v2.mjs",
        "token",
        str(a),
        env={"HTTP_URL": service.http_url},
        service=service,
    )
    assert_steps(lines, TOKEN_STEPS, report)
    token = next(line.removeprefix("token: ") for line in lines if line.startswith("token: "))
    assert user_for_token(token).address == address_of(a)
