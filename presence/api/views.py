from asgiref.sync import async_to_sync
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from friendships.selectors import friend_addresses
from presence import process, selectors
from presence.api.serializers import PresenceSerializer


class FriendsView(APIView):
    """The caller's friends, each with their status and when they were last seen."""

    def get(self, request: Request) -> Response:
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(
            friend_addresses(request.user.address), request, view=self
        )
        return paginator.get_paginated_response(
            PresenceSerializer(selectors.presence_of(page), many=True).data
        )


class OnlineFriendsView(APIView):
    """The caller's friends who are online or away."""

    def get(self, request: Request) -> Response:
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(
            selectors.visible_friends(request.user.address), request, view=self
        )
        return paginator.get_paginated_response(PresenceSerializer(page, many=True).data)


class OnlineUsersView(APIView):
    """Every visible user, for operators; paged straight from Redis."""

    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> Response:
        paginator = LimitOffsetPagination()
        paginator.request = request
        paginator.limit = paginator.get_limit(request)
        paginator.offset = paginator.get_offset(request)
        paginator.count, page = selectors.visible_page(paginator.offset, paginator.limit)
        return paginator.get_paginated_response(PresenceSerializer(page, many=True).data)


class ProcessStatsView(APIView):
    """This server process's connections and the largest backlog a subscriber left it."""

    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> Response:
        return Response(async_to_sync(process.stats)())
