from django.urls import path

from friendships.api.views import FriendsView

urlpatterns = [
    path("friends/", FriendsView.as_view(), name="friends"),
]
