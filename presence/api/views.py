from collections.abc import Callable
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView, ListAPIView, RetrieveUpdateAPIView
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from friendships.sharing import Sharing
from presence import selectors, services
from presence.api.serializers import (
    HeartbeatBodySerializer,
    HeartbeatSerializer,
    HistoryEntrySerializer,
    HistoryWindowSerializer,
    LocationBodySerializer,
    OwnStatusSerializer,
    PresenceSerializer,
    ProcessStatsSerializer,
    SharingSerializer,
    StatusMessageSerializer,
)
from presence.conf import presence_settings
from presence.delivery import process
from presence.events import Location, Presence
from presence.models import HistoryEntry
from presence_project.openapi import error_responses


def _presence_list(summary: str, *errors: int) -> Callable[[type], type]:
    """The contract of a paged list of presences that may answer `errors`."""
    return extend_schema(
        summary=summary, responses={200: PresenceSerializer, **error_responses(*errors)}
    )


@_presence_list("The caller's friends", 400, 401, 429)
class FriendsView(ListAPIView):
    """The caller's friends, each with their status and when they were last seen."""

    serializer_class = PresenceSerializer

    def get_queryset(self) -> selectors.FriendsPresence:
        return selectors.FriendsPresence(self.request.user.address)


@_presence_list("The caller's friends who are online or away", 400, 401, 429)
class OnlineFriendsView(ListAPIView):
    """The caller's friends who are online or away."""

    serializer_class = PresenceSerializer

    def get_queryset(self) -> list[Presence]:
        return selectors.visible_friends(self.request.user.address)


@_presence_list("Every online or away user (staff)", 400, 401, 403, 429)
class OnlineUsersView(ListAPIView):
    """Every visible user, for operators; paged straight from Redis."""

    permission_classes = [IsAdminUser]
    serializer_class = PresenceSerializer

    def get_queryset(self) -> selectors.VisibleUsers:
        return selectors.VisibleUsers()


