from rest_framework import serializers


class BlockSerializer(serializers.Serializer):
    """A user the caller blocks, and since when."""

    address = serializers.CharField(source="blocked_id", help_text="the blocked user's address")
    blocked_at = serializers.DateTimeField(source="created_at")
