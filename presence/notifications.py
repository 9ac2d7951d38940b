"""Committed changes that open connections must hear of: friendship events to both users,
token revocations to the user's own connections."""

from typing import Any

from asgiref.sync import async_to_sync
from django.dispatch import receiver

from accounts.signals import tokens_revoked
from friendships.models import FriendshipEvent
from friendships.signals import friendship_changed
from presence import publishing
from presence.events import FriendshipNotice, SessionRevoked
from presence_project.timestamps import ms


@receiver(friendship_changed)
def deliver_friendship_event(sender: type, event: FriendshipEvent, **kwargs: Any) -> None:
    actor = event.acting_user_id
    notice = FriendshipNotice(
        action=event.action,
        actor=actor,
        target=event.friendship.other(actor),
        message=event.message,
        created_at_ms=ms(event.created_at),
        event_id=event.id,
    )
    for address in (notice.actor, notice.target):
        async_to_sync(publishing.to_user)(address, notice)


@receiver(tokens_revoked)
def close_revoked_sessions(sender: type, address: str, **kwargs: Any) -> None:
    async_to_sync(publishing.to_user)(address, SessionRevoked())
