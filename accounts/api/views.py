from django.conf import settings
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.authentication import SignedFetchAuthentication
from accounts.services import issue_token


class TokenView(APIView):
    """An access token for whoever signed the request with their wallet (creating the user).

    The token then works wherever tokens do: synapse_token, ?access_token=, Bearer.
    """

    authentication_classes = [SignedFetchAuthentication]

    def post(self, request: Request) -> Response:
        address = request.user.address
        lifetime = settings.PRESENCE["TOKEN_LIFETIME_SECONDS"]
        return Response(
            {"address": address, "token": issue_token(address), "expires_in": lifetime or None},
            status=status.HTTP_201_CREATED,
        )
