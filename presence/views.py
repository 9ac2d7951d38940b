"""/metrics: this process's Prometheus metrics, for staff, the metrics token or allowed
addresses (README, "Operating it")."""

import hmac

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from accounts.services import user_for_token
from presence import observability
from presence.delivery import process


def _refusal(request: HttpRequest) -> JsonResponse | None:
    """Why `request` may not read the metrics, as its response; None if it may."""
    if observability.client_allowed(request.META.get("REMOTE_ADDR", ""), settings.METRICS_ALLOW):
        return None
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential:
        expected = settings.METRICS_TOKEN
        if expected and hmac.compare_digest(credential.encode(), expected.encode()):
            return None
        user = user_for_token(credential)
        if user is not None and user.is_staff:
            return None
        return JsonResponse({"detail": "This token may not read the metrics."}, status=403)
    if request.user.is_authenticated:
        if request.user.is_staff:
            return None
        return JsonResponse({"detail": "Staff only."}, status=403)
    response = JsonResponse(
        {"detail": "Send the metrics token or a staff token as 'Authorization: Bearer'."},
        status=401,
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    async_to_sync(process.update_gauges)()
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
