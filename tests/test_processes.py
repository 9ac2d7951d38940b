"""Several real daphne processes sharing one Redis and one database, and processes that die."""

import asyncio
import os
import re
import signal
import time

import pytest
from django.test import Client

from accounts.models import User as UserModel
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    addresses,
    befriend,
    connect,
    friend_online,
    http_get,
    http_raw,
    metric_delta,
    new_address,
    scrape_metrics,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Within this many seconds of a crash, with default settings, friends see the user offline:
# a generous bound (TTL + one check is 8 s); BENCHMARKS.md, "Crash detection" measures it.
CRASH_NOTICE_BOUND = 20
FAST_REAPING = {"PRESENCE_HEARTBEAT_SECONDS": "1", "PRESENCE_PROCESS_TTL_SECONDS": "2"}


@pytest.fixture
def two_processes(tmp_path, service):
    first = start_service(tmp_path, FAST_REAPING)
    second = start_service(tmp_path, FAST_REAPING)
    yield first, second
    for running in (first, second):
        if running.process.poll() is None:
            stop_service(running)


async def online_over_rest(service, user) -> list[str]:
    """GET /api/v1/friends/online/ over real HTTP from the given process."""
    status, body = await asyncio.to_thread(http_get, service, "/api/v1/friends/online/", user.token)
    assert status == 200, body
    return [row["address"] for row in body["results"]]


async def presence_in_admin(service, operator_cookie: str, user) -> str:
    """The presence column of the admin's users list, as the given process renders it."""
    path = f"/admin/accounts/user/?q={user.address}"
    status, _, page = await asyncio.to_thread(
        http_raw, "GET", service.http_url + path, headers={"Cookie": operator_cookie}
    )
    assert status == 200, page
    return re.search(r'<td class="field-presence">(\w+)</td>', page.decode()).group(1)


def operator_session_cookie() -> str:
    operator = UserModel.objects.create_superuser(new_address(), "a-password-9")
    client = Client()
    client.force_login(operator)
    return f"sessionid={client.cookies['sessionid'].value}"


async def test_friends_on_different_processes_see_each_other(two_processes, make_user):
    first, second = two_processes
    alice, bob = make_user(), make_user()
    await befriend(first.ws_url, alice, bob)
    async with connect(second.ws_url, bob.token) as b:
        updates = await b.subscribe_presence()
        async with connect(first.ws_url, alice.token) as a:
            await a.set_status(ONLINE)
            await updates.presence_until(alice.address, ONLINE)
            for url in (first.ws_url, second.ws_url):
                async with connect(url, bob.token) as viewer:
                    assert addresses(await viewer.online_friends()) == [alice.address]
            cookie = operator_session_cookie()
            for process in (first, second):
                assert await online_over_rest(process, bob) == [alice.address]
                assert await presence_in_admin(process, cookie, alice) == "online"
                assert await presence_in_admin(process, cookie, bob) == "offline"
            # And the other way round: bob's change on the second process reaches alice.
            alice_updates = await a.subscribe_presence()
            await b.set_status(ONLINE)
            await alice_updates.presence_until(bob.address, ONLINE)
        await updates.presence_until(alice.address, OFFLINE)


async def test_killed_process_leaves_no_ghosts(two_processes, service, make_user):
    doomed, survivor = two_processes
    alice, bob, carol = make_user(), make_user(), make_user()
    await befriend(survivor.ws_url, alice, bob)
    await befriend(survivor.ws_url, carol, bob)
    async with (
        connect(survivor.ws_url, bob.token) as b,
        connect(survivor.ws_url, carol.token) as carol_here,
    ):
        updates = await b.subscribe_presence()
        # Alice is only on the doomed process; carol is on both.
        async with (
            connect(doomed.ws_url, alice.token) as a,
            connect(doomed.ws_url, carol.token) as c,
        ):
            await a.set_status(ONLINE)
            await c.set_status(ONLINE)
            await carol_here.set_status(ONLINE)
            await updates.presence_until(alice.address, ONLINE)
            await updates.presence_until(carol.address, ONLINE)

            # Whichever living process reaps the dead one counts it and names it; processes
            # that earlier tests stopped may be reaped in the same window.
            staff = make_user(staff=True)
            living = (survivor, service)
            before = [await scrape_metrics(p.http_url, staff.token) for p in living]
            marks = [p.log_mark() for p in living]
            os.kill(doomed.process.pid, signal.SIGKILL)
            await updates.presence_until(alice.address, OFFLINE, timeout=15)
            assert addresses(await b.online_friends()) == [carol.address]
            assert await online_over_rest(survivor, bob) == [carol.address]
            await updates.expect_nothing(1.0)
            after = [await scrape_metrics(p.http_url, staff.token) for p in living]
            reaped = sum(
                metric_delta(a, b, "presence_processes_reaped_total")
                for a, b in zip(after, before, strict=True)
            )
            assert reaped >= 1
            logged = "".join(p.logged_since(mark) for p, mark in zip(living, marks, strict=True))
            assert f":{doomed.process.pid}#" in logged


