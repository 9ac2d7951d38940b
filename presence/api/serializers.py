from rest_framework import serializers

from presence.state import Presence


class PresenceSerializer(serializers.Serializer[Presence]):
    address = serializers.CharField()
    status = serializers.SerializerMethodField()
    last_seen = serializers.IntegerField(
        source="last_seen_ms", allow_null=True, help_text="ms since the Unix epoch"
    )

    def get_status(self, presence: Presence) -> str:
        return presence.status.name.lower()
