"""/healthz and /readyz of a running process while Redis hangs or stops, the database goes
away, and the process drains on SIGTERM."""

import asyncio
import json
import os
import signal
import time
import urllib.request

import pytest
from django.db import connection

from tests.support import (
    AWAY,
    ONLINE,
    DatabaseOutage,
    Service,
    closed_with,
    connect,
    eventually,
    http_get,
    outcome,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

READY = {
    "status": "ok",
    "checks": {"redis": "ok", "database": "ok", "heartbeat": "ok", "draining": False},
}
# Each check's bound; a probe answers within it (plus the request's own time).
CHECK_TIMEOUT_MS = 1000
FAST = {"PRESENCE_HEARTBEAT_SECONDS": "1", "PRESENCE_READY_CHECK_TIMEOUT_MS": str(CHECK_TIMEOUT_MS)}


async def probe(service: Service, path: str) -> tuple[int, dict, float]:
    """(status, body, seconds it took) of a GET of `path`."""
    started = time.monotonic()
    status, body = await asyncio.to_thread(http_get, service, path)
    return status, body, time.monotonic() - started


async def until_ready(service: Service) -> None:
    async def ready() -> bool:
        status, body, _ = await probe(service, "/readyz")
        return (status, body) == (200, READY)

    await eventually(ready)


async def assert_alive_fast(service: Service) -> None:
    status, body, took = await probe(service, "/healthz")
    assert (status, body) == (200, {"status": "ok"})
    assert took < 0.5, took


async def test_probes_answer_any_host_without_credentials_and_only_get(service):
    await until_ready(service)
    # Load balancers name the process by its address, which ALLOWED_HOSTS does not list.
    by_address = {"Host": "10.1.2.3:8000"}
    assert await asyncio.to_thread(http_get, service, "/readyz", None, by_address) == (200, READY)
    assert await asyncio.to_thread(http_get, service, "/healthz", None, by_address) == (
        200,
        {"status": "ok"},
    )
    request = urllib.request.Request(service.http_url + "/readyz", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
    assert refused.value.code == 405
    assert refused.value.headers["Allow"] == "GET, HEAD"


async def test_readiness_names_redis_when_it_hangs_or_stops_and_liveness_stays_up(
    tmp_path, own_redis
):
    running = start_service(
        tmp_path, {**FAST, "REDIS_URL": own_redis.url, "PRESENCE_PROCESS_TTL_SECONDS": "3"}
    )
    try:
        await until_ready(running)

        # Redis hangs: it accepts connections and never answers.
        pid = own_redis.pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            status, body, took = await probe(running, "/readyz")
            assert status == 503, body
            assert took < CHECK_TIMEOUT_MS / 1000 + 1, took
            assert body["status"] == "unavailable"
            assert body["checks"]["redis"] != "ok"
            assert body["checks"]["database"] == "ok"
            assert body["checks"]["draining"] is False
            await assert_alive_fast(running)
        finally:
            os.kill(pid, signal.SIGCONT)
        await until_ready(running)

        # Redis stops: the error is named, without the password of the URL.
        own_redis.stop()
        status, body, took = await probe(running, "/readyz")
        assert status == 503, body
        assert took < CHECK_TIMEOUT_MS / 1000 + 1, took
        assert "ConnectionError" in body["checks"]["redis"], body
        assert body["checks"]["database"] == "ok"
        assert own_redis.password not in json.dumps(body)
        await assert_alive_fast(running)

        # Past the TTL without a beat, other processes would reap this one: named too.
        async def heartbeat_stale() -> bool:
            _, body, _ = await probe(running, "/readyz")
            return body["checks"]["heartbeat"].startswith("last heartbeat")

        await eventually(heartbeat_stale, timeout=10)
        await assert_alive_fast(running)

        own_redis.start()
        await until_ready(running)
    finally:
        stop_service(running)


async def test_readiness_names_the_database_while_it_is_down(tmp_path):
    outage = DatabaseOutage(tmp_path)
    running = start_service(tmp_path, {**FAST, **outage.env})
    try:
        await until_ready(running)
        async with outage.down():
            status, body, took = await probe(running, "/readyz")
            assert status == 503, body
            assert took < CHECK_TIMEOUT_MS / 1000 + 1, took
            assert body["checks"]["database"] != "ok", body
            assert {**body["checks"], "database": "ok"} == READY["checks"]
            password = connection.settings_dict["PASSWORD"]
            assert not password or password not in json.dumps(body)
            await assert_alive_fast(running)
        await until_ready(running)
    finally:
        stop_service(running)


async def test_sigterm_drains_with_readiness_down_then_closes_and_exits(tmp_path, make_user):
    drain_seconds = 3
    running = start_service(tmp_path, {**FAST, "PRESENCE_DRAIN_SECONDS": str(drain_seconds)})
    try:
        alice = make_user()
        await until_ready(running)
        async with connect(running.ws_url, alice.token) as client:
            assert outcome(await client.set_status(ONLINE)) == ("status", "")
            running.process.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()

            async def draining() -> bool:
                status, body, _ = await probe(running, "/readyz")
                return status == 503 and body["checks"] == {**READY["checks"], "draining": True}

            await eventually(draining, timeout=drain_seconds)
            await assert_alive_fast(running)
            # Still serving while the load balancer moves clients away.
            assert outcome(await client.set_status(AWAY)) == ("status", "")
            # Then the connections close and the process exits.
            await closed_with(client.ws, within=drain_seconds + 5)
            assert time.monotonic() - stopped_at >= drain_seconds - 0.5
            await asyncio.to_thread(running.process.wait, 10)
    finally:
        stop_service(running)
