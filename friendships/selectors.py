"""Friendship reads. Addresses in and out are normalized lowercase strings."""

from django.db.models import OuterRef, Q, QuerySet, Subquery

from friendships.models import (
    Block,
    Friendship,
    FriendshipAction,
    FriendshipEvent,
    FriendshipState,
)


def _involving(address: str) -> Q:
    return Q(user_a_id=address) | Q(user_b_id=address)


def friend_addresses(address: str) -> list[str]:
    """Everyone with an accepted friendship with `address`, sorted."""
    pairs = Friendship.objects.filter(_involving(address), state=FriendshipState.ACCEPTED)
    return sorted(b if a == address else a for a, b in pairs.values_list("user_a_id", "user_b_id"))


def are_friends(one: str, other: str) -> bool:
    low, high = sorted((one, other))
    return Friendship.objects.filter(
        user_a_id=low, user_b_id=high, state=FriendshipState.ACCEPTED
    ).exists()


def mutual_friend_addresses(address: str, other: str) -> list[str]:
    return sorted(set(friend_addresses(address)) & set(friend_addresses(other)))


def friendship_between(one: str, other: str) -> Friendship | None:
    low, high = sorted((one, other))
    return Friendship.objects.filter(user_a_id=low, user_b_id=high).first()


def pending_requests(address: str) -> tuple[QuerySet[Friendship], QuerySet[Friendship]]:
    """(outgoing, incoming) requests still waiting for an answer, oldest first, each with
    `request_event_id`: the id of the event that made the request, which names it."""
    request_events = FriendshipEvent.objects.filter(
        friendship=OuterRef("pk"), action=FriendshipAction.REQUEST
    ).order_by("-created_at", "-id")
    pending = Friendship.objects.filter(_involving(address), state=FriendshipState.REQUESTED)
    pending = pending.annotate(request_event_id=Subquery(request_events.values("id")[:1]))
    pending = pending.order_by("updated_at", "id")
    return pending.filter(requested_by_id=address), pending.exclude(requested_by_id=address)


def blocked_by(address: str) -> QuerySet[Block]:
    """The blocks `address` made, newest first."""
    return Block.objects.filter(blocker_id=address)


def blocker_addresses(address: str) -> list[str]:
    """Everyone who blocks `address`, sorted."""
    return sorted(Block.objects.filter(blocked_id=address).values_list("blocker_id", flat=True))


def blockers_between(one: str, other: str) -> set[str]:
    """Which of the two users block the other: none, either or both."""
    return set(
        Block.objects.filter(
            Q(blocker_id=one, blocked_id=other) | Q(blocker_id=other, blocked_id=one)
        ).values_list("blocker_id", flat=True)
    )
