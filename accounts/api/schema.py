"""How the OpenAPI contract describes this project's two ways of authenticating.

drf-spectacular finds these extensions by the class they name once this module is imported
(accounts.apps does it).
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from accounts.signed_fetch import AUTH_CHAIN_PREFIX


class _FixedScheme(OpenApiAuthenticationExtension):
    """A security scheme that is the same for every view; names no class, so matches none."""

    definition: dict[str, Any]

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return self.definition


class BearerTokenScheme(_FixedScheme):
    target_class = "accounts.api.authentication.BearerTokenAuthentication"
    name = "bearerToken"
    definition = {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from `POST /api/v1/auth/token` or `manage.py issuetoken`.",
    }


class SignedFetchScheme(_FixedScheme):
    target_class = "accounts.api.authentication.SignedFetchAuthentication"
    name = "signedFetch"
    definition = {
        "type": "apiKey",
        "in": "header",
        "name": f"{AUTH_CHAIN_PREFIX}0",
        "description": "A request signed with the user's wallet (ADR-44 signed fetch): the "
        f"headers `{AUTH_CHAIN_PREFIX}0`, `-1`, ..., `x-identity-timestamp` and "
        "`x-identity-metadata`, signed over `post:/api/v1/auth/token:<timestamp>:<metadata>`.",
    }
