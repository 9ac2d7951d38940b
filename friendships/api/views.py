from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from friendships import selectors, services
from friendships.api.serializers import BlockSerializer
from friendships.models import Block, FriendshipAction
from presence_project.openapi import error_responses

_ADDRESS = OpenApiParameter(
    "address",
    str,
    OpenApiParameter.PATH,
    pattern=r"^0x[0-9a-fA-F]{40}$",
    description="the other user's Ethereum address, any case",
)


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
    """PUT blocks the user in the URL, DELETE unblocks them. A refusal (a rule, a bad
    address, a spent budget) is the API's exception handler's to answer."""

    @extend_schema(
        summary="Block a user (ends any friendship or request)",
        parameters=[_ADDRESS],
        request=None,
        responses={201: BlockSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def put(self, request: Request, address: str) -> Response:
        blocker = request.user.address
        event = services.apply_action(blocker, address, FriendshipAction.BLOCK)
        block = selectors.block(blocker, event.friendship.other(blocker))
        return Response(BlockSerializer(block).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Unblock a user",
        parameters=[_ADDRESS],
        request=None,
        responses={204: None, **error_responses(400, 401, 403, 404, 429)},
    )
    def delete(self, request: Request, address: str) -> Response:
        services.apply_action(request.user.address, address, FriendshipAction.UNBLOCK)
        return Response(status=status.HTTP_204_NO_CONTENT)
