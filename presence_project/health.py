"""`/healthz` and `/readyz`, answered ahead of Django.

Probes come from load balancers and orchestrators, which name the process by its address
(not in ALLOWED_HOSTS), and must be answered while the database hangs: Django's request
handling would refuse the host, and runs on the one thread the database calls use.

`/healthz`: the process's event loop answers; nothing else is touched. `/readyz`: Redis
and the database answer, this process's heartbeat is fresh (beyond the TTL other processes
reap its connections), and it is not draining. The checks run at once, each bounded by
PRESENCE_READY_CHECK_TIMEOUT_MS, so the answer comes within that whatever hangs. A failing
check is named in the body with its error, credentials masked.

With several Redis shards, the process stays ready while any shard answers: a shard's
outage is every process's alike, and only the users that shard holds can be served no
better elsewhere, so taking every process out of the balancer would turn one shard's
outage into everyone's. The shards that do not answer are named in the body and the log.
"""

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from redis.exceptions import RedisError

from presence.conf import presence_settings
from presence.delivery import process
from presence_project import redis_clients, shutdown
from presence_project.loops import PerLoop

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
PATHS = (HEALTH_PATH, READY_PATH)
OK = "ok"


def _timeout() -> float:
    return presence_settings().ready_check_timeout_ms / 1000


# Clients of its own: a probe must not wait behind presence's pool when it is busy.
_redis_clients = PerLoop(
    lambda: [
        redis_clients.client(
            asynchronous=True,
            shard=shard,
            socket_timeout=_timeout(),
            socket_connect_timeout=_timeout(),
        )
        for shard in range(redis_clients.shard_count())
    ]
)


async def _ping(shard: int) -> str | None:
    """None if `shard` answers, else what failed, naming the server (or that no sentinel
    names one)."""
    try:
        # Within the check's bound, so that a hung shard is named rather than the check
        # timing out as a whole.
        await asyncio.wait_for(_redis_clients.get()[shard].ping(), _timeout() * 0.8)
    except (RedisError, TimeoutError) as exc:
        return _masked(f"{redis_clients.description(shard)}: {type(exc).__name__}: {exc}")
    return None


async def _check_redis() -> None:
    results = await asyncio.gather(*(_ping(s) for s in range(redis_clients.shard_count())))
    failures = [failure for failure in results if failure is not None]
    if not failures:
        return
    found = "; ".join(failures)
    if len(failures) < len(results):
        raise _Degraded(found)
    raise _Unready(found)


# One thread with a database connection of its own, kept between checks: a check must not
# queue behind the HTTP thread or the WebSocket side's database threads, nor a hung one
# hold up the next probe's.
_database_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness")
_database_query: asyncio.Future[None] | None = None


def _query_database() -> None:
    # Replaces a connection that an outage left broken, as Django does between requests.
    connection.close_if_unusable_or_obsolete()
    # A read of a table: SQLite answers "SELECT 1" without reading the database file.
    MigrationRecorder(connection).migration_qs.exists()


def _retrieve(future: asyncio.Future[None]) -> None:
    # A query that ends after its probe gave up has nobody else to read its exception.
    if not future.cancelled():
        future.exception()


async def _check_database() -> None:
    """Query the database; a query still running from an earlier probe is waited on, not
    stacked behind."""
    global _database_query
    if _database_query is None or _database_query.done():
        _database_query = asyncio.get_running_loop().run_in_executor(
            _database_thread, _query_database
        )
        _database_query.add_done_callback(_retrieve)
    await asyncio.shield(_database_query)


async def _check_heartbeat() -> None:
    """Fresh while younger than the TTL. A process just started has half a timeout for its
    first beat (its first request starts the housekeeping that beats)."""
    if process.heartbeat_age() is None:
        try:
            await asyncio.wait_for(process.first_heartbeat(), _timeout() / 2)
        except TimeoutError:
            raise _Unready("no heartbeat yet") from None
    age = process.heartbeat_age() or 0.0
    ttl = presence_settings().process_ttl_seconds
    if age > ttl:
        raise _Unready(f"last heartbeat {age:.1f} s ago, beyond the {ttl} s TTL")


class _Unready(Exception):
    """A check's own finding, shown as is."""


class _Degraded(_Unready):
    """A finding shown as is that leaves the process ready: some Redis shards down."""


_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^\s/@]*@", re.IGNORECASE)


def _secrets() -> list[str]:
    redis_passwords = [urlsplit(url).password for url in settings.REDIS_SHARDS]
    database_password = settings.DATABASES["default"].get("PASSWORD")
    secrets = (*redis_passwords, settings.REDIS_SENTINEL_PASSWORD, database_password)
    return [secret for secret in secrets if secret]


def _masked(text: str) -> str:
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    for secret in _secrets():
        text = text.replace(secret, "***")
    return text[:300]


async def _outcome(check: Callable[[], Awaitable[None]]) -> tuple[str, bool]:
    """(what the check found, whether it leaves the process ready)."""
    try:
        await asyncio.wait_for(check(), _timeout())
    except TimeoutError:
        return f"no answer within {_timeout():g} s", False
    except _Degraded as exc:
        return str(exc), True
    except _Unready as exc:
        return str(exc), False
    except Exception as exc:
        return _masked(f"{type(exc).__name__}: {exc}".strip()), False
    return OK, True


_failing: dict[str, str] = {}


def _log_changes(checks: dict[str, str]) -> None:
    """Log a check when it starts failing and when it recovers, not at every probe."""
    for name, result in checks.items():
        if result != OK and name not in _failing:
            logger.warning("readiness: %s is failing: %s", name, result)
        elif result == OK and name in _failing:
            logger.warning("readiness: %s recovered", name)
        if result == OK:
            _failing.pop(name, None)
        else:
            _failing[name] = result


async def readiness() -> tuple[bool, dict[str, Any]]:
    """(whether this process can serve, the body of /readyz)."""
    names = ("redis", "database", "heartbeat")
    outcomes = await asyncio.gather(
        _outcome(_check_redis), _outcome(_check_database), _outcome(_check_heartbeat)
    )
    checks = {name: found for name, (found, _) in zip(names, outcomes, strict=True)}
    _log_changes(checks)
    draining = shutdown.draining()
    ready = all(fine for _, fine in outcomes) and not draining
    body = {"status": "ok" if ready else "unavailable", "checks": {**checks, "draining": draining}}
    return ready, body


async def respond(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer a probe: GET or HEAD, JSON, never cached."""
    if scope["method"] not in ("GET", "HEAD"):
        status, body = 405, {"detail": f'Method "{scope["method"]}" not allowed.'}
    elif scope["path"] == HEALTH_PATH:
        status, body = 200, {"status": "ok"}
    else:
        ready, body = await readiness()
        status = 200 if ready else 503
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    body_bytes = b"" if scope["method"] == "HEAD" else payload
    await send({"type": "http.response.body", "body": body_bytes})
