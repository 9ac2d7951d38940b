from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("friendships.api.urls")),
    path("api/v1/", include("presence.api.urls")),
]


def json_not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal server error."}, status=500)


handler404 = json_not_found
handler500 = json_server_error
