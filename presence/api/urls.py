from django.urls import path

from presence.api.views import (
    FriendsView,
    HeartbeatView,
    HistoryView,
    LocationView,
    OnlineFriendsView,
    OnlineUsersView,
    OwnStatusView,
    ProcessStatsView,
    SharingView,
)

urlpatterns = [
    path("friends/", FriendsView.as_view(), name="friends"),
    path("friends/online/", OnlineFriendsView.as_view(), name="online-friends"),
    path("presence/online/", OnlineUsersView.as_view(), name="online-users"),
    path("presence/process/", ProcessStatsView.as_view(), name="process-stats"),
    path("presence/sharing/", SharingView.as_view(), name="presence-sharing"),
    path("presence/history/", HistoryView.as_view(), name="presence-history"),
    # [location]
    path("presence/location/", LocationView.as_view(), name="presence-location"),
    path("presence/heartbeat/", HeartbeatView.as_view(), name="presence-heartbeat"),
    path("presence/status/", OwnStatusView.as_view(), name="own-status"),  # [status]
]
