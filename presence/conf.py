"""The presence app's settings, typed and read once from `settings.PRESENCE`.

Code reads `presence_settings().max_ports`, never the dictionary (presence_project/app_settings.py).
"""

from dataclasses import dataclass

from presence_project.app_settings import app_settings


@dataclass(frozen=True, slots=True)
class PresenceSettings:
    gc_threshold: int
    gc_every_closed: int
    page_size: int
    max_frame_bytes: int
    listen_backlog: int
    max_connecting: int
    log_connections: bool
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
    allowed_origins: list[str]
    allow_missing_origin: bool
    ready_check_timeout_ms: int
    drain_seconds: int
    restart_grace_seconds: int
    history_retention_days: int
    # [location]
    location_interval_ms: int
    heartbeat_offline_seconds: int
    idle_away_seconds: int


presence_settings = app_settings("PRESENCE", PresenceSettings)
