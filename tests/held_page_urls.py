"""The service's URLs plus HELD_PAGE: a synchronous view that writes `started` in the folder
HELD_PAGE_DIR names, then holds its thread until `release` appears there (a slow admin
page, as long as the test needs), at most a minute."""

import os
import time
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.urls import path

from presence_project.urls import handler404, handler500, urlpatterns

HELD_PAGE = "tests/held-page/"
HOLD_AT_MOST_SECONDS = 60


def held_page(request: HttpRequest) -> HttpResponse:
    folder = Path(os.environ["HELD_PAGE_DIR"])
    (folder / "started").touch()
    deadline = time.monotonic() + HOLD_AT_MOST_SECONDS
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return HttpResponse("released")


urlpatterns = [path(HELD_PAGE, held_page), *urlpatterns]
__all__ = ["handler404", "handler500", "urlpatterns"]
