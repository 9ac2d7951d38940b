from collections.abc import Callable

from asgiref.sync import async_to_sync
from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView, RetrieveUpdateAPIView
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from friendships.sharing import Sharing
from presence import selectors, services
from presence.api.serializers import PresenceSerializer, ProcessStatsSerializer, SharingSerializer
from presence.delivery import process
from presence.events import Presence
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
