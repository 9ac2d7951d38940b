"""HTTP (Django, DRF, admin) and the dcl-rpc WebSocket on one port."""

import gc
import os

import django
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "presence_project.settings")
django.setup(set_prefix=False)

from presence_project.sync_http import OneThreadASGIHandler  # noqa: E402

django_asgi_app = OneThreadASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from presence.conf import presence_settings  # noqa: E402
from presence.delivery import process  # noqa: E402
from presence.routing import websocket_urlpatterns  # noqa: E402
from presence_project import health, shutdown  # noqa: E402

# Fewer young collections, so that short-lived objects die before they reach the old
# generations, whose collections scan every connection's objects (see settings); closed
# connections' garbage is collected as it adds up (presence.delivery.process.untrack). The objects
# of start-up (Django, the libraries: some 100,000) never become garbage: frozen, they are
# left out of every full collection.
gc.set_threshold(presence_settings().gc_threshold)
gc.freeze()

router = ProtocolTypeRouter(
    {
        # The admin's static files come from the apps themselves: no collectstatic, no web server.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)


async def application(scope: dict, receive: object, send: object) -> None:
    """The router, with this process's presence housekeeping started on the first call, and
    the health probes answered ahead of it; once the process stops listening for its
    shutdown, the probes only."""
    process.ensure_running()
    if scope["type"] == "http" and scope["path"] in health.PATHS:
        await health.respond(scope, receive, send)
        return
    if shutdown.refusing():
        await shutdown.refuse(scope, receive, send)
        return
    await router(scope, receive, send)
