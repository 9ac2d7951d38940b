"""What an operator sees: /metrics after a scripted scenario on a real daphne process, who
may read it, and the JSON log lines, which never carry a token or a signature."""

import asyncio
import json
from datetime import timedelta

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import AccessToken
from presence.rpc import wire
from presence.rpc.wire import MessageType
from tests.signing import new_identity, ws_sign_in_frame
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    armed,
    befriend_in_store,
    connect,
    connect_signed,
    http_raw,
    metric_delta,
    outcome,
    running_service,
    scrape_metrics,
    service_with,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

METRICS_TOKEN = "metrics-token-for-the-observability-tests"
STATUS_CHANGES = 2
FRAME_BURST = 20
MAX_CONNECTIONS = 2


# A process of its own, logging JSON at DEBUG, with low limits to reach in a scenario.
observed = service_with(
    {
        "PRESENCE_METRICS_TOKEN": METRICS_TOKEN,
        "PRESENCE_METRICS_ALLOW": "10.0.0.0/8",
        "PRESENCE_STATUS_CHANGES_PER_MINUTE": str(STATUS_CHANGES),
        "PRESENCE_FRAME_BURST": str(FRAME_BURST),
        "PRESENCE_FRAMES_PER_SECOND": "1",
        "PRESENCE_MAX_CONNECTIONS_PER_USER": str(MAX_CONNECTIONS),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
    }
)


async def first_frame_refused(url: str, frame: str | None, origin: str | None = None) -> int:
    """Open a connection, send `frame` if any; the close code the server answers with."""
    headers = {"Origin": origin} if origin else None
    async with websockets.connect(url, additional_headers=headers) as ws:
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            if frame is not None:
                await ws.send(frame)
            while True:
                await ws.recv()
        return ws.close_code


async def flood(url: str, frames: int) -> int:
    """Send `frames` calls at once on an anonymous connection; how many the frame budget
    refused (the others name a port that does not exist)."""
    async with websockets.connect(url) as ws:
        assert wire.decode(await ws.recv()).type == MessageType.SERVER_READY
        for number in range(1, frames + 1):
            await ws.send(wire.request(number, 99, 1, b""))
        answers = [wire.decode(await ws.recv()) for _ in range(frames)]
    assert all(a.type == MessageType.REMOTE_ERROR_RESPONSE for a in answers)
    return sum("too many frames" in a.message.error_message for a in answers)


