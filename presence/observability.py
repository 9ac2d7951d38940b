"""What an operator sees of this process: its Prometheus metrics and its event log lines.

Metrics are this process's own (each daphne process serves its own `/metrics`); the code
where a thing happens calls the functions here, which count it and, for events an operator
reads one by one (connections, refusals, calls), log it with its reason. Log records carry
the connection they happen on through `current_connection` (presence_project.logs reads it).

Hot-path cost: a delivered presence update costs a counter increment per frame and a
histogram observation per change in it (each follower's frame is observed, not a sample).
"""

import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Protocol

from google.protobuf.message import Message
from prometheus_client import Counter, Gauge, Histogram

from presence.conf import presence_settings
from presence.rpc.server import CallEnd, Kind

logger = logging.getLogger(__name__)


class Connection(Protocol):
    connection_id: str
    address: str | None


class Entry(Protocol):
    """A friend's presence as written to a follower (presence.events.Presence)."""

    # For a live change, its transition time.
    last_seen_ms: int | None
    live: bool


# The connection whose frames the running task handles: set by the consumer for its task,
# and inherited by the tasks it starts (calls, streams).
current_connection: ContextVar[Connection | None] = ContextVar("current_connection", default=None)

# How a connection signed in (labels of presence_connections_open).
ANONYMOUS = "anonymous"
URL_TOKEN = "url_token"
PAYLOAD_TOKEN = "payload_token"
SIGNED_FRAME = "signed_frame"
SIGN_IN_METHODS = (ANONYMOUS, URL_TOKEN, PAYLOAD_TOKEN, SIGNED_FRAME)
# Kinds of subscription (labels of presence_subscriptions_open).
PRESENCE_SUBSCRIPTION = "presence"
EVENT_SUBSCRIPTION = "friendship_events"

