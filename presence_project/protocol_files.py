"""The WebSocket protocol's description as the repository holds it, served so that the
OpenAPI page can link to it: the REST contract does not describe the WebSocket."""

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest

_FILES = {
    "protocol.md": ("docs/protocol.md", "text/markdown"),
    "social_service_v2.proto": ("presence/protocol/social_service_v2.proto", "text/plain"),
    "friendships_service.proto": ("presence/protocol/friendships_service.proto", "text/plain"),
    "dcl_rpc.proto": ("presence/rpc/dcl_rpc.proto", "text/plain"),
}


def protocol_file(request: HttpRequest, name: str) -> FileResponse:
    if name not in _FILES:
        raise Http404(name)
    path, content_type = _FILES[name]
    return FileResponse(
        (settings.BASE_DIR / path).open("rb"), content_type=f"{content_type}; charset=utf-8"
    )
