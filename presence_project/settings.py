"""Settings for the presence service, all read from the environment here and nowhere else."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from presence_project.secret_key import key_file

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _secret_key() -> str:
    """SECRET_KEY from the environment, or the key kept in the key file.

    Reading settings writes nothing: a process with neither key refuses to start, rather
    than sign sessions with a key that no other process shares.
    """
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    path = key_file()
    key = path.read_text().strip() if path.exists() else ""
    if not key:
        raise ImproperlyConfigured(
            f"no secret key: set SECRET_KEY (or SECRET_KEY_FILE), or make a local key in {path} "
            "with `python -m presence_project.secret_key`, as scripts/serve.sh does"
        )
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "daphne",
    "presence_project.apps.AdminConfig",  # django.contrib.admin with the project's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "friendships",
    "presence",
]

MIDDLEWARE = [
    # First, so that it sees every response's final status.
    "presence.middleware.count_http_requests",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that the chain above runs in one hop to the worker thread.
    "presence_project.sync_http.SynchronousChain",
]

ROOT_URLCONF = "presence_project.urls"
ASGI_APPLICATION = "presence_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_sqlite_path = BASE_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{_sqlite_path}",
        # A new connection (and its login) per database call would make PostgreSQL the
        # bottleneck of reconnect storms. Health checks replace connections a database
        # restart killed.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Tests share the database with daphne processes, so the test database must be a file;
    # one per test run, so that runs side by side do not trample each other.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"presence-test-{os.getpid()}.sqlite3")
    }
    # Several processes write (requests, and each process's history drain): a transaction
    # that reads first and writes later cannot wait for another writer (SQLite refuses the
    # upgrade at once, "database is locked"), so each takes the write lock when it begins,
    # and waits for it up to the timeout.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}

AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"

# The local Redis-protocol server that scripts/serve.sh starts when REDIS_URL is unset
# records its address here, so that management commands run beside it find it too.
LOCAL_REDIS_URL_FILE = BASE_DIR / ".local-redis-url"


def _redis_url() -> str:
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        return url
    if LOCAL_REDIS_URL_FILE.exists():
        return LOCAL_REDIS_URL_FILE.read_text().strip()
    return "redis://127.0.0.1:6379/0"


REDIS_URL = _redis_url()


def _shard_url(entry: str) -> tuple[object, str]:
    """(which server a shard's Redis URL names, however it is spelt; the URL without
    credentials, for messages)."""
    parts = urlsplit(entry)
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("redis", "rediss", "unix") or port == -1:
        raise ImproperlyConfigured(
            f"REDIS_SHARDS: {entry.rpartition('@')[2]!r} is not a redis://, rediss:// or "
            "unix:// URL"
        )
    # Databases of one server are no shards: they share its memory, CPU and pub/sub.
    return (parts.hostname, port or 6379) if parts.hostname else parts.path, shown


def _master_name(entry: str) -> tuple[object, str]:
    return entry, entry


def _shard_entries(
    name: str, value: str, identify: Callable[[str], tuple[object, str]]
) -> list[str]:
    """One entry per shard from a comma-separated list: no empty entry, no two naming the
    same server. `identify` gives an entry's identity and its form for messages."""
    entries = [entry.strip() for entry in value.split(",")]
    seen: dict[object, int] = {}
    for number, entry in enumerate(entries, start=1):
        if not entry:
            raise ImproperlyConfigured(f"{name}: entry {number} of {len(entries)} is empty")
        identity, shown = identify(entry)
        if identity in seen:
            raise ImproperlyConfigured(
                f"{name}: entry {number} ({shown!r}) names the same server as entry "
                f"{seen[identity]}: each shard must be a server of its own"
            )
        seen[identity] = number
    return entries


