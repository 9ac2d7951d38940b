"""The friendships app's settings, typed and read once from `settings.FRIENDSHIPS`."""

from dataclasses import dataclass

from presence_project.app_settings import app_settings


@dataclass(frozen=True, slots=True)
class FriendshipsSettings:
    actions_per_minute: int
    actions_per_pair_per_minute: int


friendships_settings = app_settings("FRIENDSHIPS", FriendshipsSettings)
