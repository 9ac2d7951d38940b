"""Account reads."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models.options import Options
from django.utils import timezone

from accounts.models import AccessToken, User


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenHolder:
    address: str
    expires_at: datetime | None


def _holder_sql() -> str:
    """A usable token (not revoked, not expired) of an active user, by its hash."""
    quote = connection.ops.quote_name
    token, user = AccessToken._meta, User._meta

    def column(meta: Options, name: str) -> str:
        return f"{quote(meta.db_table)}.{quote(meta.get_field(name).column)}"

    expires_at = column(token, "expires_at")
    return (
        f"SELECT {column(token, 'user')}, {expires_at} FROM {quote(token.db_table)} "
        f"JOIN {quote(user.db_table)} ON {column(user, 'address')} = {column(token, 'user')} "
        f"WHERE {column(token, 'key_hash')} = %s AND {column(token, 'revoked_at')} IS NULL "
        f"AND ({expires_at} IS NULL OR {expires_at} > %s) AND {column(user, 'is_active')} = %s"
    )


def token_holder(token: str | None) -> TokenHolder | None:
    """Whose usable token `token` is, and until when; None for any other token.

    Every connection and REST request starts here, so it is one SQL query: the ORM's query
    building and model instances cost many times the database's own work (BENCHMARKS.md).
    """
    if not token:
        return None
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_holder_sql(), [token_hash(token), now, True])
        row = cursor.fetchone()
    if row is None:
        return None
    address, expires_at = row
    if expires_at is not None and timezone.is_naive(expires_at):
        # SQLite keeps UTC without its zone.
        expires_at = expires_at.replace(tzinfo=UTC)
    return TokenHolder(address, expires_at)
