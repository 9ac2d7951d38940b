from django.core.exceptions import ValidationError
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.exceptions import ValidationError as BadRequest
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from friendships import ratelimits, selectors, services
from friendships.models import FriendshipAction, FriendshipEvent


def _act(actor: str, other: str, action: FriendshipAction) -> FriendshipEvent:
    """Run a friendship action, reporting a broken rule or a bad address as 400, and a
    spent limit as 429."""
    try:
        return services.apply_action(actor, other, action)
    except services.TooManyActions as exc:
        raise Throttled(wait=ratelimits.seconds_to_next_window()) from exc
    except services.FriendshipRuleError as exc:
        raise BadRequest({"detail": str(exc)}) from exc
    except ValidationError as exc:
        raise BadRequest({"detail": " ".join(exc.messages)}) from exc


class BlocksView(APIView):
    """The users the caller blocks, newest first."""

    def get(self, request: Request) -> Response:
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(
            selectors.blocked_by(request.user.address), request, view=self
        )
        return paginator.get_paginated_response(
            [{"address": b.blocked_id, "blocked_at": b.created_at} for b in page]
        )


class BlockView(APIView):
    """PUT blocks the user in the URL, DELETE unblocks them."""

    def put(self, request: Request, address: str) -> Response:
        event = _act(request.user.address, address, FriendshipAction.BLOCK)
        other = event.friendship.other(request.user.address)
        return Response(
            {"address": other, "blocked_at": event.created_at}, status=status.HTTP_201_CREATED
        )

    def delete(self, request: Request, address: str) -> Response:
        _act(request.user.address, address, FriendshipAction.UNBLOCK)
        return Response(status=status.HTTP_204_NO_CONTENT)
