from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from friendships.selectors import friend_addresses


class FriendsView(APIView):
    """The caller's friends, by address."""

    def get(self, request: Request) -> Response:
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(
            friend_addresses(request.user.address), request, view=self
        )
        return paginator.get_paginated_response([{"address": a} for a in page])
