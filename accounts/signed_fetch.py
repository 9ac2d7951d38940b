"""Decentraland signed fetch (ADR-44): who signed a request, proven by an auth chain.

A wallet signs (personal_sign) a message delegating to an ephemeral key until an expiration;
the ephemeral key signs `method:path:timestamp:metadata`, lowercased. The chain travels in
the headers x-identity-auth-chain-0, -1, ... (one JSON link each) with x-identity-timestamp
(ms) and x-identity-metadata (JSON). Only ordinary wallets are verified here: contract
wallets (EIP-1654) need a blockchain node, which this service does not have.

Pure: no database, no Redis, no clock but the one passed in. Elliptic-curve recovery is
libsecp256k1's (coincurve) and Keccak-256 is pycryptodome's; only the message formats are
assembled here.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import coincurve
from Crypto.Hash import keccak

from presence_project.timestamps import ms

AUTH_CHAIN_PREFIX = "x-identity-auth-chain-"
TIMESTAMP_HEADER = "x-identity-timestamp"
METADATA_HEADER = "x-identity-metadata"

# Explorers sign scenes' requests with the user's ephemeral key and this signer in the
# metadata: a scene (anyone's code) could otherwise sign in as the user who visits it.
SCENE_SIGNER = "decentraland-kernel-scene"

# Links beyond this are refused before any signature is checked: each costs a recovery.
MAX_CHAIN_LINKS = 10

_SIGNER = "SIGNER"
_EPHEMERAL = "ECDSA_EPHEMERAL"
_SIGNED_ENTITY = "ECDSA_SIGNED_ENTITY"
_CONTRACT_WALLET_LINKS = {"ECDSA_EIP_1654_EPHEMERAL", "ECDSA_EIP_1654_SIGNED_ENTITY"}

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_EPHEMERAL_ADDRESS_LINE = "Ephemeral address: "
_EXPIRATION_LINE = "Expiration: "


class InvalidSignedRequest(Exception):
    """The request is not signed as it must be; the message says why, for the client."""


@dataclass(frozen=True)
class SignedRequest:
    address: str  # the wallet that signed, lowercase
    signer: str  # the key that signed the request itself (ephemeral), lowercase
    payload: str  # what it signed: method:path:timestamp:metadata, lowercased
    valid_until_ms: int  # when its timestamp leaves the accepted window

    @property
    def replay_key(self) -> str:
        """The same request by the same key, whatever the signature's encoding.

        ECDSA signatures are malleable (s and n - s both verify), so a replay check keyed by
        the signature text could be walked past with a re-encoded copy.
        """
        return hashlib.sha256(f"{self.signer}\n{self.payload}".encode()).hexdigest()


def _keccak(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def recover_personal_signer(message: str, signature: str) -> str:
    """The address whose personal_sign (EIP-191) of `message` is `signature`, lowercase."""
    if not _SIGNATURE.match(signature):
        raise InvalidSignedRequest("a signature must be 0x followed by 130 hex digits")
    raw = bytes.fromhex(signature[2:])
    recovery = raw[64] - 27 if raw[64] >= 27 else raw[64]
    if recovery not in (0, 1):
        raise InvalidSignedRequest("a signature's recovery byte must be 27, 28, 0 or 1")
    data = message.encode()
    digest = _keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            raw[:64] + bytes([recovery]), digest, hasher=None
        )
    except ValueError as exc:  # libsecp256k1 refuses a signature no key could have made
        raise InvalidSignedRequest("a signature is not a valid secp256k1 signature") from exc
    return "0x" + _keccak(key.format(compressed=False)[1:])[-20:].hex()


def _chain(headers: Mapping[str, str]) -> list[dict[str, str]]:
    links = []
    while (raw := headers.get(f"{AUTH_CHAIN_PREFIX}{len(links)}")) is not None:
        if len(links) == MAX_CHAIN_LINKS:
            raise InvalidSignedRequest(f"an auth chain has at most {MAX_CHAIN_LINKS} links")
        try:
            link = json.loads(raw)
        except ValueError:
            raise InvalidSignedRequest(f"auth chain link {len(links)} is not JSON") from None
        if not isinstance(link, dict) or not all(
            isinstance(link.get(key), str) for key in ("type", "payload", "signature")
        ):
            raise InvalidSignedRequest(
                f"auth chain link {len(links)} must have type, payload and signature strings"
            )
        links.append(link)
    if not links:
        raise InvalidSignedRequest(f"no auth chain: send the {AUTH_CHAIN_PREFIX}N headers")
    return links


def _timestamp(raw: str | None, now_ms: int, window_ms: int) -> int:
    if raw is None or not raw.isascii() or not raw.isdigit():
        raise InvalidSignedRequest(f"{TIMESTAMP_HEADER} must be milliseconds since the epoch")
    timestamp = int(raw)
    if abs(now_ms - timestamp) > window_ms:
        raise InvalidSignedRequest(
            f"the request was signed too long ago or too far ahead: sign it within "
            f"{window_ms // 1000} s of the server's clock"
        )
    return timestamp


def _check_metadata(raw: str) -> None:
    """Refuse what scenes sign. The signature covers the lowercased text, so that is the text
    read: a re-cased copy must not pass for something it was not."""
    if not raw:
        return
    try:
        metadata = json.loads(raw.lower())
    except ValueError:
        raise InvalidSignedRequest(f"{METADATA_HEADER} is not JSON") from None
    if not isinstance(metadata, dict):
        raise InvalidSignedRequest(f"{METADATA_HEADER} must be a JSON object")
    if metadata.get("signer") == SCENE_SIGNER:
        raise InvalidSignedRequest("requests signed on behalf of a scene are refused")


def _expiration(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidSignedRequest(f"the ephemeral key's expiration {text!r} is no date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ms(moment)


def _delegate(authority: str, link: dict[str, str], now_ms: int) -> str:
    """Check an ephemeral link signed by `authority`; the ephemeral address it delegates to."""
    message = link["payload"].replace("\r", "")
    lines = message.split("\n")
    if (
        len(lines) < 3
        or not lines[1].startswith(_EPHEMERAL_ADDRESS_LINE)
        or not lines[2].startswith(_EXPIRATION_LINE)
    ):
        raise InvalidSignedRequest(
            "an ephemeral link's payload must name the ephemeral address and its expiration"
        )
    ephemeral = lines[1].removeprefix(_EPHEMERAL_ADDRESS_LINE)
    if not _ADDRESS.match(ephemeral):
        raise InvalidSignedRequest("the ephemeral address is not an Ethereum address")
    if _expiration(lines[2].removeprefix(_EXPIRATION_LINE)) <= now_ms:
        raise InvalidSignedRequest("the ephemeral key has expired: sign in again")
    if recover_personal_signer(message, link["signature"]) != authority:
        raise InvalidSignedRequest("the auth chain is broken: a link is not signed by the last")
    return ephemeral.lower()


def verify(
    method: str, path: str, headers: Mapping[str, str], *, window_seconds: int, now_ms: int
) -> SignedRequest:
    """Who signed this request (`method` and `path` as received), or InvalidSignedRequest.

    Cheap checks come first, so a forged request costs no signature recovery.
    """
    headers = {name.lower(): value for name, value in headers.items()}
    links = _chain(headers)
    window_ms = window_seconds * 1000
    raw_timestamp = headers.get(TIMESTAMP_HEADER)
    timestamp = _timestamp(raw_timestamp, now_ms, window_ms)
    raw_metadata = headers.get(METADATA_HEADER, "")
    _check_metadata(raw_metadata)
    payload = f"{method}:{path}:{raw_timestamp}:{raw_metadata}".lower()

    if any(link["type"] in _CONTRACT_WALLET_LINKS for link in links):
        raise InvalidSignedRequest("contract wallets (EIP-1654) are not supported")
    if len(links) < 2 or links[0]["type"] != _SIGNER or links[-1]["type"] != _SIGNED_ENTITY:
        raise InvalidSignedRequest(
            f"an auth chain goes from {_SIGNER} through {_EPHEMERAL} links to one "
            f"{_SIGNED_ENTITY} link"
        )
    first, *delegations, final = links
    if not _ADDRESS.match(first["payload"]):
        raise InvalidSignedRequest("the chain's signer is not an Ethereum address")
    if final["payload"] != payload:
        raise InvalidSignedRequest(f"the signature is not for this request ({method} {path})")

    authority = address = first["payload"].lower()
    for link in delegations:
        if link["type"] != _EPHEMERAL:
            raise InvalidSignedRequest(f"unexpected {link['type']} link inside the chain")
        authority = _delegate(authority, link, now_ms)
    if recover_personal_signer(payload, final["signature"]) != authority:
        raise InvalidSignedRequest("the request is not signed by the chain's last key")
    return SignedRequest(
        address=address,
        signer=authority,
        payload=payload,
        valid_until_ms=timestamp + window_ms,
    )
