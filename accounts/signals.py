"""Sent after a user's tokens are revoked, for whoever holds their open connections."""

from django.dispatch import Signal

# Sent with `address`: the user whose tokens were revoked.
tokens_revoked = Signal()