async def test_restart_under_the_same_name_neither_resurrects_nor_double_counts(
    tmp_path, service, make_user
):
    named = {**FAST_REAPING, "PRESENCE_PROCESS_NAME": "presence-1"}
    alice, bob = make_user(), make_user()
    await befriend(service.ws_url, alice, bob)
    async with connect(service.ws_url, bob.token) as b:
        updates = await b.subscribe_presence()
        first = start_service(tmp_path, named)
        async with connect(first.ws_url, alice.token) as a:
            await a.set_status(ONLINE)
            await updates.presence_until(alice.address, ONLINE)
            os.kill(first.process.pid, signal.SIGKILL)
            await updates.presence_until(alice.address, OFFLINE, timeout=15)

        restarted = start_service(tmp_path, named)
        try:
            async with connect(restarted.ws_url, alice.token) as again:
                await again.set_status(ONLINE)
                await updates.presence_until(alice.address, ONLINE)
                # Well past the reaping delay: the old incarnation stays dead and changes nothing.
                await updates.expect_nothing(4.0)
                assert addresses(await b.online_friends()) == [alice.address]
            # One connection was open, so closing it is the end: no leftover keeps alice online.
            await updates.presence_until(alice.address, OFFLINE)
            await asyncio.sleep(0.2)
            assert addresses(await b.online_friends()) == []
        finally:
            stop_service(restarted)


async def test_a_process_reaped_while_alive_puts_its_users_back(two_processes, service, make_user):
    """A process paused beyond the TTL (a stalled event loop, a suspended VM) is reaped by
    another; once it beats again it finds itself reaped and restores its live connections."""
    paused, survivor = two_processes
    alice, bob = make_user(), make_user()
    await befriend(survivor.ws_url, alice, bob)
    async with friend_online(survivor.ws_url, bob, paused.ws_url, alice) as (updates, a):
        mark = paused.log_mark()
        os.kill(paused.process.pid, signal.SIGSTOP)
        try:
            await updates.presence_until(alice.address, OFFLINE, timeout=15)
        finally:
            os.kill(paused.process.pid, signal.SIGCONT)
        # Without any client action, alice is back for her friends on every process.
        await updates.presence_until(alice.address, ONLINE, timeout=15)
        assert await online_over_rest(survivor, bob) == [alice.address]
        assert "this live process was unregistered in Redis" in paused.logged_since(mark)
        # Her connection works as before, and she still leaves as usual.
        await a.set_status(AWAY)
        await updates.presence_until(alice.address, AWAY)
        await a.ws.close()
        await updates.presence_until(alice.address, OFFLINE)
        async with connect(survivor.ws_url, bob.token) as b:
            assert addresses(await b.online_friends()) == []


async def test_default_settings_notify_friends_of_a_crash_within_20_seconds(
    tmp_path, service, make_user
):
    alice, bob = make_user(), make_user()
    await befriend(service.ws_url, alice, bob)
    doomed = start_service(tmp_path)
    async with friend_online(service.ws_url, bob, doomed.ws_url, alice) as (updates, _):
        os.kill(doomed.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # The wait outlasts the bound, so that a late notice is measured, not timed out.
        await updates.presence_until(alice.address, OFFLINE, timeout=2 * CRASH_NOTICE_BOUND)
        took = time.monotonic() - killed_at
        print(f"kill -9 to friends' OFFLINE: {took:.2f} s")
        assert took <= CRASH_NOTICE_BOUND, f"friends were told of the crash after {took:.1f} s"