# Presence keys and channel-layer groups are spread over these Redis servers, one per
# shard (docs/scaling.md, "Shards"). Unset: the one REDIS_URL. The first shard also keeps
# what is not sharded: rate limits, DRF throttling, the cache, used signatures.
REDIS_SHARDS = [REDIS_URL]
if os.environ.get("REDIS_SHARDS", "").strip():
    REDIS_SHARDS = _shard_entries("REDIS_SHARDS", os.environ["REDIS_SHARDS"], _shard_url)
    if os.environ.get("REDIS_URL", "").strip() not in ("", REDIS_SHARDS[0]):
        raise ImproperlyConfigured(
            "REDIS_URL and REDIS_SHARDS disagree: with REDIS_SHARDS, leave REDIS_URL unset "
            "or make it the first shard"
        )
    REDIS_URL = REDIS_SHARDS[0]


def _sentinels(value: str) -> list[tuple[str, int]]:
    sentinels = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"REDIS_SENTINELS must be host:port,... ; {entry!r} is not host:port"
            )
        sentinels.append((host.strip("[]"), int(port)))
    return sentinels


# A Sentinel-managed primary (docs/presence.md, "Redis high availability"): every Redis
# client asks these sentinels where REDIS_SENTINEL_MASTER is now. REDIS_URL then gives only
# the primary's credentials and database number.
REDIS_SENTINELS = _sentinels(os.environ.get("REDIS_SENTINELS", ""))
# One master name per shard, all monitored by the same sentinels.
REDIS_SENTINEL_MASTERS = (
    _shard_entries("REDIS_SENTINEL_MASTER", os.environ["REDIS_SENTINEL_MASTER"], _master_name)
    if os.environ.get("REDIS_SENTINEL_MASTER", "").strip()
    else []
)
REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD") or None
if bool(REDIS_SENTINELS) != bool(REDIS_SENTINEL_MASTERS):
    raise ImproperlyConfigured("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together: set both")
if REDIS_SENTINELS and len(REDIS_SHARDS) > 1:
    raise ImproperlyConfigured(
        "REDIS_SHARDS and REDIS_SENTINELS do not mix: with Sentinel, name one master per "
        "shard in REDIS_SENTINEL_MASTER (comma-separated)"
    )
REDIS_SENTINEL_CONNECTION: dict[str, str | int | None] = {}
if REDIS_SENTINELS:
    _redis_target = urlsplit(REDIS_URL)
    _db = _redis_target.path.strip("/") or "0"
    if not _db.isdigit():
        raise ImproperlyConfigured(f"REDIS_URL's database must be a number, not {_db!r}")
    REDIS_SENTINEL_CONNECTION = {
        "username": unquote(_redis_target.username) if _redis_target.username else None,
        "password": unquote(_redis_target.password) if _redis_target.password else None,
        "db": int(_db),
    }
    _REDIS_HOSTS = [
        {
            "sentinels": REDIS_SENTINELS,
            "master_name": master,
            # One try per sentinel, as presence_project/redis_clients.py says why.
            "sentinel_kwargs": {
                "socket_connect_timeout": 5,
                "socket_timeout": 5,
                "password": REDIS_SENTINEL_PASSWORD,
                "retry": AsyncRetry(NoBackoff(), 0),
            },
            "socket_connect_timeout": 5,
            **REDIS_SENTINEL_CONNECTION,
        }
        for master in REDIS_SENTINEL_MASTERS
    ]
else:
    _REDIS_HOSTS = [{"address": url, "socket_connect_timeout": 5} for url in REDIS_SHARDS]
# "pubsub" pushes each message to the processes whose connections joined the group;
# "core" stores messages in Redis lists that every process polls. docs/presence.md says
# why pubsub is the default.
CHANNEL_LAYER = os.environ.get("CHANNEL_LAYER", "pubsub")
if CHANNEL_LAYER == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": _REDIS_HOSTS, "prefix": "presence-layer"},
        }
    }
