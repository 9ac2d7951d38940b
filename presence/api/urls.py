from django.urls import path

from presence.api.views import OnlineFriendsView, OnlineUsersView

urlpatterns = [
    path("friends/online/", OnlineFriendsView.as_view(), name="online-friends"),
    path("presence/online/", OnlineUsersView.as_view(), name="online-users"),
]
