"""`manage.py presence summary|user|disconnect`, run as processes of their own against
running services with real clients connected, on a Redis of the test's own (so that the
counts are exactly this test's)."""

import asyncio
import json
import secrets
import time
from collections.abc import Iterator

import pytest

from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    OwnRedis,
    Service,
    befriend,
    closed_with,
    connect,
    eventually,
    manage,
    outcome,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

CLOSE_BY_OPERATOR = 4000


@pytest.fixture
def services(tmp_path, own_redis: OwnRedis) -> Iterator[tuple[Service, Service]]:
    """Two processes on the test's own Redis, named so that the summary can be read."""
    started = []
    try:
        for name in ("ops-a", "ops-b"):
            env = {
                "REDIS_URL": own_redis.url,
                "PRESENCE_HEARTBEAT_SECONDS": "1",
                "PRESENCE_PROCESS_NAME": f"{name}-{secrets.token_hex(3)}",
            }
            started.append(start_service(tmp_path, env))
        yield started[0], started[1]
    finally:
        for running in started:
            stop_service(running)


def presence(own_redis: OwnRedis, *args: str) -> tuple[int, str, str]:
    result = manage("presence", *args, env={"REDIS_URL": own_redis.url})
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


async def presence_json(own_redis: OwnRedis, *args: str) -> dict:
    code, out, err = await asyncio.to_thread(presence, own_redis, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def process_named(summary: dict, prefix: str) -> dict:
    (found,) = [p for p in summary["processes"] if p["name"].startswith(prefix)]
    return found


async def test_summary_counts_users_and_shows_each_process(services, own_redis, make_user):
    a, b = services
    alice, bob, carol = make_user(), make_user(), make_user()
    await befriend(a.ws_url, alice, bob)
    async with (
        connect(a.ws_url, alice.token) as alice_a1,
        connect(a.ws_url, alice.token) as alice_a2,
        connect(b.ws_url, bob.token) as bob_b,
        connect(b.ws_url, carol.token) as carol_b,
    ):
        assert outcome(await alice_a1.set_status(ONLINE)) == ("status", "")
        assert outcome(await alice_a2.request_events()) == ("events", "")
        assert outcome(await bob_b.set_status(AWAY)) == ("status", "")
        assert outcome(await carol_b.set_status(OFFLINE)) == ("status", "")
        view = await bob_b.subscribe_presence()
        await view.presence_until(alice.address, ONLINE)
        expected_a = {"connections": 2, "presence_subscriptions": 0}
        expected_b = {"connections": 2, "presence_subscriptions": 1}

        async def summary_shows_them() -> bool:
            summary = await presence_json(own_redis, "summary")
            got_a, got_b = process_named(summary, "ops-a"), process_named(summary, "ops-b")
            assert (summary["online"], summary["away"]) == (1, 1), summary
            return all(
                got[key] == value
                for got, expected in ((got_a, expected_a), (got_b, expected_b))
                for key, value in expected.items()
            )

        await eventually(summary_shows_them)
        summary = await presence_json(own_redis, "summary")
        assert len(summary["processes"]) == 2
        for process in summary["processes"]:
            assert process["alive"] is True
            assert 0 <= process["heartbeat_age_seconds"] < 3
            assert process["peak_presence_backlog"] >= 0

        code, out, err = await asyncio.to_thread(presence, own_redis, "summary")
        assert code == 0, err
        assert "users online: 1, away: 1" in out
        line_b = next(line for line in out.splitlines() if line.startswith("ops-b"))
        backlog = process_named(summary, "ops-b")["peak_presence_backlog"]
        assert line_b.split()[-3:] == ["2", "1", str(backlog)]


async def test_user_shows_status_last_seen_connections_and_online_friends(
    services, own_redis, make_user
):
    a, b = services
    alice, bob, carol = make_user(), make_user(), make_user()
    await befriend(a.ws_url, alice, bob, carol)
    async with (
        connect(a.ws_url, alice.token) as alice_a,
        connect(b.ws_url, alice.token) as alice_b,
        connect(b.ws_url, bob.token) as bob_b,
    ):
        before = int(time.time() * 1000)
        assert outcome(await alice_a.set_status(ONLINE)) == ("status", "")
        assert outcome(await alice_b.request_events()) == ("events", "")
        assert outcome(await bob_b.set_status(AWAY)) == ("status", "")

        shown = await presence_json(own_redis, "user", alice.address.upper().replace("0X", "0x"))
        assert shown["address"] == alice.address
        assert shown["status"] == "online"
        assert shown["appears_offline"] is False
        assert before - 1000 <= shown["last_seen_ms"] <= int(time.time() * 1000)
        processes = sorted(c.split("#")[0] for c in shown["connections"])
        assert [p.split("-")[1] for p in processes] == ["a", "b"], shown
        (friend,) = shown["online_friends"]
        assert (friend["address"], friend["status"]) == (bob.address, "away")
        assert friend["last_seen_ms"] >= before

        code, out, err = await asyncio.to_thread(presence, own_redis, "user", carol.address)
        assert code == 0, err
        assert "status: offline\n" in out
        assert "last seen: never" in out
        assert "open connections: 0" in out
        assert f"friends online: 1\n  {alice.address} online" in out

        # Appearing offline: friends see OFFLINE, operators see why.
        assert outcome(await alice_a.set_status(OFFLINE)) == ("status", "")
        code, out, err = await asyncio.to_thread(presence, own_redis, "user", alice.address)
        assert "status: offline (connected, appearing offline)" in out
        assert "open connections: 2" in out


async def test_disconnect_closes_the_users_sockets_everywhere_and_friends_see_offline(
    services, own_redis, make_user
):
    a, b = services
    alice, bob = make_user(), make_user()
    await befriend(a.ws_url, alice, bob)
    async with (
        connect(a.ws_url, alice.token) as alice_a,
        connect(b.ws_url, alice.token, query_token=True) as alice_b,
        connect(a.ws_url, bob.token) as bob_a,
    ):
        assert outcome(await alice_a.set_status(ONLINE)) == ("status", "")
        assert outcome(await alice_b.request_events()) == ("events", "")
        view = await bob_a.subscribe_presence()
        await view.presence_until(alice.address, ONLINE)

        reason = "server maintenance, back in 5 minutes"
        code, out, err = await asyncio.to_thread(
            presence, own_redis, "disconnect", alice.address, "--reason", reason
        )
        assert code == 0, err
        assert out.startswith(f"closing 2 open connection(s) of {alice.address}")
        for client in (alice_a, alice_b):
            assert await closed_with(client.ws) == CLOSE_BY_OPERATOR
            assert client.ws.close_reason == reason
        await view.presence_until(alice.address, OFFLINE)
        assert outcome(await bob_a.request_events()) == ("events", "")

    # Her tokens still work: she may come back at once.
    async with connect(b.ws_url, alice.token) as again, connect(a.ws_url, bob.token) as bob_again:
        assert outcome(await again.set_status(ONLINE)) == ("status", "")
        view = await bob_again.subscribe_presence()
        await view.presence_until(alice.address, ONLINE)


async def test_disconnect_without_a_reason_says_an_operator_did_it(services, own_redis, make_user):
    a, _ = services
    alice = make_user()
    async with connect(a.ws_url, alice.token) as client:
        assert outcome(await client.request_events()) == ("events", "")
        code, _, err = await asyncio.to_thread(presence, own_redis, "disconnect", alice.address)
        assert code == 0, err
        assert await closed_with(client.ws) == CLOSE_BY_OPERATOR
        assert client.ws.close_reason == "disconnected by an operator"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "0x123"], "0x followed by 40 hex digits"),
        (["disconnect", "0x" + "g" * 40], "0x followed by 40 hex digits"),
        (["user", "0x" + "ab" * 20], "there is no user 0x" + "ab" * 20),
        (["disconnect", "0x" + "ab" * 20, "--reason", "é" * 62], "at most 123 bytes"),
        ([], "the following arguments are required"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_input_fails_clearly(own_redis, args, message):
    code, out, err = presence(own_redis, *args)
    assert code != 0
    assert message in err
    assert out == ""


def test_redis_down_fails_clearly(own_redis, transactional_db):
    own_redis.stop()
    code, out, err = presence(own_redis, "summary")
    assert code != 0
    assert out == ""
    assert "Redis does not answer" in err
    assert own_redis.password not in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "summary"),
        (["summary"], "heartbeat age"),
        (["user"], "which of their friends are online"),
        (["disconnect"], "close code 4000"),
    ],
)
def test_each_command_has_help(own_redis, args, says):
    code, out, err = presence(own_redis, *args, "--help")
    assert code == 0, err
    assert says in " ".join(out.split())
    assert out.startswith(f"usage: manage.py presence {' '.join(args)}".rstrip())


def test_disconnect_of_a_user_not_connected_closes_nothing(own_redis, make_user):
    alice = make_user()
    code, out, err = presence(own_redis, "disconnect", alice.address)
    assert code == 0, err
    assert out.startswith(f"closing 0 open connection(s) of {alice.address}")