elif CHANNEL_LAYER == "core":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # The layer blocks on Redis for up to 5 s per receive: its socket timeout must
                # be longer, or idle connections fail (redis-py's default is exactly 5 s).
                "hosts": [{**host, "socket_timeout": 15} for host in _REDIS_HOSTS],
                "prefix": "presence-layer",
                # Counted per process, not per connection: the process's one channel
                # carries every friend's change and every connected user's friendship
                # events, and what overflows it is dropped for good (BENCHMARKS.md, b910cda).
                "capacity": env_int("CHANNEL_CAPACITY", 100_000),
                "group_expiry": env_int("CHANNEL_GROUP_EXPIRY", 86400),
            },
        }
    }
else:
    raise ImproperlyConfigured(f"CHANNEL_LAYER must be 'pubsub' or 'core', not {CHANNEL_LAYER!r}")

# Shared by all processes: DRF throttling counts here.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "presence-cache",
        "OPTIONS": {
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
            "pool_class": "presence_project.cache.ProcessConnectionPool",
        },
    }
}

# The largest page a REST list serves (?limit=); larger limits are refused with 400.
REST_MAX_PAGE_SIZE = env_int("REST_MAX_PAGE_SIZE", 1000)
REST_PAGE_SIZE = env_int("REST_PAGE_SIZE", 100)
if not 1 <= REST_PAGE_SIZE <= REST_MAX_PAGE_SIZE:
    raise ImproperlyConfigured("REST_PAGE_SIZE must be from 1 to REST_MAX_PAGE_SIZE")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "presence_project.pagination.Pagination",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("REST_ANON_RATE", "60/min"),
        "user": os.environ.get("REST_USER_RATE", "600/min"),
    },
    "PAGE_SIZE": REST_PAGE_SIZE,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "presence_project.api_errors.exception_handler",
}

# The OpenAPI contract (/api/schema/) and its page (/api/docs/), with the page's assets served
# by this service (drf-spectacular-sidecar), not a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Presence service REST API",
    "DESCRIPTION": (
        "Friends' presence over HTTP; live updates come over the dcl-rpc WebSocket at `/`, "
        "described by [docs/protocol.md](/api/protocol/protocol.md) and its messages by "
        "[social_service_v2.proto](/api/protocol/social_service_v2.proto), "
        "[friendships_service.proto](/api/protocol/friendships_service.proto) and "
        "[dcl_rpc.proto](/api/protocol/dcl_rpc.proto).\n\n"
        f"Lists take `limit` (1 to {REST_MAX_PAGE_SIZE}, default {REST_PAGE_SIZE}) and `offset`; "
        'every error body is `{"detail": "..."}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A presence status is one enum wherever it shows (a friend's, a history entry's two).
    "ENUM_NAME_OVERRIDES": {"StatusEnum": ["online", "away", "offline"]},
}