async def test_metrics_move_by_what_a_scenario_did(observed, make_user):
    alice, bob, carol, dave = make_user(), make_user(), make_user(), make_user()
    staff = make_user(staff=True)
    await sync_to_async(befriend_in_store)(alice.address, bob.address)
    # Bob's token expires while his connection is bound to it.
    await sync_to_async(AccessToken.objects.filter(user_id=bob.address).update)(
        expires_at=timezone.now() + timedelta(seconds=3)
    )
    signed = new_identity()
    url = observed.ws_url
    before = await scrape_metrics(observed.http_url, METRICS_TOKEN)

    async with (
        connect(url, alice.token, query_token=True) as by_url,
        connect(url, bob.token) as by_payload,
        connect(url) as anonymous,
        connect_signed(url, signed) as by_frame,
    ):
        presence = await armed(by_url, await by_url.subscribe_presence())
        assert outcome(await by_payload.set_status(ONLINE)) == ("status", "")
        await presence.presence_until(bob.address, ONLINE)
        assert outcome(await by_payload.set_status(AWAY)) == ("status", "")
        await presence.presence_until(bob.address, AWAY)
        # Over the limit of status changes per minute.
        assert outcome(await by_payload.set_status(ONLINE))[0] == "too_many_requests_error"
        [page] = await by_payload.friends(token=carol.token)
        assert outcome(page)[0] == "forbidden_error"
        assert outcome(await anonymous.request_events())[0] == "unauthorized_error"
        [page] = await anonymous.friends(token="not-a-token")
        assert outcome(page)[0] == "unauthorized_error"
        await by_frame.blocking_status()
        during = await scrape_metrics(observed.http_url, f"{staff.token}")
        await asyncio.sleep(3)
        assert outcome(await by_payload.request_events())[0] == "unauthorized_error"
        await by_payload.ws.close()
        await presence.presence_until(bob.address, OFFLINE)

    assert await first_frame_refused(url, ws_sign_in_frame(new_identity(), timestamp_ms=1)) == 4001
    assert await first_frame_refused(url, "not json") == 4001
    assert await first_frame_refused(url, None, origin="https://elsewhere.example") == 4003
    budget_refusals = await flood(url, 2 * FRAME_BURST)
    async with (
        connect(url, dave.token, query_token=True),
        connect(url, dave.token, query_token=True),
    ):
        assert await first_frame_refused(f"{url}?access_token={dave.token}", None) == 4029
    assert budget_refusals >= FRAME_BURST - 2
    rest = await asyncio.to_thread(
        http_raw, "GET", f"{observed.http_url}/api/v1/friends/", alice.token
    )
    assert rest[0] == 200

    connections = {"signed_in_by": "url_token"}, {"signed_in_by": "payload_token"}
    assert [
        metric_delta(during, before, "presence_connections_open", **c) for c in connections
    ] == [1, 1]
    assert (
        metric_delta(during, before, "presence_connections_open", signed_in_by="signed_frame") == 1
    )
    assert metric_delta(during, before, "presence_connections_open", signed_in_by="anonymous") == 1
    assert metric_delta(during, before, "presence_subscriptions_open", kind="presence") == 1

    expected = {
        # Bob ONLINE, AWAY, OFFLINE; the signed-in user ONLINE, OFFLINE.
        ("presence_changes_published_total", ()): 5,
        # Bob's three changes, to alice.
        ("presence_updates_delivered_total", ()): 3,
        ("presence_delivery_seconds_count", ()): 3,
        ("presence_rpc_calls_total", ("FriendshipsService", "SetPresenceStatus", "ok")): 2,
        (
            "presence_rpc_calls_total",
            ("FriendshipsService", "SetPresenceStatus", "too_many_requests_error"),
        ): 1,
        ("presence_rpc_calls_total", ("FriendshipsService", "GetFriends", "forbidden_error")): 1,
        ("presence_rpc_calls_total", ("FriendshipsService", "GetFriends", "unauthorized_error")): 1,
        (
            "presence_rpc_calls_total",
            ("FriendshipsService", "GetRequestEvents", "unauthorized_error"),
        ): 2,
        ("presence_rpc_calls_total", ("FriendshipsService", "GetRequestEvents", "ok")): 1,
        (
            "presence_rpc_calls_total",
            ("FriendshipsService", "SubscribeFriendshipPresenceUpdates", "ok"),
        ): 1,
        ("presence_rpc_calls_total", ("SocialService", "GetBlockingStatus", "ok")): 1,
        ("presence_refusals_total", ("status_rate_limit",)): 1,
        ("presence_refusals_total", ("other_user",)): 1,
        ("presence_refusals_total", ("no_token",)): 1,
        ("presence_refusals_total", ("invalid_token",)): 1,
        ("presence_refusals_total", ("expired_token",)): 1,
        ("presence_refusals_total", ("bad_signature",)): 1,
        ("presence_refusals_total", ("bad_first_frame",)): 1,
        ("presence_refusals_total", ("origin",)): 1,
        ("presence_refusals_total", ("connection_limit",)): 1,
        ("presence_refusals_total", ("frame_budget",)): budget_refusals,
        ("presence_http_requests_total", ("friends", "200")): 1,
    }
    label_names = {
        "presence_rpc_calls_total": ("module", "procedure", "outcome"),
        "presence_refusals_total": ("reason",),
        "presence_http_requests_total": ("view", "status"),
    }

    def moved(after: dict) -> dict:
        return {
            (name, values): metric_delta(
                after, before, name, **dict(zip(label_names.get(name, ()), values, strict=True))
            )
            for name, values in expected
        }

    # Streams are counted as they close, and closes reach the server after the client's.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    scrapes = 0
    while True:
        after = await scrape_metrics(observed.http_url, METRICS_TOKEN)
        scrapes += 1
        if moved(after) == expected or loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert moved(after) == expected
    # A scrape is counted once answered: the first, the one during, and those before this.
    assert metric_delta(
        after, before, "presence_http_requests_total", view="metrics", status="200"
    ) == (2 + scrapes - 1)
    # Nothing else was called or refused, and Redis never failed.
    for name in ("presence_rpc_calls_total", "presence_refusals_total"):
        total = sum(v for (n, _), v in after.items() if n == name)
        total -= sum(v for (n, _), v in before.items() if n == name)
        assert total == sum(v for (n, _), v in expected.items() if n == name), name
    for name in ("presence_redis_errors_total", "presence_rebuilds_total"):
        assert sum(v for (n, _), v in after.items() if n == name) == sum(
            v for (n, _), v in before.items() if n == name
        )
    for method in ("url_token", "payload_token", "signed_frame", "anonymous"):
        assert metric_delta(after, before, "presence_connections_open", signed_in_by=method) == 0
    assert after[("presence_subscriber_backlog", ())] == 0


