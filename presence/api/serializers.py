import operator
from collections.abc import Callable
from functools import cached_property

from rest_framework import serializers

from presence import services
from presence.events import Location, Status


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


class _Realm(serializers.RegexField):
    """A realm's name as a JSON string only (DRF's own would take a number and convert it)."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _Coordinate(serializers.IntegerField):
    """A parcel coordinate as a JSON integer only (DRF's own would take "5" and 5.0)."""

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class LocationSerializer(serializers.Serializer):
    """[location] Where a user is: a realm (a world is a realm named like name.dcl.eth) and a
    parcel."""

    realm = _Realm(
        services.REALM_PATTERN,
        max_length=services.REALM_MAX_LENGTH,
        help_text="letters, digits and . _ : / - (e.g. main, name.dcl.eth)",
    )
    x = _Coordinate(min_value=-services.PARCEL_LIMIT, max_value=services.PARCEL_LIMIT)
    y = _Coordinate(min_value=-services.PARCEL_LIMIT, max_value=services.PARCEL_LIMIT)

    def validate(self, attrs: dict[str, object]) -> Location:
        return services.location(attrs["realm"], attrs["x"], attrs["y"])


class PresenceSerializer(AttributeSerializer):
    """A user's presence as their friends see it."""

    address = serializers.CharField()
    status = StatusField()
    last_seen = serializers.IntegerField(
        source="last_seen_ms",
        allow_null=True,
        help_text="ms since the Unix epoch; null if never seen",
    )
    # [location]
    location = LocationSerializer(
        allow_null=True, help_text="where the user is, if they share it; null while offline"
    )


class LocationBodySerializer(serializers.Serializer):
    """[location] A request that may carry a location: PUT presence/location/ shares it (null
    or absent: none), a heartbeat shares it if given (else leaves the one shared as it is)."""

    location = LocationSerializer(allow_null=True, required=False, default=None)


class HeartbeatSerializer(serializers.Serializer):
    """[location] A heartbeat taken: the caller as friends see them, and until when."""

    presence = PresenceSerializer()
    offline_after_seconds = serializers.IntegerField(
        help_text="the caller goes OFFLINE after this long without a heartbeat or a connection"
    )


class ProcessStatsSerializer(serializers.Serializer):
    """What the answering server process holds."""

    process = serializers.CharField(help_text="this process's incarnation name")
    connections = serializers.IntegerField(help_text="open WebSocket connections")
    presence_subscriptions = serializers.IntegerField(help_text="open presence streams")
    peak_presence_backlog = serializers.IntegerField(
        help_text="the most updates any presence subscriber has had waiting"
    )
