"""The presence app's settings, typed and read once from `settings.PRESENCE`.

Code reads `presence_settings().max_ports`, never the dictionary: a misspelt name fails at
import-checking time instead of at the first request, and tests that override
`settings.PRESENCE` see their values because the cache is dropped on `setting_changed`.
"""

import functools
from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@dataclass(frozen=True, slots=True)
class PresenceSettings:
    gc_threshold: int
    gc_every_closed: int
    page_size: int
    max_frame_bytes: int
    max_concurrent_requests: int
    max_ports: int
    max_pending_events: int
    process_name: str
    heartbeat_seconds: int
    process_ttl_seconds: int
    redis_max_connections: int
    layer_concurrency: int
    auth_timeout_seconds: int
    max_connections_per_user: int
    frames_per_second: int
    frame_burst: int
    status_changes_per_minute: int
    status_coalesce_ms: int
    friendship_actions_per_minute: int
    friendship_actions_per_pair_per_minute: int
    allowed_origins: list[str]
    allow_missing_origin: bool
    token_lifetime_seconds: int
    signed_fetch_window_seconds: int
    ready_check_timeout_ms: int
    drain_seconds: int

    @classmethod
    def from_django(cls) -> "PresenceSettings":
        given: dict[str, Any] = {key.lower(): value for key, value in settings.PRESENCE.items()}
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - names)
        if unknown:
            raise ValueError(f"unknown PRESENCE settings: {', '.join(unknown)}")
        return cls(**given)


@functools.cache
def presence_settings() -> PresenceSettings:
    return PresenceSettings.from_django()


@receiver(setting_changed)
def _reload(setting: str, **kwargs: Any) -> None:
    if setting == "PRESENCE":
        presence_settings.cache_clear()
