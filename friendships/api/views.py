from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.exceptions import ValidationError as BadRequest
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from friendships import ratelimits, selectors, services
from friendships.api.serializers import BlockSerializer
from friendships.models import Block, FriendshipAction, FriendshipEvent
from presence_project.openapi import error_responses

_ADDRESS = OpenApiParameter(
    "address",
    str,
    OpenApiParameter.PATH,
    pattern=r"^0x[0-9a-fA-F]{40}$",
    description="the other user's Ethereum address, any case",
)


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


@extend_schema(
    summary="The users the caller blocks",
    responses={200: BlockSerializer, **error_responses(400, 401, 429)},
)
class BlocksView(ListAPIView):
    """The users the caller blocks, newest first."""

    serializer_class = BlockSerializer

    def get_queryset(self) -> QuerySet[Block]:
        return selectors.blocked_by(self.request.user.address)


class BlockView(APIView):
    """PUT blocks the user in the URL, DELETE unblocks them."""

    @extend_schema(
        summary="Block a user (ends any friendship or request)",
        parameters=[_ADDRESS],
        request=None,
        responses={201: BlockSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def put(self, request: Request, address: str) -> Response:
        event = _act(request.user.address, address, FriendshipAction.BLOCK)
        block = {
            "blocked_id": event.friendship.other(request.user.address),
            "created_at": event.created_at,
        }
        return Response(BlockSerializer(block).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Unblock a user",
        parameters=[_ADDRESS],
        request=None,
        responses={204: None, **error_responses(400, 401, 403, 404, 429)},
    )
    def delete(self, request: Request, address: str) -> Response:
        _act(request.user.address, address, FriendshipAction.UNBLOCK)
        return Response(status=status.HTTP_204_NO_CONTENT)
