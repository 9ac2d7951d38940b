"""The Redis server and the database stop under a running service, then come back."""

import time

import pytest

from tests.support import (
    OFFLINE,
    ONLINE,
    DatabaseOutage,
    addresses,
    befriend,
    connect,
    eventually,
    metric_delta,
    scrape_metrics,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_redis_restart_rebuilds_presence_from_live_connections(
    tmp_path, make_user, own_redis
):
    url_env = {
        "REDIS_URL": own_redis.url,
        "PRESENCE_HEARTBEAT_SECONDS": "1",
    }
    running = start_service(tmp_path, url_env)
    try:
        alice, bob, carol = make_user(), make_user(), make_user()
        staff = make_user(staff=True)
        await befriend(running.ws_url, alice, bob)
        await befriend(running.ws_url, carol, bob)
        before = await scrape_metrics(running.http_url, staff.token)
        async with (
            connect(running.ws_url, alice.token) as a,
            connect(running.ws_url, bob.token) as b,
        ):
            carol_connection = connect(running.ws_url, carol.token)
            c = await carol_connection.__aenter__()
            await a.set_status(ONLINE)
            await c.set_status(ONLINE)
            view = await b.subscribe_presence()
            await view.presence_until(carol.address, ONLINE)

            own_redis.stop()
            # Calls fail fast and clearly while Redis is away; the connections stay open.
            started = time.monotonic()
            during = await a.set_status(ONLINE)
            assert during.WhichOneof("response") == "internal_server_error"
            assert time.monotonic() - started < 8
            # Carol leaves during the outage: nobody could be told yet.
            await carol_connection.__aexit__(None, None, None)

            own_redis.start()

            # Without any client action: presence is rebuilt and bob's view is right again.
            async def alice_listed() -> bool:
                return addresses(await b.online_friends()) == [alice.address]

            await eventually(alice_listed)
            await view.presence_until(carol.address, OFFLINE, timeout=15)
            # And live updates flow again.
            assert (await a.set_status(OFFLINE)).WhichOneof("response") == "status"
            await view.presence_until(alice.address, OFFLINE)
        # The metrics tell: alice's call failed on Redis (carol's leaving too, if the server
        # handled it before Redis came back), and the process rebuilt its presence once.
        # Housekeeping, once a second, may or may not have run during the outage.
        after = await scrape_metrics(running.http_url, staff.token)
        errors = "presence_redis_errors_total"
        assert metric_delta(after, before, errors, where="presence") in (1, 2)
        assert metric_delta(after, before, "presence_rebuilds_total") == 1
    finally:
        stop_service(running)


async def test_database_outage_fails_friendship_calls_quickly_then_recovers(tmp_path, make_user):
    alice, bob = make_user(), make_user()
    outage = DatabaseOutage(tmp_path)
    running = start_service(tmp_path, outage.env)
    try:
        async with (
            connect(running.ws_url, alice.token) as a,
            connect(running.ws_url, bob.token) as b,
        ):
            await a.set_status(ONLINE)
            async with outage.down():
                started = time.monotonic()
                during = await a.update("request", bob.address)
                assert during.WhichOneof("response") == "internal_server_error"
                assert time.monotonic() - started < 8
                # Presence does not need the database: it keeps working.
                assert (await a.set_status(ONLINE)).WhichOneof("response") == "status"

            async def request_works() -> bool:
                response = await a.update("request", bob.address)
                return response.WhichOneof("response") == "event"

            await eventually(request_works)
            assert (await b.update("accept", alice.address)).WhichOneof("response") == "event"
    finally:
        stop_service(running)
