"""Verifying signed fetch (ADR-44) auth chains, with no server: what is accepted, and every
way a request is refused."""

import json
from datetime import UTC, datetime, timedelta

import coincurve
import pytest

from accounts.signed_fetch import InvalidSignedRequest, recover_personal_signer, verify
from tests.signing import address_of, ephemeral_message, link, malleate, new_identity, personal_sign
from tests.support import now_ms

WINDOW = 300

# The identity in decentraland-crypto-fetch's own tests: a wallet's published signature.
PUBLISHED_WALLET = "0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5"
PUBLISHED_EPHEMERAL_KEY = "bc453a92d9baeb3d10294cbc1d48ef6738f718fd31b4eb8085efe7b311299399"
PUBLISHED_EPHEMERAL_MESSAGE = (
    "Decentraland Login\nEphemeral address: 0x84452bbFA4ca14B7828e2F3BBd106A2bD495CD34\n"
    "Expiration: 3021-10-16T22:32:29.626Z"
)
PUBLISHED_SIGNATURE = (
    "0x39dd4ddf131ad2435d56c81c994c4417daef5cf5998258027ef8a1401470876a1365a6b79810dc0c4a"
    "2e9352befb63a9e4701d67b38007d83ffc4cd2b7a38ad51b"
)


def check(method: str, path: str, headers: dict[str, str], at: int | None = None) -> object:
    return verify(method, path, headers, window_seconds=WINDOW, now_ms=at or now_ms())


def refused(method: str, path: str, headers: dict[str, str], at: int | None = None) -> str:
    with pytest.raises(InvalidSignedRequest) as error:
        check(method, path, headers, at)
    return str(error.value)


def test_the_published_signature_recovers_its_wallet():
    assert recover_personal_signer(PUBLISHED_EPHEMERAL_MESSAGE, PUBLISHED_SIGNATURE) == (
        PUBLISHED_WALLET
    )


def test_a_request_signed_by_the_published_identity_is_that_wallets():
    ephemeral = coincurve.PrivateKey(bytes.fromhex(PUBLISHED_EPHEMERAL_KEY))
    timestamp = str(now_ms())
    payload = f"get:/:{timestamp}:{{}}"
    chain = [
        link("SIGNER", "0x7949f9F239D1A0816ce5Eb364A1F588AE9Cc1Bf5"),
        link("ECDSA_EPHEMERAL", PUBLISHED_EPHEMERAL_MESSAGE, PUBLISHED_SIGNATURE),
        link("ECDSA_SIGNED_ENTITY", payload, personal_sign(ephemeral, payload)),
    ]
    headers = {f"x-identity-auth-chain-{i}": json.dumps(item) for i, item in enumerate(chain)}
    headers |= {"x-identity-timestamp": timestamp, "x-identity-metadata": "{}"}
    signed = check("get", "/", headers)
    assert signed.address == PUBLISHED_WALLET
    assert signed.signer == "0x84452bbfa4ca14b7828e2f3bbd106a2bd495cd34"


def test_a_fresh_identity_signs_a_request():
    identity = new_identity()
    signed = check("POST", "/api/v1/auth/token", identity.headers("post", "/api/v1/auth/token"))
    assert signed.address == identity.address
    assert signed.payload.startswith("post:/api/v1/auth/token:")


def test_header_names_are_case_insensitive():
    identity = new_identity()
    headers = {name.title(): value for name, value in identity.headers("get", "/").items()}
    assert check("get", "/", headers).address == identity.address


def test_a_direct_wallet_signature_needs_no_ephemeral_key():
    identity = new_identity()
    timestamp = str(now_ms())
    payload = f"get:/:{timestamp}:{{}}"
    chain = [
        identity.chain[0],
        link("ECDSA_SIGNED_ENTITY", payload, personal_sign(identity.wallet, payload)),
    ]
    headers = identity.headers("get", "/", timestamp_ms=int(timestamp), chain=chain)
    assert check("get", "/", headers).address == identity.address


def test_the_replay_key_ignores_how_the_signature_is_encoded():
    identity = new_identity()
    headers = identity.headers("get", "/")
    final = json.loads(headers["x-identity-auth-chain-2"])
    final["signature"] = malleate(final["signature"])
    reencoded = headers | {"x-identity-auth-chain-2": json.dumps(final)}
    assert check("get", "/", reencoded).replay_key == check("get", "/", headers).replay_key


# --- Time -------------------------------------------------------------------------------


def test_an_expired_ephemeral_key_is_refused():
    identity = new_identity(expires_in=timedelta(seconds=-1))
    assert "expired" in refused("get", "/", identity.headers("get", "/"))


@pytest.mark.parametrize("offset_s", [-(WINDOW + 1), WINDOW + 1])
def test_a_timestamp_outside_the_window_is_refused(offset_s):
    identity = new_identity()
    at = now_ms()
    headers = identity.headers("get", "/", timestamp_ms=at + offset_s * 1000)
    assert f"within {WINDOW} s" in refused("get", "/", headers, at)


@pytest.mark.parametrize("offset_s", [-(WINDOW - 1), WINDOW - 1])
def test_a_timestamp_inside_the_window_is_accepted(offset_s):
    identity = new_identity()
    at = now_ms()
    headers = identity.headers("get", "/", timestamp_ms=at + offset_s * 1000)
    assert check("get", "/", headers, at).address == identity.address