class ProcessStatsView(APIView):
    """This server process's connections and the largest backlog a subscriber left it."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="The answering process (staff)",
        responses={200: ProcessStatsSerializer, **error_responses(401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        return Response(ProcessStatsSerializer(async_to_sync(process.stats)()).data)


# --- [history] ----------------------------------------------------------------------------


def _moment(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


@extend_schema_view(
    get=extend_schema(
        summary="The caller's own presence history",
        parameters=[HistoryWindowSerializer],
        responses={200: HistoryEntrySerializer, **error_responses(400, 401, 429)},
    ),
    delete=extend_schema(
        summary="Delete all of the caller's presence history",
        responses={204: None, **error_responses(401, 429)},
    ),
)
class HistoryView(ListAPIView):
    """The caller's own connections opened and closed and status changes, newest first: only
    ever the caller's; staff read others' in the admin, which records it."""

    serializer_class = HistoryEntrySerializer

    def get_queryset(self) -> QuerySet[HistoryEntry]:
        window = HistoryWindowSerializer(data=self.request.query_params)
        if not window.is_valid():
            name, problems = next(iter(window.errors.items()))
            raise ValidationError({"detail": f"{name}: {problems[0]}"})
        return selectors.history_of(
            self.request.user.address,
            _moment(window.validated_data.get("since")),
            _moment(window.validated_data.get("until")),
        )

    def delete(self, request: Request) -> Response:
        services.delete_history(request.user.address)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(responses={200: SharingSerializer, **error_responses(400, 401, 415, 429)})
class SharingView(RetrieveUpdateAPIView):
    """[privacy] Who sees the caller's presence and location; a PUT takes effect at once
    for friends watching."""

    serializer_class = SharingSerializer
    # JSON only: a form would be parsed by Django first, whose limits answer in HTML.
    parser_classes = [JSONParser]
    http_method_names = ["get", "put", "head", "options"]

    def get_object(self) -> Sharing:
        return selectors.sharing(self.request.user.address)

    def perform_update(self, serializer: BaseSerializer) -> None:
        wanted = serializer.validated_data
        services.share_sync(
            self.request.user.address,
            Sharing(
                presence=wanted["presence"],
                presence_list=tuple(wanted["presence_list"]),
                location=wanted["location"],
                location_list=tuple(wanted["location_list"]),
            ),
        )
        serializer.instance = selectors.sharing(self.request.user.address)


# --- [location] ---------------------------------------------------------------------------


class _LocationBodyView(GenericAPIView):
    """A view whose body may carry a location (LocationBodySerializer)."""

    # JSON only: a form cannot say a nested location, and would read as none.
    parser_classes = [JSONParser]
    serializer_class = LocationBodySerializer
    # No OPTIONS description: DRF's would look for an object these views do not have.
    metadata_class = None

    def body(self, request: Request) -> dict[str, object]:
        """The body's fields, or a 400 whose detail names each wrong field
        (presence_project.api_errors)."""
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data


class LocationView(_LocationBodyView):
    """Where the caller is, shared with their friends while they are connected (a WebSocket
    or heartbeats)."""

    @extend_schema(
        summary="Share where the caller is",
        responses={200: PresenceSerializer, **error_responses(400, 401, 409, 429)},
    )
    def put(self, request: Request) -> Response:
        return self._shared(request, self.body(request)["location"])

    @extend_schema(
        summary="Stop sharing where the caller is",
        request=None,
        responses={200: PresenceSerializer, **error_responses(401, 409, 429)},
    )
    def delete(self, request: Request) -> Response:
        return self._shared(request, None)

    def _shared(self, request: Request, location: Location | None) -> Response:
        presence = async_to_sync(services.set_location)(request.user.address, location)
        return Response(PresenceSerializer(presence).data)


class HeartbeatView(_LocationBodyView):
    """For clients that cannot keep a WebSocket open: the caller is ONLINE (unless they chose
    a status on a connection) while heartbeats arrive, and OFFLINE after
    PRESENCE_HEARTBEAT_OFFLINE_SECONDS without one and without a connection."""

    serializer_class = HeartbeatBodySerializer

    @extend_schema(
        summary="The caller is alive, and where",
        responses={200: HeartbeatSerializer, **error_responses(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
        body = self.body(request)
        presence = async_to_sync(services.heartbeat)(
            request.user.address, body["location"], body["device"]
        )
        taken = {
            "presence": presence,
            "offline_after_seconds": presence_settings().heartbeat_offline_seconds,
        }
        return Response(HeartbeatSerializer(taken).data)


class OwnStatusView(APIView):
    """[status] The caller's own status message: GET reads what they chose (status, message,
    their ends), PUT sets the message, DELETE clears it. A status is chosen on a connection
    (SetPresenceStatus), as it lasts while the user is connected."""

    # A JSON body only: a form's fields are strings, not the contract's types.
    parser_classes = [JSONParser]

    def _choices(self) -> Response:
        choices = selectors.choices_of(self.request.user.address)
        return Response(OwnStatusSerializer(choices).data)

    @extend_schema(
        summary="The caller's chosen status and status message",
        responses={200: OwnStatusSerializer, **error_responses(401, 429)},
    )
    def get(self, request: Request) -> Response:
        return self._choices()

    @extend_schema(
        summary="Set the caller's status message",
        request=StatusMessageSerializer,
        responses={200: OwnStatusSerializer, **error_responses(400, 401, 429)},
    )
    def put(self, request: Request) -> Response:
        serializer = StatusMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.set_message_now(
            request.user.address,
            services.message_choice(
                serializer.validated_data["message"],
                serializer.validated_data.get("message_until_ms"),
                serializer.validated_data["clear_message_on_offline"],
            ),
        )
        return self._choices()

    @extend_schema(
        summary="Clear the caller's status message",
        request=None,
        responses={204: None, **error_responses(401, 429)},
    )
    def delete(self, request: Request) -> Response:
        services.set_message_now(request.user.address, services.message_choice(""))
        return Response(status=status.HTTP_204_NO_CONTENT)