# Presence service tunables (documented in README.md).
PRESENCE = {
    # Allocations between young-generation garbage collections (CPython's default: 700).
    # Rarer young collections promote less, so full collections over every connection's
    # objects, which pause the event loop, run rarely; each young one stays short enough
    # not to show in a request's latency (BENCHMARKS.md, "Garbage collection").
    "GC_THRESHOLD": env_int("PRESENCE_GC_THRESHOLD", 10_000),
    # Closed connections between full collections, at least (presence.delivery.process.untrack).
    "GC_EVERY_CLOSED": env_int("PRESENCE_GC_EVERY_CLOSED", 200),
    # Users per UsersResponse page of GetFriends, GetMutualFriends and GetOnlineFriends.
    "PAGE_SIZE": env_int("PRESENCE_PAGE_SIZE", 100),
    # A WebSocket frame larger than this closes the connection with 1009.
    "MAX_FRAME_BYTES": env_int("PRESENCE_MAX_FRAME_BYTES", 64 * 1024),
    # Connections the kernel queues for the process before it accepts them (the listen
    # backlog; Linux caps it at net.core.somaxconn). Twisted's default of 50 drops the
    # rest of a reconnect storm's SYNs, and clients retry only after 1, 3, 7... s.
    "LISTEN_BACKLOG": env_int("PRESENCE_LISTEN_BACKLOG", 4096),
    # TCP connections accepted but not yet set up (signed in, answered, or gone) at once; at
    # this many, the process stops accepting and the rest wait in the listen queue, where no
    # deadline runs (docs/scaling.md, "Reconnect storms"). 0 accepts all at once.
    "MAX_CONNECTING": env_int("PRESENCE_MAX_CONNECTING", 1000),
    # Every connection's lines (opened, signed in, closed, daphne's WebSocket access lines)
    # at INFO; otherwise at DEBUG, and the presence_connections_* counters count them. Off:
    # in a reconnect storm the lines are a good part of each connection's set-up.
    "LOG_CONNECTIONS": env_bool("PRESENCE_LOG_CONNECTIONS", False),
    # Requests one connection may have in flight at once, open streams included.
    "MAX_CONCURRENT_REQUESTS": env_int("PRESENCE_MAX_CONCURRENT_REQUESTS", 64),
    # Ports one connection may open.
    "MAX_PORTS": env_int("PRESENCE_MAX_PORTS", 16),
    # Friendship events kept for a subscriber that does not ack; older ones are dropped.
    "MAX_PENDING_EVENTS": env_int("PRESENCE_MAX_PENDING_EVENTS", 1000),
    # This process's name in Redis (default: host:pid). A restart gets a new incarnation.
    "PROCESS_NAME": os.environ.get("PRESENCE_PROCESS_NAME", ""),
    # How often a process renews its heartbeat and looks for dead processes.
    "HEARTBEAT_SECONDS": env_int("PRESENCE_HEARTBEAT_SECONDS", 1),
    # A process whose heartbeat is this old is dead: its users go OFFLINE. Worst case until
    # friends are told is PROCESS_TTL_SECONDS + HEARTBEAT_SECONDS (8 s by default); a live
    # process is reaped if a beat comes PROCESS_TTL_SECONDS - HEARTBEAT_SECONDS late (6 s;
    # docs/presence.md, "Timings").
    "PROCESS_TTL_SECONDS": env_int("PRESENCE_PROCESS_TTL_SECONDS", 7),
    # Redis connections this process's presence code may hold at once (a pool it waits on).
    "REDIS_MAX_CONNECTIONS": env_int("PRESENCE_REDIS_MAX_CONNECTIONS", 50),
    # Channel-layer calls in flight at once per process; the layer's own pool holds 100.
    "LAYER_CONCURRENCY": env_int("PRESENCE_LAYER_CONCURRENCY", 50),
    # A connection that has not authenticated after this many seconds is closed (4008).
    "AUTH_TIMEOUT_SECONDS": env_int("PRESENCE_AUTH_TIMEOUT_SECONDS", 30),
    # Open connections one user may have at once, across all processes.
    "MAX_CONNECTIONS_PER_USER": env_int("PRESENCE_MAX_CONNECTIONS_PER_USER", 10),
    # Frames one connection may send per second, with bursts up to FRAME_BURST.
    "FRAMES_PER_SECOND": env_int("PRESENCE_FRAMES_PER_SECOND", 50),
    "FRAME_BURST": env_int("PRESENCE_FRAME_BURST", 200),
    # SetPresenceStatus calls one user may make per minute; beyond, too_many_requests_error.
    "STATUS_CHANGES_PER_MINUTE": env_int("PRESENCE_STATUS_CHANGES_PER_MINUTE", 120),
    # Friends hear at most one change of a user per this many ms: flapping is coalesced,
    # the final status always arrives.
    "STATUS_COALESCE_MS": env_int("PRESENCE_STATUS_COALESCE_MS", 250),
    # Origins allowed to open the WebSocket ("*" for any; wildcards like https://*.example).
    "ALLOWED_ORIGINS": env_list(
        "PRESENCE_ALLOWED_ORIGINS",
        [
            "https://decentraland.org",
            "https://*.decentraland.org",
            "https://decentraland.zone",
            "https://*.decentraland.zone",
            "http://localhost:*",
            "http://127.0.0.1:*",
        ],
    ),
    # Native clients (the game, scripts) send no Origin header: allowed unless this is false.
    "ALLOW_MISSING_ORIGIN": env_bool("PRESENCE_ALLOW_MISSING_ORIGIN", True),
    # Each readiness check (/readyz: Redis, the database) fails after this many ms.
    "READY_CHECK_TIMEOUT_MS": env_int("PRESENCE_READY_CHECK_TIMEOUT_MS", 1000),
    # On SIGTERM the process keeps serving this many seconds with /readyz answering 503, so
    # that load balancers stop sending it clients, then closes its connections and exits.
    "DRAIN_SECONDS": env_int("PRESENCE_DRAIN_SECONDS", 0),
    # Then the WebSockets close with 1012 (service restart), but stay counted in Redis for
    # this many seconds: a user who reconnects to another process meanwhile never shows
    # OFFLINE to friends. Those who do not are disconnected after it, and the process exits.
    "RESTART_GRACE_SECONDS": env_int("PRESENCE_RESTART_GRACE_SECONDS", 5),
    # Days a user's own presence history is kept (`manage.py presence purge-history` and
    # the hourly housekeeping delete what is older).
    "HISTORY_RETENTION_DAYS": env_int("PRESENCE_HISTORY_RETENTION_DAYS", 30),
    # [location] Friends hear at most one location change of a user per this many ms; the
    # latest always. A parcel is 16 m and an avatar runs at about 8 m/s, a parcel in 2 s, so
    # once a second keeps friends within a parcel of a runner, and bounds a walking user's
    # fan-out to one update per friend per second (docs/presence.md, "Location").
    "LOCATION_INTERVAL_MS": env_int("PRESENCE_LOCATION_INTERVAL_MS", 1000),
    # A user whose heartbeats (clients without a socket) stop for this long goes OFFLINE,
    # unless a connection of theirs is still open.
    "HEARTBEAT_OFFLINE_SECONDS": env_int("PRESENCE_HEARTBEAT_OFFLINE_SECONDS", 120),
    # A user all of whose connections sent no frame but stream acks for this long shows AWAY
    # instead of a chosen ONLINE (as Synapse, 5 minutes); 0 turns it off.
    "IDLE_AWAY_SECONDS": env_int("PRESENCE_IDLE_AWAY_SECONDS", 300),
}

