"""Who may see a user's presence and location: the choices, without the models, so that
presence code loaded before the app registry (the log formatter's imports) can use them."""

from dataclasses import dataclass

from django.db import models


class PresenceAudience(models.TextChoices):
    """Which friends see a user's presence."""

    ALL = "all", "All friends"
    ONLY = "only", "Only the chosen friends"
    EXCEPT = "except", "All friends except the chosen ones"


class LocationAudience(models.TextChoices):
    """Which friends, among those who see a user's presence, see their location."""

    ALL = "all", "All friends"
    ONLY = "only", "Only the chosen friends"
    NOBODY = "nobody", "Nobody"


@dataclass(frozen=True, slots=True)
class Sharing:
    """Who sees a user's presence and location: a mode each, and the friends it names."""

    presence: str = PresenceAudience.ALL.value
    presence_list: tuple[str, ...] = ()
    location: str = LocationAudience.ALL.value
    location_list: tuple[str, ...] = ()

    @property
    def default(self) -> bool:
        """Everything shared with every friend: nothing to mirror."""
        return self.presence == PresenceAudience.ALL and self.location == LocationAudience.ALL
