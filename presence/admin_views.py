"""The live presence page of the admin, for operators: the page, and the JSON its script
polls. Staff only; every figure comes from presence.selectors."""

import logging
from dataclasses import asdict
from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError

from accounts.addresses import InvalidAddress
from presence import selectors
from presence.api.serializers import LocationSerializer, PresenceSerializer

logger = logging.getLogger(__name__)

POLL_INTERVAL_MS = 1500


def urls(site: AdminSite) -> list[URLPattern]:
    """The page (behind the admin's sign-in) and its data (a JSON 403 without a staff
    session, as a script can read it)."""

    def page(request: HttpRequest) -> TemplateResponse:
        context = {
            **site.each_context(request),
            "title": "Live presence",
            "data_url": reverse("admin:presence_live_data", current_app=site.name),
            "poll_interval_ms": POLL_INTERVAL_MS,
            "address": request.GET.get("address", ""),
        }
        return TemplateResponse(request, "admin/presence/live.html", context)

    @never_cache
    @require_GET
    def data(request: HttpRequest) -> JsonResponse:
        if not site.has_permission(request):
            return JsonResponse({"detail": "Staff only: sign in to the admin."}, status=403)
        try:
            body = {
                "summary": asdict(selectors.online_summary()),
                "processes": [_process(summary) for summary in selectors.processes()],
                "user": _search(request.GET.get("address", "").strip()),
            }
        except RedisError:
            # The page keeps polling and says it could not update; the error's text may name
            # the server, which the log has.
            logger.exception("the live presence page could not read Redis")
            return JsonResponse(
                {"detail": "Presence is unavailable: Redis does not answer."}, status=503
            )
        return JsonResponse(body)

    return [
        path("presence/", site.admin_view(require_GET(page)), name="presence_live"),
        path("presence/data/", data, name="presence_live_data"),
    ]


def _process(summary: selectors.ProcessSummary) -> dict[str, Any]:
    return {**asdict(summary), "alive": summary.alive}


def _search(query: str) -> dict[str, Any] | None:
    if not query:
        return None
    try:
        found = selectors.user_presence(query)
    except InvalidAddress as error:
        return {"query": query, "error": error.message}
    if found is None:
        return {"query": query, "error": "No user has this address."}
    return {
        "query": query,
        "address": found.address,
        "status": found.status,
        "last_seen": found.last_seen_ms,
        "location": LocationSerializer(found.location).data if found.location else None,
        "appears_offline": found.appears_offline,
        "connections": found.connections,
        # [status]
        "message": found.choices.message,
        "message_until": found.choices.message_until_ms,
        "status_until": found.choices.status_until_ms,
        "devices": list(found.devices),
        "connection_devices": found.connection_devices,
        "online_friends": PresenceSerializer(found.online_friends, many=True).data,
        "admin_url": reverse("admin:accounts_user_change", args=[found.address]),
    }


def app_entry() -> dict[str, Any]:
    """The page as the admin's index and app list show a model."""
    url = reverse("admin:presence_live")
    return {
        "name": "Presence",
        "app_label": "presence",
        "app_url": url,
        "has_module_perms": True,
        "models": [
            {
                "name": "Live presence",
                "object_name": "LivePresence",
                "admin_url": url,
                "add_url": None,
                "view_only": True,
                "perms": {"view": True},
            }
        ],
    }
