"""Decentraland identities for tests: a wallet, an ephemeral key it delegates to, and the
signed-fetch headers (ADR-44) that key signs, built as @dcl/crypto builds them."""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import coincurve
from Crypto.Hash import keccak

# secp256k1's group order: s and ORDER - s are both valid signatures of the same message.
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _keccak(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def address_of(key: coincurve.PrivateKey) -> str:
    return "0x" + _keccak(key.public_key.format(compressed=False)[1:])[-20:].hex()


def personal_sign(key: coincurve.PrivateKey, message: str) -> str:
    data = message.encode()
    digest = _keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)
    signature = key.sign_recoverable(digest, hasher=None)
    return "0x" + signature[:64].hex() + format(signature[64] + 27, "02x")


def malleate(signature: str) -> str:
    """The other valid encoding of the same signature: (r, n - s), recovery 27 <-> 28."""
    raw = bytes.fromhex(signature[2:])
    s = ORDER - int.from_bytes(raw[32:64], "big")
    return "0x" + raw[:32].hex() + s.to_bytes(32, "big").hex() + format(55 - raw[64], "02x")


def link(kind: str, payload: str, signature: str = "") -> dict[str, str]:
    return {"type": kind, "payload": payload, "signature": signature}


def ephemeral_message(ephemeral_address: str, expiration: datetime) -> str:
    iso = expiration.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"Decentraland Login\nEphemeral address: {ephemeral_address}\nExpiration: {iso}"


@dataclass
class Identity:
    wallet: coincurve.PrivateKey
    ephemeral: coincurve.PrivateKey
    chain: list[dict[str, str]]  # SIGNER and the ephemeral link, as a client keeps them

    @property
    def address(self) -> str:
        return address_of(self.wallet)

    def sign(self, payload: str) -> list[dict[str, str]]:
        """The whole chain for a final payload signed by the ephemeral key."""
        final = link("ECDSA_SIGNED_ENTITY", payload, personal_sign(self.ephemeral, payload))
        return [*self.chain, final]

    def headers(
        self,
        method: str,
        path: str,
        metadata: str = "{}",
        timestamp_ms: int | None = None,
        chain: list[dict[str, str]] | None = None,
    ) -> dict[str, str]:
        """Signed-fetch headers for `method path`, as decentraland-crypto-fetch makes them."""
        timestamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        payload = f"{method}:{path}:{timestamp}:{metadata}".lower()
        links = chain if chain is not None else self.sign(payload)
        headers = {f"x-identity-auth-chain-{i}": json.dumps(item) for i, item in enumerate(links)}
        headers["x-identity-timestamp"] = timestamp
        headers["x-identity-metadata"] = metadata
        return headers


def new_identity(
    expires_in: timedelta = timedelta(hours=1), wallet: coincurve.PrivateKey | None = None
) -> Identity:
    """A fresh wallet (unless given) delegating to a fresh ephemeral key until `expires_in`."""
    wallet = wallet or coincurve.PrivateKey()
    ephemeral = coincurve.PrivateKey()
    message = ephemeral_message(address_of(ephemeral), datetime.now(UTC) + expires_in)
    chain = [
        link("SIGNER", address_of(wallet)),
        link("ECDSA_EPHEMERAL", message, personal_sign(wallet, message)),
    ]
    return Identity(wallet, ephemeral, chain)


def ws_sign_in_frame(identity: Identity, **kwargs: object) -> str:
    """The first frame Decentraland's clients send: the headers of get:/ as a JSON object."""
    return json.dumps(identity.headers("get", "/", **kwargs))  # type: ignore[arg-type]
