"""Sent after a friendship event is committed, for whoever delivers it live."""

from django.dispatch import Signal

# Sent with `event`: the committed FriendshipEvent (its friendship selected with it).
friendship_changed = Signal()
