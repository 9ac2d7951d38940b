"""Friendship reads. Addresses in and out are normalized lowercase strings."""

from django.db.models import Q, QuerySet

from friendships.models import Block, Friendship, FriendshipState


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


def pending_requests(address: str) -> tuple[QuerySet[Friendship], QuerySet[Friendship]]:
    """(outgoing, incoming) requests still waiting for an answer, oldest first."""
    pending = Friendship.objects.filter(_involving(address), state=FriendshipState.REQUESTED)
    pending = pending.order_by("updated_at", "id")
    return pending.filter(requested_by_id=address), pending.exclude(requested_by_id=address)


def blocked_by(address: str) -> QuerySet[Block]:
    """The blocks `address` made, newest first."""
    return Block.objects.filter(blocker_id=address)
