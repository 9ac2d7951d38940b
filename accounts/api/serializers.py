from rest_framework import serializers


class TokenSerializer(serializers.Serializer):
    """An access token issued to the user who signed the request."""

    address = serializers.CharField(help_text="the signing wallet's address, lowercase")
    token = serializers.CharField(help_text="use as `Authorization: Bearer <token>`")
    expires_in = serializers.IntegerField(
        allow_null=True, help_text="seconds until the token expires; null if it never does"
    )