@pytest.mark.parametrize("value", ["", "soon", "-5", "1e12", "١٢٣"])
def test_a_timestamp_that_is_not_milliseconds_is_refused(value):
    headers = new_identity().headers("get", "/") | {"x-identity-timestamp": value}
    assert "x-identity-timestamp" in refused("get", "/", headers)


# --- The chain ----------------------------------------------------------------------------


def test_an_ephemeral_key_not_signed_by_the_wallet_is_refused():
    identity, stranger = new_identity(), new_identity()
    identity.chain[1] = stranger.chain[1]  # another wallet delegated to another key
    assert "broken" in refused("get", "/", identity.headers("get", "/"))


def test_a_request_not_signed_by_the_ephemeral_key_is_refused():
    identity, stranger = new_identity(), new_identity()
    identity.ephemeral = stranger.ephemeral
    assert "not signed by the chain's last key" in refused("get", "/", identity.headers("get", "/"))


def test_a_claimed_signer_that_did_not_sign_is_refused():
    identity, victim = new_identity(), new_identity()
    identity.chain[0] = link("SIGNER", victim.address)
    assert "broken" in refused("get", "/", identity.headers("get", "/"))


def test_an_ephemeral_link_whose_text_was_changed_is_refused():
    identity = new_identity()
    original = identity.chain[1]["payload"]
    later = original.rsplit("Expiration: ", 1)[0] + "Expiration: 3000-01-01T00:00:00.000Z"
    identity.chain[1] = link("ECDSA_EPHEMERAL", later, identity.chain[1]["signature"])
    assert "broken" in refused("get", "/", identity.headers("get", "/"))


@pytest.mark.parametrize(
    "chain",
    [
        [],
        [link("SIGNER", "0x" + "1" * 40)],
        [link("ECDSA_EPHEMERAL", "x", "0x00"), link("ECDSA_SIGNED_ENTITY", "x", "0x00")],
    ],
    ids=["empty", "signer-only", "no-signer"],
)
def test_a_chain_of_the_wrong_shape_is_refused(chain):
    identity = new_identity()
    headers = identity.headers("get", "/", chain=chain)
    assert "auth chain" in refused("get", "/", headers)


def test_contract_wallet_links_are_refused_clearly():
    identity = new_identity()
    identity.chain[1] = link("ECDSA_EIP_1654_EPHEMERAL", identity.chain[1]["payload"], "0x00")
    assert "EIP-1654" in refused("get", "/", identity.headers("get", "/"))


def test_a_chain_longer_than_the_limit_is_refused_before_any_recovery():
    identity = new_identity()
    chain = [identity.chain[0]] + [identity.chain[1]] * 10
    assert "at most 10 links" in refused("get", "/", identity.headers("get", "/", chain=chain))


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"type": "SIGNER"}'])
def test_a_malformed_link_is_refused(raw):
    headers = new_identity().headers("get", "/") | {"x-identity-auth-chain-1": raw}
    assert "link 1" in refused("get", "/", headers)


@pytest.mark.parametrize("signature", ["", "0x1234", "0x" + "zz" * 65, "0x" + "00" * 64 + "1d"])
def test_a_malformed_signature_is_refused(signature):
    identity = new_identity()
    identity.chain[1] = link("ECDSA_EPHEMERAL", identity.chain[1]["payload"], signature)
    assert "signature" in refused("get", "/", identity.headers("get", "/"))


def test_an_ephemeral_payload_without_address_and_expiration_is_refused():
    identity = new_identity()
    message = "Decentraland Login\nsomething else"
    identity.chain[1] = link("ECDSA_EPHEMERAL", message, personal_sign(identity.wallet, message))
    assert "ephemeral" in refused("get", "/", identity.headers("get", "/"))


def test_an_ephemeral_message_with_carriage_returns_verifies_as_clients_sign_it():
    identity = new_identity()
    ephemeral = coincurve.PrivateKey()
    clean = ephemeral_message(address_of(ephemeral), datetime(3000, 1, 1, tzinfo=UTC))
    identity.ephemeral = ephemeral
    identity.chain[1] = link(
        "ECDSA_EPHEMERAL", clean.replace("\n", "\r\n"), personal_sign(identity.wallet, clean)
    )
    assert check("get", "/", identity.headers("get", "/")).address == identity.address


# --- The request ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("post", "/"), ("get", "/api/v1/auth/token")])
def test_a_signature_for_another_request_is_refused(method, path):
    headers = new_identity().headers("get", "/")
    assert "not for this request" in refused(method, path, headers)


def test_changed_metadata_is_refused():
    headers = new_identity().headers("get", "/", metadata='{"intent":"a"}')
    headers["x-identity-metadata"] = '{"intent":"b"}'
    assert "not for this request" in refused("get", "/", headers)


@pytest.mark.parametrize("metadata", ["[]", "not json"])
def test_metadata_that_is_not_a_json_object_is_refused(metadata):
    headers = new_identity().headers("get", "/", metadata=metadata)
    assert "x-identity-metadata" in refused("get", "/", headers)


def test_requests_signed_for_a_scene_are_refused_however_they_are_cased():
    identity = new_identity()
    signed = identity.headers("get", "/", metadata='{"signer":"decentraland-kernel-scene"}')
    assert "scene" in refused("get", "/", signed)
    # The signature covers the lowercased text, so a re-cased copy still verifies: it must
    # still read as a scene's.
    recased = signed | {"x-identity-metadata": '{"Signer":"Decentraland-Kernel-Scene"}'}
    assert "scene" in refused("get", "/", recased)
