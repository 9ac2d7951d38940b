from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import User
from accounts.services import user_for_signed_request, user_for_token
from accounts.signed_fetch import AUTH_CHAIN_PREFIX, InvalidSignedRequest


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` with a token from `manage.py issuetoken`."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, str] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        user = user_for_token(header[1])
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return user, header[1]

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class SignedFetchAuthentication(authentication.BaseAuthentication):
    """A request signed with the user's wallet (ADR-44 signed fetch): how users sign in."""

    def authenticate(self, request: Request) -> tuple[User, None] | None:
        if f"{AUTH_CHAIN_PREFIX}0" not in request.headers:
            return None
        try:
            user = user_for_signed_request(request.method or "", request.path, request.headers)
        except InvalidSignedRequest as exc:
            raise exceptions.AuthenticationFailed(f"Signed request refused: {exc}.") from exc
        return user, None

    def authenticate_header(self, request: Request) -> str:
        return "SignedFetch"