connections_open = Gauge(
    "presence_connections_open",
    "Open WebSocket connections, by how they signed in",
    ["signed_in_by"],
)
subscriptions_open = Gauge(
    "presence_subscriptions_open",
    "Open subscriptions: presence (friends' status) and friendship_events (friendship and "
    "block updates)",
    ["kind"],
)
backlog_worst = Gauge(
    "presence_subscriber_backlog", "Presence updates waiting for the slowest subscriber's ack now"
)
backlog_peak = Gauge(
    "presence_subscriber_backlog_peak",
    "The largest backlog any open presence subscription has had",
)
changes_published = Counter(
    "presence_changes_published", "Presence changes this process published to followers' groups"
)
updates_delivered = Counter(
    "presence_updates_delivered", "Friends' presence entries written to subscribers' frames"
)
delivery_seconds = Histogram(
    "presence_delivery_seconds",
    "From a presence change's transition in Redis to its frame written to each follower",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
rpc_calls = Counter(
    "presence_rpc_calls",
    "RPC calls ended, by module, procedure and outcome (ok, the response's error member, "
    "remote_<code> for a dcl-rpc remote error, cancelled)",
    ["module", "procedure", "outcome"],
)
refusals = Counter("presence_refusals", "Requests and connections refused, by reason", ["reason"])
redis_errors = Counter("presence_redis_errors", "Failed Redis operations, by where", ["where"])
redis_reconnects = Counter(
    "presence_redis_reconnects", "Recoveries after a failed Redis operation, by where", ["where"]
)
rebuilds = Counter(
    "presence_rebuilds",
    "Rebuilds of this process's presence after a Redis outage, or after another process "
    "reaped it while it lived",
)
processes_reaped = Counter(
    "presence_processes_reaped", "Dead server processes whose connections this process reaped"
)
heartbeat_intervals = Histogram(
    "presence_heartbeat_interval_seconds",
    "Time between two heartbeats of this process that Redis took: PRESENCE_HEARTBEAT_SECONDS "
    "plus how late the beat was; beyond PRESENCE_PROCESS_TTL_SECONDS other processes reap it",
    buckets=(0.5, 1.0, 1.5, 2.0, 2.25, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0),
)
heartbeat_interval_max = Gauge(
    "presence_heartbeat_interval_max_seconds",
    "The longest time between two heartbeats of this process that Redis took",
)
connections_opened = Counter("presence_connections_opened", "WebSocket connections opened")
sign_ins = Counter(
    "presence_sign_ins", "WebSocket connections bound to their user, by how", ["signed_in_by"]
)
connections_closed = Counter("presence_connections_closed", "WebSocket connections closed")
http_requests = Counter(
    "presence_http_requests", "HTTP requests answered, by view and status", ["view", "status"]
)

# Refusal reasons (labels of presence_refusals).
ORIGIN = "origin"
FRAME_BUDGET = "frame_budget"
CONNECTION_LIMIT = "connection_limit"
STATUS_RATE_LIMIT = "status_rate_limit"
FRIENDSHIP_RATE_LIMIT = "friendship_rate_limit"
BAD_SIGNATURE = "bad_signature"
BAD_FIRST_FRAME = "bad_first_frame"
EXPIRED_TOKEN = "expired_token"
INVALID_TOKEN = "invalid_token"
NO_TOKEN = "no_token"
OTHER_USER = "other_user"
AUTH_TIMEOUT = "auth_timeout"
BAD_DEVICE = "bad_device"

# Bound once: labels() looks its child up on every call.
_updates_delivered_inc = updates_delivered.inc
_delivery_observe = delivery_seconds.observe


def delivered(batch: Sequence[Entry]) -> None:
    """Count the presence entries of a frame written to a follower now, and observe each live
    change's time since its transition (a snapshot's or catch-up's entries are no change).

    Transitions are timed by the clock of the process that made them: across hosts, the
    histogram includes their clocks' difference.
    """
    now_ms = time.time() * 1000
    for entry in batch:
        if entry.live and entry.last_seen_ms is not None:
            _delivery_observe(max(0.0, now_ms - entry.last_seen_ms) / 1000)
    _updates_delivered_inc(len(batch))


def published() -> None:
    changes_published.inc()


def refused(reason: str, detail: str, level: int = logging.INFO) -> None:
    """Count a refusal and log it with its reason; `detail` is what the client is told."""
    refusals.labels(reason).inc()
    logger.log(level, "refused: %s", detail, extra={"event": "refused", "reason": reason})


def redis_failed(where: str) -> None:
    redis_errors.labels(where).inc()


def redis_recovered(where: str) -> None:
    redis_reconnects.labels(where).inc()


_longest_heartbeat_interval = 0.0


def heartbeat_interval(seconds: float) -> None:
    """Redis took a heartbeat `seconds` after the one before."""
    global _longest_heartbeat_interval
    heartbeat_intervals.observe(seconds)
    if seconds > _longest_heartbeat_interval:
        _longest_heartbeat_interval = seconds
        heartbeat_interval_max.set(seconds)


def connection_log_level() -> int:
    """The level of each connection's own lines (PRESENCE_LOG_CONNECTIONS): at INFO they
    cost a reconnect storm a good part of each connection's set-up, so by default they are
    at DEBUG, and the counters presence_connections_opened, presence_sign_ins and
    presence_connections_closed count them."""
    return logging.INFO if presence_settings().log_connections else logging.DEBUG


def connection_opened() -> None:
    connections_opened.inc()
    logger.log(connection_log_level(), "connection opened", extra={"event": "connection.opened"})


def signed_in(method: str) -> None:
    sign_ins.labels(method).inc()
    logger.log(
        connection_log_level(),
        "signed in by %s",
        method,
        extra={"event": "signed_in", "reason": method},
    )


def connection_closed(reason: str, seconds: float) -> None:
    connections_closed.inc()
    logger.log(
        connection_log_level(),
        "connection closed: %s",
        reason,
        extra={"event": "connection.closed", "reason": reason, "duration_ms": seconds * 1000},
    )


def _outcome(end: CallEnd, error_of: Callable[[Message], str | None]) -> str:
    if end.error is not None:
        return f"remote_{end.error.name.lower()}"
    if end.cancelled and end.kind == Kind.UNARY:
        return "cancelled"
    if isinstance(end.result, Message):
        return error_of(end.result) or "ok"
    return "ok"


def call_ended(end: CallEnd, error_of: Callable[[Message], str | None]) -> None:
    """Count an RPC call as it ends (a stream when it closes) and log it: at DEBUG when it
    succeeded, at INFO otherwise. `error_of` names the error member a response holds."""
    outcome = _outcome(end, error_of)
    rpc_calls.labels(end.module, end.procedure, outcome).inc()
    level = logging.DEBUG if outcome == "ok" else logging.INFO
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        "%s.%s: %s",
        end.module,
        end.procedure,
        outcome,
        extra={"event": "rpc.call", "outcome": outcome, "duration_ms": end.seconds * 1000},
    )


def http_answered(view: str, status: int) -> None:
    http_requests.labels(view, str(status)).inc()


def set_live_figures(
    connections: dict[str, int], subscriptions: dict[str, int], backlog: int, peak: int
) -> None:
    """Set the gauges of what the process holds, read from its live sessions at scrape time."""
    for method in SIGN_IN_METHODS:
        connections_open.labels(method).set(connections.get(method, 0))
    for kind in (PRESENCE_SUBSCRIPTION, EVENT_SUBSCRIPTION):
        subscriptions_open.labels(kind).set(subscriptions.get(kind, 0))
    backlog_worst.set(backlog)
    backlog_peak.set(peak)


def client_allowed(client: str, allowed: list[str]) -> bool:
    """Whether the address `client` is in one of `allowed`'s addresses or networks."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowed)
