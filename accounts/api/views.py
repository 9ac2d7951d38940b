from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.authentication import SignedFetchAuthentication
from accounts.api.serializers import TokenSerializer
from accounts.conf import accounts_settings
from accounts.services import issue_token
from presence_project.openapi import error_responses


class TokenView(APIView):
    """An access token for whoever signed the request with their wallet (creating the user).

    The token then works wherever tokens do: synapse_token, ?access_token=, Bearer.
    """

    authentication_classes = [SignedFetchAuthentication]

    @extend_schema(
        summary="An access token for the signing wallet's user",
        request=None,
        responses={201: TokenSerializer, **error_responses(401, 429)},
    )
    def post(self, request: Request) -> Response:
        address = request.user.address
        lifetime = accounts_settings().token_lifetime_seconds
        token = {"address": address, "token": issue_token(address), "expires_in": lifetime or None}
        return Response(TokenSerializer(token).data, status=status.HTTP_201_CREATED)
