from collections.abc import Callable
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from presence import selectors, services
from presence.api.serializers import (
    HistoryEntrySerializer,
    HistoryWindowSerializer,
    PresenceSerializer,
    ProcessStatsSerializer,
)
from presence.delivery import process
from presence.events import Presence
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