async def test_metrics_need_a_staff_token_the_metrics_token_or_an_allowed_address(
    observed, make_user, tmp_path
):
    user, staff = make_user(), make_user(staff=True)
    metrics = f"{observed.http_url}/metrics"
    status, headers, body = await asyncio.to_thread(http_raw, "GET", metrics)
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert b"presence_" not in body
    for token in ("wrong", user.token):
        status, _, body = await asyncio.to_thread(http_raw, "GET", metrics, token)
        assert status == 403
        assert b"presence_" not in body
    for token in (METRICS_TOKEN, staff.token):
        status, _, body = await asyncio.to_thread(http_raw, "GET", metrics, token)
        assert status == 200
        assert b"presence_connections_open" in body
    # Loopback is outside this process's allow-list (10.0.0.0/8); another one allows it.
    allowing = start_service(tmp_path, {"PRESENCE_METRICS_ALLOW": "192.0.2.1, 127.0.0.0/8"})
    try:
        status, _, _ = await asyncio.to_thread(http_raw, "GET", f"{allowing.http_url}/metrics")
        assert status == 200
    finally:
        stop_service(allowing)


async def test_json_log_lines_carry_context_and_never_a_token_or_signature(observed, make_user):
    alice, bob = make_user(), make_user()
    await sync_to_async(befriend_in_store)(alice.address, bob.address)
    signed, stale = new_identity(), new_identity()
    good_frame = ws_sign_in_frame(signed)
    stale_frame = ws_sign_in_frame(stale, timestamp_ms=1)
    mark = observed.log_mark()
    url = observed.ws_url

    async with (
        connect(url, alice.token, query_token=True) as by_url,
        connect(url, bob.token) as by_payload,
        connect_signed(url, signed, frame=good_frame) as by_frame,
    ):
        await armed(by_url, await by_url.subscribe_presence())
        assert outcome(await by_payload.set_status(ONLINE)) == ("status", "")
        [page] = await by_payload.friends(token=alice.token)
        assert outcome(page)[0] == "forbidden_error"
        await by_frame.blocking_status()
    assert await first_frame_refused(f"{url}?access_token=bad-{alice.token}", None) == 4001
    # A token in an HTTP query string, where no view reads it: access lines leave it out.
    query = f"{observed.http_url}/api/v1/friends/?token={bob.token}"
    status, _, _ = await asyncio.to_thread(http_raw, "GET", query, alice.token)
    assert status == 200
    assert await first_frame_refused(url, stale_frame) == 4001
    # The same signed headers again: refused as used.
    assert await first_frame_refused(url, good_frame) == 4001
    await asyncio.sleep(1)

    log = observed.logged_since(mark)
    secrets = [alice.token, bob.token, *_signatures(good_frame), *_signatures(stale_frame)]
    for secret in secrets:
        assert secret not in log
    # Neither in part: a token's first half, a signature without its 0x.
    for secret in secrets:
        assert secret[2 : len(secret) // 2 + 2] not in log

    entries = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message", "process"} <= set(e) for e in entries)
    calls = [e for e in entries if e.get("event") == "rpc.call"]
    status = next(c for c in calls if c.get("rpc_procedure") == "SetPresenceStatus")
    assert status["address"] == bob.address
    assert status["rpc_module"] == "FriendshipsService"
    assert status["outcome"] == "ok"
    assert status["level"] == "DEBUG"
    assert isinstance(status["duration_ms"], float)
    assert status["connection"].startswith(status["process"].rpartition("/")[0])
    forbidden = next(c for c in calls if c.get("outcome") == "forbidden_error")
    assert forbidden["address"] == bob.address
    refusals = {e["reason"] for e in entries if e.get("event") == "refused"}
    assert {"other_user", "invalid_token", "bad_signature"} <= refusals
    closed = [e for e in entries if e.get("event") == "connection.closed"]
    assert any(e["reason"].startswith("closed by the client") for e in closed), closed
    assert any("4001" in e["reason"] for e in closed), closed
    assert all("connection" in e and "duration_ms" in e for e in closed)
    opened = [e for e in entries if e.get("event") == "connection.opened"]
    assert len(opened) >= 6
    signed_in = {e["reason"] for e in entries if e.get("event") == "signed_in"}
    assert signed_in == {"url_token", "payload_token", "signed_frame"}


CONNECTION_EVENTS = {"connection.opened", "signed_in", "connection.closed"}


@pytest.mark.parametrize("asked", [False, True], ids=["by-default", "asked-for"])
async def test_each_connection_is_logged_at_info_only_when_asked_and_always_counted(
    asked, make_user, tmp_path
):
    alice, bob = make_user(), make_user()
    await sync_to_async(befriend_in_store)(alice.address, bob.address)
    env = {"PRESENCE_METRICS_TOKEN": METRICS_TOKEN, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    if asked:
        env["PRESENCE_LOG_CONNECTIONS"] = "1"
    with running_service(tmp_path, env) as service:
        before = await scrape_metrics(service.http_url, METRICS_TOKEN)
        async with connect(service.ws_url, alice.token) as client:
            await armed(client, await client.subscribe_presence())
        await asyncio.sleep(1)
        after = await scrape_metrics(service.http_url, METRICS_TOKEN)
        entries = [json.loads(line) for line in service.log.read_text().splitlines() if line]

    events = {e["event"] for e in entries if e.get("event") in CONNECTION_EVENTS}
    access = [e["message"] for e in entries if e["logger"] == "daphne.access"]
    websocket_access = [m for m in access if " WS" in m]
    if asked:
        assert events == CONNECTION_EVENTS, entries
        assert any("WSCONNECT " in m for m in websocket_access), access
        assert any("WSDISCONNECT" in m for m in websocket_access), access
    else:
        assert events == set(), entries
        assert websocket_access == [], access
        # HTTP requests keep their access lines (the scrapes above).
        assert any(" GET /metrics 200" in m for m in access), access
    assert metric_delta(after, before, "presence_connections_opened_total") == 1
    assert metric_delta(after, before, "presence_sign_ins_total", signed_in_by="payload_token") == 1
    assert metric_delta(after, before, "presence_connections_closed_total") == 1


def _signatures(frame: str) -> list[str]:
    """Every signature in a signed first frame's auth chain."""
    headers = json.loads(frame)
    links = [json.loads(v) for k, v in headers.items() if k.startswith("x-identity-auth-chain")]
    return [link["signature"] for link in links if link["signature"]]
