"""The admin site: Django's, with the live presence page beside the models' pages."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver

from presence import admin_views


class AdminSite(admin.AdminSite):
    # The navigation sidebar takes 300 of 1,280 pixels, and with the filters beside them the
    # lists had 630 left, too few for a row of addresses; the index and the breadcrumbs
    # lead everywhere it does.
    enable_nav_sidebar = False

    def get_urls(self) -> list[URLPattern | URLResolver]:
        # Before the models' URLs, whose last pattern catches every other path.
        return [*admin_views.urls(self), *super().get_urls()]

    def get_app_list(
        self, request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is None:
            live = admin_views.app_entry()
            # The presence app's models, if the user may see any, list the page beside them.
            models = next((app for app in apps if app["app_label"] == live["app_label"]), None)
            if models is None:
                apps.append(live)
            else:
                models["models"] = [*live["models"], *models["models"]]
            apps.sort(key=lambda app: app["name"].lower())
        return apps
