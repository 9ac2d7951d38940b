from rest_framework import serializers

from presence.store.online import Presence


class PresenceSerializer(serializers.Serializer[Presence]):
    """A user's presence as their friends see it."""

    address = serializers.CharField()
    status = serializers.ChoiceField(choices=["online", "away", "offline"])
    last_seen = serializers.IntegerField(
        allow_null=True, help_text="ms since the Unix epoch; null if never seen"
    )

    def to_representation(self, presence: Presence) -> dict[str, object]:
        """The fields above, built directly: DRF's field-by-field walk was an eighth of the
        online-friends request for a page of 500."""
        return {
            "address": presence.address,
            "status": presence.status.name.lower(),
            "last_seen": presence.last_seen_ms,
        }


class ProcessStatsSerializer(serializers.Serializer):
    """What the answering server process holds."""

    process = serializers.CharField(help_text="this process's incarnation name")
    connections = serializers.IntegerField(help_text="open WebSocket connections")
    presence_subscriptions = serializers.IntegerField(help_text="open presence streams")
    peak_presence_backlog = serializers.IntegerField(
        help_text="the most updates any presence subscriber has had waiting"
    )
