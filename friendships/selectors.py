"""Friendship reads. Addresses in and out are normalized lowercase strings."""

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from friendships.models import (
    Block,
    Friendship,
    FriendshipAction,
    FriendshipEvent,
    FriendshipState,
    PresenceSharing,
    SharingList,
    SharingListEntry,
)
from friendships.sharing import LocationAudience, PresenceAudience, Sharing


def _involving(address: str) -> Q:
    return Q(user_a_id=address) | Q(user_b_id=address)


def _friends_sql() -> str:
    """Each side of the pair through its own index, the other side's address read as is."""
    meta = Friendship._meta
    table = connection.ops.quote_name(meta.db_table)
    a, b, state = (
        connection.ops.quote_name(meta.get_field(name).column)
        for name in ("user_a", "user_b", "state")
    )
    return (
        f"SELECT {b} FROM {table} WHERE {a} = %s AND {state} = %s "
        f"UNION ALL SELECT {a} FROM {table} WHERE {b} = %s AND {state} = %s"
    )


def friend_addresses(address: str) -> list[str]:
    """Everyone with an accepted friendship with `address`, sorted.

    Every presence subscription and online-friends query starts here, for up to thousands
    of friends, so it is one SQL query read as plain rows: the ORM's query building and
    per-row iteration cost as much again as the database (BENCHMARKS.md).
    """
    accepted = FriendshipState.ACCEPTED.value
    with connection.cursor() as cursor:
        cursor.execute(_friends_sql(), [address, accepted, address, accepted])
        return sorted(row[0] for row in cursor.fetchall())


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


def block(blocker: str, blocked: str) -> Block:
    """The block `blocker` made of `blocked`; Block.DoesNotExist if there is none."""
    return Block.objects.get(blocker_id=blocker, blocked_id=blocked)


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


def with_blocks(friendships: QuerySet[Friendship]) -> QuerySet[Friendship]:
    """`friendships`, each with `a_blocks_b` and `b_blocks_a`: who blocks whom, if anyone."""
    return friendships.annotate(
        a_blocks_b=Exists(
            Block.objects.filter(blocker_id=OuterRef("user_a_id"), blocked_id=OuterRef("user_b_id"))
        ),
        b_blocks_a=Exists(
            Block.objects.filter(blocker_id=OuterRef("user_b_id"), blocked_id=OuterRef("user_a_id"))
        ),
    )


# --- Who may see a user's presence --------------------------------------------------------


def _stored_sharing(address: str, members: set[str] | None) -> Sharing:
    row = PresenceSharing.objects.filter(user_id=address).first()
    if row is None:
        return Sharing()
    lists: dict[str, list[str]] = {SharingList.PRESENCE: [], SharingList.LOCATION: []}
    for entry_list, member in SharingListEntry.objects.filter(owner_id=address).values_list(
        "list", "member_id"
    ):
        if members is None or member in members:
            lists[entry_list].append(member)
    return Sharing(
        presence=row.presence,
        presence_list=tuple(sorted(lists[SharingList.PRESENCE])),
        location=row.location,
        location_list=tuple(sorted(lists[SharingList.LOCATION])),
    )


def sharing_of(address: str) -> Sharing:
    """`address`'s sharing as they see it: list entries of former friends are left out
    (they apply again if the friendship comes back)."""
    return _stored_sharing(address, set(friend_addresses(address)))


def stored_sharing(address: str) -> Sharing:
    """`address`'s sharing as stored, former friends' entries included: what delivery
    applies (a former friend follows nobody, so their entry changes nothing until then)."""
    return _stored_sharing(address, None)


def restricted_sharers() -> list[str]:
    """Every user who shares their presence or location with fewer than all friends."""
    restricted = PresenceSharing.objects.exclude(
        presence=PresenceAudience.ALL, location=LocationAudience.ALL
    )
    return list(restricted.values_list("user_id", flat=True))
