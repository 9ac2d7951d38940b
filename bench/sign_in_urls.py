"""The service's URLs plus a staff page that takes SLOW_PAGE_SECONDS to render, its time
spent waiting on PostgreSQL as a heavy admin query would: for bench/sign_in.py only."""

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path

from presence_project.urls import handler404, handler500, urlpatterns

SLOW_PAGE = "bench/slow-admin/"
SLOW_PAGE_SECONDS = 2.0


def slow_page(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [SLOW_PAGE_SECONDS])
    return HttpResponse("rendered")


urlpatterns = [path(SLOW_PAGE, admin.site.admin_view(slow_page)), *urlpatterns]
__all__ = ["handler404", "handler500", "urlpatterns"]
