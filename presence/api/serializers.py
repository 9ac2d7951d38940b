import operator
from collections.abc import Callable
from functools import cached_property

from rest_framework import serializers

from friendships.sharing import LocationAudience, PresenceAudience
from presence.events import Status


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


def _audience(
    choices: type[PresenceAudience] | type[LocationAudience], help_text: str
) -> serializers.ChoiceField:
    """A sharing mode: one of `choices`, all friends when left out."""
    return serializers.ChoiceField(
        choices=choices.choices, default=choices.ALL, help_text=help_text
    )


def _friends(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=42),
        default=list,
        max_length=10_000,
        help_text=help_text,
    )


class SharingSerializer(serializers.Serializer):
    """[privacy] Who sees the caller's presence and location. The lists name friends only;
    a PUT replaces the whole, what it leaves out being the default (all friends see all)."""

    presence = _audience(
        PresenceAudience, "all friends, only those in presence_list, or all except them"
    )
    presence_list = _friends("friends' addresses the presence mode names")
    location = _audience(
        LocationAudience,
        "among those who see the presence: all, only those in location_list, nobody",
    )
    location_list = _friends("friends' addresses the location mode names")
