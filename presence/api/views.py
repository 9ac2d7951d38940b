from collections.abc import Callable

from asgiref.sync import async_to_sync
from drf_spectacular.utils import extend_schema
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from presence import selectors, services
from presence.api.serializers import (
    HeartbeatSerializer,
    LocationBodySerializer,
    PresenceSerializer,
    ProcessStatsSerializer,
)
from presence.conf import presence_settings
from presence.delivery import process
from presence.events import Location, Presence
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


# --- [location] ---------------------------------------------------------------------------


class LocationView(GenericAPIView):
    """Where the caller is, shared with their friends while they are connected (a WebSocket
    or heartbeats)."""

    serializer_class = LocationBodySerializer

    @extend_schema(
        summary="Share where the caller is",
        responses={200: PresenceSerializer, **error_responses(400, 401, 409, 429)},
    )
    def put(self, request: Request) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._shared(request, body.validated_data["location"])

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


class HeartbeatView(GenericAPIView):
    """For clients that cannot keep a WebSocket open: the caller is ONLINE (unless they chose
    a status on a connection) while heartbeats arrive, and OFFLINE after
    PRESENCE_HEARTBEAT_OFFLINE_SECONDS without one and without a connection."""

    serializer_class = LocationBodySerializer

    @extend_schema(
        summary="The caller is alive, and where",
        responses={200: HeartbeatSerializer, **error_responses(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        presence = async_to_sync(services.heartbeat)(
            request.user.address, body.validated_data["location"]
        )
        taken = {
            "presence": presence,
            "offline_after_seconds": presence_settings().heartbeat_offline_seconds,
        }
        return Response(HeartbeatSerializer(taken).data)