# Signing in (accounts/conf.py). The environment keeps the PRESENCE_ names it always had.
ACCOUNTS = {
    # Access tokens expire after this many seconds (0: never).
    "TOKEN_LIFETIME_SECONDS": env_int("PRESENCE_TOKEN_LIFETIME_SECONDS", 30 * 24 * 3600),
    # A signed request (ADR-44) is accepted while its timestamp is within this many seconds
    # of the server's clock, either way; within it, the same signed headers work only once.
    "SIGNED_FETCH_WINDOW_SECONDS": env_int("PRESENCE_SIGNED_FETCH_WINDOW_SECONDS", 300),
}

# Friendship actions (friendships/conf.py): (request, accept, ..., block) per user and per
# pair of users, per minute, as Decentraland's social service allows.
FRIENDSHIPS = {
    "ACTIONS_PER_MINUTE": env_int("PRESENCE_FRIENDSHIP_ACTIONS_PER_MINUTE", 30),
    "ACTIONS_PER_PAIR_PER_MINUTE": env_int("PRESENCE_FRIENDSHIP_ACTIONS_PER_PAIR_PER_MINUTE", 10),
}

# Who may read /metrics besides staff: a bearer token, and client addresses or networks.
METRICS_TOKEN = os.environ.get("PRESENCE_METRICS_TOKEN", "")
METRICS_ALLOW = env_list("PRESENCE_METRICS_ALLOW", [])

# "plain" for people, "json" (one object per line, with the connection and call) for machines.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "presence_project.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "presence_project.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
