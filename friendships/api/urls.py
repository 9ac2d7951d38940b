from django.urls import path

from friendships.api.views import BlocksView, BlockView

urlpatterns = [
    path("blocks/", BlocksView.as_view(), name="blocks"),
    path("blocks/<str:address>/", BlockView.as_view(), name="block"),
]
