"""Friendship events, once committed, reach both users' connections through the channel layer."""

from typing import Any

from asgiref.sync import async_to_sync
from django.dispatch import receiver

from friendships.models import FriendshipEvent
from friendships.signals import friendship_changed
from presence import fanout
from presence.sessions import FriendshipNotice


@receiver(friendship_changed)
def deliver_friendship_event(sender: type, event: FriendshipEvent, **kwargs: Any) -> None:
    actor = event.acting_user_id
    notice = FriendshipNotice(
        action=event.action,
        actor=actor,
        target=event.friendship.other(actor),
        message=event.message,
        created_at_ms=int(event.created_at.timestamp() * 1000),
    )
    publish = async_to_sync(fanout.publish_to_user)
    for address in (notice.actor, notice.target):
        publish(address, notice.as_message())
