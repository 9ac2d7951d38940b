import operator
from collections.abc import Callable
from functools import cached_property

from rest_framework import serializers

from presence.events import Status
from presence.models import HistoryKind


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


class ProcessStatsSerializer(serializers.Serializer):
    """What the answering server process holds."""

    process = serializers.CharField(help_text="this process's incarnation name")
    connections = serializers.IntegerField(help_text="open WebSocket connections")
    presence_subscriptions = serializers.IntegerField(help_text="open presence streams")
    peak_presence_backlog = serializers.IntegerField(
        help_text="the most updates any presence subscriber has had waiting"
    )


# --- [history] ----------------------------------------------------------------------------

# The last millisecond of year 9999, the latest a datetime holds.
_LAST_MS = 253_402_300_799_999


class HistoryEntrySerializer(serializers.Serializer):
    """One entry of the caller's own presence history."""

    at = serializers.IntegerField(source="at_ms", help_text="ms since the Unix epoch")
    kind = serializers.ChoiceField(
        choices=HistoryKind.values,
        help_text="a connection opened or closed, or a status changed",
    )
    session = serializers.CharField(
        help_text="the connection: the same in its connected and disconnected entries"
    )
    device = serializers.CharField(
        help_text="the kind of device the connection said it is; empty if it did not say"
    )
    chosen = StatusField(
        source="chosen_status",
        allow_null=True,
        help_text="the status the user chose, after the entry; null if none",
    )
    visible = StatusField(
        source="visible_status", help_text="the status friends saw after the entry"
    )


class HistoryWindowSerializer(serializers.Serializer):
    """The query parameters of a history read."""

    since = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=_LAST_MS,
        help_text="ms since the Unix epoch: entries from then on (default: 30 days ago)",
    )
    until = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=_LAST_MS,
        help_text="ms since the Unix epoch: entries before then (default: up to now)",
    )
