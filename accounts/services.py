"""Who a caller is: access tokens (issuing, checking, revoking) and signed requests."""

import secrets
import time
from collections.abc import Mapping
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts import replay, signed_fetch
from accounts.addresses import normalize_address
from accounts.conf import accounts_settings
from accounts.models import AccessToken, User
from accounts.selectors import token_hash, token_holder
from accounts.signals import tokens_revoked


def get_or_create_user(address: str) -> User:
    user, _ = User.objects.get_or_create(address=normalize_address(address))
    return user


def issue_token(address: str) -> str:
    """Create the user if needed and return a new token; only its hash is stored."""
    user = get_or_create_user(address)
    token = secrets.token_urlsafe(32)
    lifetime = accounts_settings().token_lifetime_seconds
    AccessToken.objects.create(
        user=user,
        key_hash=token_hash(token),
        prefix=token[:8],
        expires_at=timezone.now() + timedelta(seconds=lifetime) if lifetime else None,
    )
    return token


def user_for_token(token: str | None) -> User | None:
    holder = token_holder(token)
    return User.objects.filter(pk=holder.address).first() if holder else None


def user_for_signed_request(method: str, path: str, headers: Mapping[str, str]) -> User:
    """The user whose wallet signed this request (ADR-44), created on their first sign-in.

    Raises InvalidSignedRequest for a bad, stale or already used signature, or a disabled user.
    """
    signed = signed_fetch.verify(
        method,
        path,
        headers,
        window_seconds=accounts_settings().signed_fetch_window_seconds,
        now_ms=int(time.time() * 1000),
    )
    # A disabled user is refused before the signature is spent or anything is written.
    user = User.objects.filter(pk=signed.address).first()
    if user is not None and not user.is_active:
        raise signed_fetch.InvalidSignedRequest("this user is disabled")
    if not replay.first_use(signed.replay_key, signed.valid_until_ms):
        raise signed_fetch.InvalidSignedRequest("these signed headers were used already")
    return user or get_or_create_user(signed.address)


def revoke_tokens(address: str) -> int:
    """Revoke every live token of a user and end their sessions; returns how many were revoked.

    Their open connections are closed too, whichever way they authenticated. An address no
    user has raises User.DoesNotExist: an operator's typo is not a success.
    """
    address = normalize_address(address)
    if not User.objects.filter(pk=address).exists():
        raise User.DoesNotExist(f"no user has the address {address}")
    with transaction.atomic():
        revoked = AccessToken.objects.filter(user_id=address, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        transaction.on_commit(
            lambda: tokens_revoked.send(sender=AccessToken, address=address), robust=True
        )
    return revoked
