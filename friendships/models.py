from django.conf import settings
from django.db import models
from django.db.models import F, Q

from friendships.sharing import LocationAudience, PresenceAudience


class FriendshipState(models.TextChoices):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    DELETED = "deleted"
    BLOCKED = "blocked"


class FriendshipAction(models.TextChoices):
    REQUEST = "request"
    ACCEPT = "accept"
    REJECT = "reject"
    CANCEL = "cancel"
    DELETE = "delete"
    BLOCK = "block"
    UNBLOCK = "unblock"


class Friendship(models.Model):
    """The relationship of one pair of users, stored once with the smaller address first."""

    user_a = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user_b = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # No index on state alone: nearly every row is accepted, and SQLite would pick such an
    # index for "friends of X" and read them all. The pair and (user_b, state) serve lookups.
    state = models.CharField(max_length=16, choices=FriendshipState.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        null=True,
        blank=True,
        help_text="Who sent the latest request, if any was sent.",
    )
    message = models.TextField(blank=True, default="", help_text="The latest request's message.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_a", "user_b"], name="one_friendship_per_pair"),
            models.CheckConstraint(
                condition=Q(user_a__lt=F("user_b")), name="friendship_pair_ordered"
            ),
        ]
        indexes = [models.Index(fields=["user_b", "state"], name="friendship_b_state")]

    def __str__(self) -> str:
        return f"{self.user_a_id} ~ {self.user_b_id} ({self.state})"

    def other(self, address: str) -> str:
        return self.user_b_id if address == self.user_a_id else self.user_a_id


class FriendshipEvent(models.Model):
    """One step in a friendship's history; rows are only ever added."""

    friendship = models.ForeignKey(Friendship, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=FriendshipAction.choices)
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.acting_user_id} {self.action} ({self.created_at:%Y-%m-%d %H:%M:%S})"


class Block(models.Model):
    """`blocker` blocked `blocked`: no friendship, request or presence between them."""

    blocker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_made"
    )
    blocked = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_received"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="one_block_per_direction"),
            models.CheckConstraint(condition=~Q(blocker=F("blocked")), name="block_not_self"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"


# --- Who may see a user's presence (issue 18, point 2) ------------------------------------


class SharingList(models.TextChoices):
    PRESENCE = "presence"
    LOCATION = "location"


class PresenceSharing(models.Model):
    """A user's choice of who sees their presence and location; no row means all friends."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="presence_sharing",
    )
    presence = models.CharField(
        max_length=8, choices=PresenceAudience.choices, default=PresenceAudience.ALL
    )
    location = models.CharField(
        max_length=8, choices=LocationAudience.choices, default=LocationAudience.ALL
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "presence sharing"
        verbose_name_plural = "presence sharing"

    def __str__(self) -> str:
        return f"{self.user_id}: presence {self.presence}, location {self.location}"


class SharingListEntry(models.Model):
    """A friend on one of a user's sharing lists. An entry outlives the friendship: it
    applies again if they become friends again."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sharing_entries"
    )
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    list = models.CharField(max_length=8, choices=SharingList.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "list", "member"], name="one_sharing_entry_per_list"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner_id} {self.list}: {self.member_id}"
