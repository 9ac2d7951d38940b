from django.urls import path

from presence.consumers import RpcConsumer

websocket_urlpatterns = [
    path("", RpcConsumer.as_asgi()),
]
