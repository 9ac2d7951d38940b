import operator
from collections.abc import Callable
from functools import cached_property

from rest_framework import serializers

from presence.events import DEVICE_KINDS, Status


class StatusField(serializers.ChoiceField):
    """A Status as its name in lower case."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=["online", "away", "offline"], **kwargs)

    def to_representation(self, status: Status) -> str:
        return status.name.lower()


class AttributeSerializer(serializers.Serializer):
    """A read-only serializer of objects whose declared fields' sources are attributes,
    walked without DRF's per-field lookup: a page of hundreds of users is a REST hot path,
    where that lookup costs more than the fields' own conversions (BENCHMARKS.md, 59a7a3b)."""

    @cached_property
    def _readers(self) -> list[tuple[str, Callable[[object], object], Callable[[object], object]]]:
        return [
            (
                field.field_name,
                operator.attrgetter(".".join(field.source_attrs)),
                field.to_representation,
            )
            for field in self._readable_fields
        ]

    def to_representation(self, instance: object) -> dict[str, object]:
        data: dict[str, object] = {}
        for name, read, represent in self._readers:
            value = read(instance)
            data[name] = None if value is None else represent(value)
        return data


class PresenceSerializer(AttributeSerializer):
    """A user's presence as their friends see it."""

    address = serializers.CharField()
    status = StatusField()
    last_seen = serializers.IntegerField(
        source="last_seen_ms",
        allow_null=True,
        help_text="ms since the Unix epoch; null if never seen",
    )
    devices = serializers.ListField(
        child=serializers.ChoiceField(choices=list(DEVICE_KINDS)),
        help_text="the kinds of device the user is connected with, sorted; empty when offline",
    )


class ProcessStatsSerializer(serializers.Serializer):
    """What the answering server process holds."""

    process = serializers.CharField(help_text="this process's incarnation name")
    connections = serializers.IntegerField(help_text="open WebSocket connections")
    presence_subscriptions = serializers.IntegerField(help_text="open presence streams")
    peak_presence_backlog = serializers.IntegerField(
        help_text="the most updates any presence subscriber has had waiting"
    )
