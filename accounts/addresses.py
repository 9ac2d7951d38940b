"""Ethereum addresses: the one way users are named, on every surface."""

import re

from django.core.exceptions import ValidationError

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class InvalidAddress(ValidationError):
    """Raised for anything that is not 0x followed by 40 hex digits."""


def normalize_address(value: object) -> str:
    """Return the lowercase form, since addresses compare case-insensitively."""
    if not isinstance(value, str) or not _ADDRESS.match(value.strip()):
        raise InvalidAddress(
            f"{value!r} is not an Ethereum address: expected 0x followed by 40 hex digits",
            code="invalid_address",
        )
    return value.strip().lower()


def validate_address(value: str) -> None:
    normalize_address(value)
