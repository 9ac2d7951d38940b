"""A user's own presence history, and who of the staff read it.

Entries reach the database from Redis (presence.store.history), in batches, never on the
connect path; PRESENCE_HISTORY_RETENTION_DAYS bounds how long they stay.
"""

import hashlib

from django.conf import settings
from django.db import models

from presence.events import Status


class HistoryKind(models.TextChoices):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STATUS = "status", "status changed"


class StatusChoice(models.IntegerChoices):
    """presence.events.Status, by its wire number."""

    ONLINE = Status.ONLINE, "online"
    OFFLINE = Status.OFFLINE, "offline"
    AWAY = Status.AWAY, "away"


class HistoryEntry(models.Model):
    """One transition of a user's presence: a connection opened or closed, or a status
    changed; with the status the user chose and the one friends saw after it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="presence_history",
        # The indexes below start with the user.
        db_index=False,
    )
    at = models.DateTimeField(help_text="When the transition happened.")
    kind = models.CharField(max_length=12, choices=HistoryKind.choices)
    connection = models.CharField(
        max_length=200, help_text="The connection's id: its server process and number."
    )
    device = models.CharField(
        max_length=16, blank=True, help_text="The kind of device the connection said it is."
    )
    chosen = models.PositiveSmallIntegerField(
        choices=StatusChoice.choices,
        null=True,
        blank=True,
        help_text="The status the user chose, after the transition; empty if none.",
    )
    visible = models.PositiveSmallIntegerField(
        choices=StatusChoice.choices,
        help_text="The status friends saw after the transition.",
    )
    stream_id = models.CharField(
        max_length=40,
        help_text="The entry's id in its Redis stream: an entry delivered twice is stored once.",
    )

    class Meta:
        verbose_name = "presence history entry"
        verbose_name_plural = "presence history"
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "stream_id"], name="presence_history_once")
        ]
        indexes = [
            # A user's own reads, newest first.
            models.Index(fields=["user", "-at"], name="presence_history_user_at"),
            # The retention's deletes of everyone's old entries.
            models.Index(fields=["at"], name="presence_history_at"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"

    @property
    def at_ms(self) -> int:
        return int(self.at.timestamp() * 1000)

    @property
    def chosen_status(self) -> Status | None:
        return None if self.chosen is None else Status(self.chosen)

    @property
    def visible_status(self) -> Status:
        return Status(self.visible)

    @property
    def session(self) -> str:
        """The connection as the user reads it: the same for its opening and closing, and
        naming no server process."""
        return hashlib.sha256(self.connection.encode()).hexdigest()[:16]


class HistoryErasure(models.Model):
    """When a user last deleted their history: entries up to then that were still on their
    way from Redis are never stored, nor shown."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True
    )
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user_id} deleted their history at {self.at:%Y-%m-%d %H:%M:%S}"


class HistoryAccess(models.Model):
    """A staff member's reading of presence history in the admin."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Addresses rather than keys: the record outlives both users.
    reader = models.CharField(max_length=42, help_text="The staff member's address.")
    view = models.CharField(max_length=16, help_text="The admin page: list or entry.")
    path = models.CharField(max_length=2000, help_text="The page's path and query.")
    subject = models.CharField(
        max_length=42, blank=True, help_text="The user whose entry was read, for an entry."
    )

    class Meta:
        verbose_name = "presence history access"
        verbose_name_plural = "presence history accesses"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.reader} read {self.path} at {self.at:%Y-%m-%d %H:%M:%S}"
