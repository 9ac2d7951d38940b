import operator
from collections.abc import Callable
from functools import cached_property

from rest_framework import serializers

from friendships.sharing import LocationAudience, PresenceAudience
from presence import services
from presence.events import DESKTOP, DEVICE_KINDS, Location, Status
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
    # [status]
    message = serializers.CharField(
        help_text="the status message; empty when none, and always while offline"
    )
    devices = serializers.ListField(
        child=serializers.ChoiceField(choices=list(DEVICE_KINDS)),
        help_text="the kinds of device the user is connected with, sorted; empty when offline",
    )
    # [location]
    location = LocationSerializer(
        allow_null=True, help_text="where the user is, if they share it; null while offline"
    )


class LocationBodySerializer(serializers.Serializer):
    """[location] A request that may carry a location: PUT presence/location/ shares it (null
    or absent: none), a heartbeat shares it if given (else leaves the one shared as it is)."""

    location = LocationSerializer(allow_null=True, required=False, default=None)


class HeartbeatBodySerializer(LocationBodySerializer):
    """[location] [conn] A heartbeat: the location as above, and what the client is, as a
    WebSocket says it with `?device=`."""

    device = serializers.ChoiceField(
        choices=list(DEVICE_KINDS),
        default=DESKTOP,
        help_text="the kind of device sending the heartbeats, shown to friends among the "
        "user's active devices",
    )


class HeartbeatSerializer(serializers.Serializer):
    """[location] A heartbeat taken: the caller as friends see them, and until when."""

    presence = PresenceSerializer()
    offline_after_seconds = serializers.IntegerField(
        help_text="the caller goes OFFLINE after this long without a heartbeat or a connection"
    )


# --- [status] The caller's own status message ---------------------------------------------


class _JsonTyped:
    """A field that takes only its JSON type: DRF's own take "12" for 12, or 1 for true,
    which the contract does not allow."""

    json_types: tuple[type, ...] = ()

    def to_internal_value(self, data: object) -> object:
        if isinstance(data, bool) != (bool in self.json_types) or not isinstance(
            data, self.json_types
        ):
            self.fail("invalid")
        return super().to_internal_value(data)


class _JsonString(_JsonTyped, serializers.CharField):
    json_types = (str,)


class _JsonInteger(_JsonTyped, serializers.IntegerField):
    json_types = (int,)


class _JsonBoolean(_JsonTyped, serializers.BooleanField):
    json_types = (bool,)


def _end_field(source: str, what: str) -> serializers.IntegerField:
    return _JsonInteger(
        source=source,
        allow_null=True,
        required=False,
        min_value=0,
        max_value=2**53,
        help_text=f"when {what} ends, ms since the Unix epoch; null: never",
    )


class OwnStatusSerializer(AttributeSerializer):
    """What the caller chose: the status of their connections, the message, their ends."""

    status = StatusField(
        source="chosen",
        allow_null=True,
        help_text="the status the caller chose while connected; null when none is chosen",
    )
    status_until = _end_field("status_until_ms", "the chosen status (then ONLINE again)")
    message = serializers.CharField(
        help_text="the status message, shown to friends while the caller is online or away"
    )
    message_until = _end_field("message_until_ms", "the message")
    clear_message_on_offline = serializers.BooleanField(
        help_text="the message is cleared when the caller's last connection closes"
    )


class StatusMessageSerializer(serializers.Serializer):
    """A status message to set: normalised (NFC, trimmed), at most 100 characters, no
    control, line-separator or bidirectional override/isolate characters."""

    message = _JsonString(
        allow_blank=True,
        trim_whitespace=False,
        default="",
        help_text='the message; "" (or none) clears it',
    )
    message_until = _end_field("message_until_ms", "the message")
    clear_message_on_offline = _JsonBoolean(
        default=False,
        help_text="clear the message when the caller's last connection closes",
    )


# --- [/status] -----------------------------------------------------------------------------


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
