"""A refused request changes nothing: no row in the database, no key or value in Redis (the
cache and the rate-limit counters included), through every way of writing: REST, both RPC
modules, the admin and the management commands. Each test snapshots the whole database and
the whole Redis server, makes a refused request, and compares."""

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import Client

from accounts.models import User as UserModel
from tests.signing import new_identity
from tests.support import (
    connect,
    connect_signed,
    database_rows,
    heartbeat_sessions_ended,
    http_raw,
    manage,
    new_address,
    outcome,
    pending,
    redis_contents,
    within_one_window,
)

pytestmark = pytest.mark.django_db(transaction=True)

NOT_WRITTEN_BY_REQUESTS = (
    # DRF's request-rate history: every request counts against it, refused or not, as traffic.
    ":throttle_",
    # Each service process's own liveness, renewed by its timers.
    "presence:heartbeat:",
    "presence:processes",
    "presence:epoch",
    # Users' presence history on its way to the database, which each process's history task
    # reads every second; the connection a test opens before the refused request is
    # recorded there, and stored meanwhile (ROWS_WRITTEN_LATER).
    "presence:history",
)
ROWS_WRITTEN_LATER = ("presence.HistoryEntry",)
ACTIONS_PER_PAIR = 10


@contextmanager
def changes_nothing() -> Iterator[None]:
    heartbeat_sessions_ended()
    before = database_rows(ROWS_WRITTEN_LATER), redis_contents(NOT_WRITTEN_BY_REQUESTS)
    yield
    after = database_rows(ROWS_WRITTEN_LATER), redis_contents(NOT_WRITTEN_BY_REQUESTS)
    assert after[0] == before[0], "the database changed"
    written = {k for k, (value, _) in after[1].items() if before[1].get(k, (None,))[0] != value}
    # Keys with a TTL (earlier tests' counters, used signatures) may expire meanwhile.
    removed = {k for k, (_, expires) in before[1].items() if k not in after[1] and not expires}
    changes = {k: (before[1].get(k), after[1].get(k)) for k in written | removed}
    assert (written, removed) == (set(), set()), f"Redis changed: {changes}"


def http(
    service, method: str, path: str, token: str | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    """A request to the real service, over HTTP: (status, JSON body)."""
    status, _, body = http_raw(method, service.http_url + path, token, headers)
    return status, json.loads(body) if body else {}


# --- REST -----------------------------------------------------------------------------------


def test_unblocking_a_user_not_blocked_creates_no_user(service, make_user):
    alice = make_user()
    stranger = new_address()
    with changes_nothing():
        status, body = http(service, "DELETE", f"/api/v1/blocks/{stranger}/", alice.token)
    assert (status, body) == (400, {"detail": "this user is not blocked"})
    assert not UserModel.objects.filter(address=stranger).exists()


def test_a_disabled_users_sign_in_changes_nothing(service):
    identity = new_identity()
    UserModel.objects.create(address=identity.address, is_active=False)
    headers = identity.headers("post", "/api/v1/auth/token")
    with changes_nothing():
        status, body = http(service, "POST", "/api/v1/auth/token", headers=headers)
    assert status == 401, body
    assert "this user is disabled" in body["detail"]


@pytest.mark.parametrize(
    ("method", "target", "detail"),
    [
        ("PUT", "self", "a user cannot block themselves"),
        ("DELETE", "self", "a user cannot unblock themselves"),
        ("PUT", "blocked", "this user is already blocked"),
        ("PUT", "0x1234", "0x followed by 40 hex digits"),
        ("DELETE", "not-an-address", "0x followed by 40 hex digits"),
    ],
)
def test_refused_rest_block_changes_nothing(service, make_user, method, target, detail):
    alice, bob = make_user(), make_user()
    assert http(service, "PUT", f"/api/v1/blocks/{bob.address}/", alice.token)[0] == 201
    address = {"self": alice.address, "blocked": bob.address}.get(target, target)
    with changes_nothing():
        status, body = http(service, method, f"/api/v1/blocks/{address}/", alice.token)
    assert status == 400, body
    assert detail in body["detail"]


async def test_requests_refused_by_a_rule_spend_no_limit(service, make_user):
    alice = make_user()
    stranger = new_address()
    await within_one_window(10)
    for _ in range(ACTIONS_PER_PAIR + 1):
        status, _ = await asyncio.to_thread(
            http, service, "DELETE", f"/api/v1/blocks/{stranger}/", alice.token
        )
        assert status == 400
    status, body = await asyncio.to_thread(
        http, service, "PUT", f"/api/v1/blocks/{stranger}/", alice.token
    )
    assert status == 201, body


async def test_a_request_over_the_limit_changes_nothing(service, make_user):
    alice, bob = make_user(), make_user()
    path = f"/api/v1/blocks/{bob.address}/"
    await within_one_window(10)
    for _ in range(ACTIONS_PER_PAIR // 2):
        assert (await asyncio.to_thread(http, service, "PUT", path, alice.token))[0] == 201
        assert (await asyncio.to_thread(http, service, "DELETE", path, alice.token))[0] == 204
    with changes_nothing():
        status, body = await asyncio.to_thread(http, service, "PUT", path, alice.token)
    assert status == 429, body
    # Over the limit, a request breaking a rule is told about the rule.
    status, body = await asyncio.to_thread(http, service, "DELETE", path, alice.token)
    assert (status, body) == (400, {"detail": "this user is not blocked"})


# --- RPC: FriendshipsService ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target", "message", "error"),
    [
        ("unblock", "stranger", None, "this user is not blocked"),
        ("block", "self", None, "a user cannot block themselves"),
        ("unblock", "self", None, "a user cannot unblock themselves"),
        ("request", "self", None, "a user cannot send a friendship request to themselves"),
        ("accept", "self", None, "a user cannot accept a friendship request from themselves"),
        ("reject", "self", None, "a user cannot reject a friendship request from themselves"),
        ("cancel", "self", None, "a user cannot cancel a friendship request to themselves"),
        ("delete", "self", None, "a user cannot delete a friendship with themselves"),
        ("accept", "stranger", None, "accept is only possible while a request is pending"),
        ("delete", "stranger", None, "only an accepted friendship can be deleted"),
        ("request", "stranger", "x" * 1001, "the message is longer than 1000 characters"),
        ("request", "0x12", None, "0x followed by 40 hex digits"),
    ],
)
async def test_refused_friendship_event_changes_nothing(
    service, make_user, kind, target, message, error
):
    alice = make_user()
    address = {"self": alice.address, "stranger": new_address()}.get(target, target)
    async with connect(service.ws_url, alice.token) as a:
        await pending(a)  # the token binds the connection first: alice is online
        with changes_nothing():
            response = await a.update(kind, address, message)
        assert outcome(response)[0] == "bad_request_error", response
        assert error in outcome(response)[1]


async def test_friendship_event_over_the_limit_changes_nothing(service, make_user):
    alice, bob = make_user(), make_user()
    await within_one_window(10)
    async with connect(service.ws_url, alice.token) as a:
        for _ in range(ACTIONS_PER_PAIR // 2):
            assert outcome(await a.update("request", bob.address)) == ("event", "")
            assert outcome(await a.update("cancel", bob.address)) == ("event", "")
        with changes_nothing():
            response = await a.update("request", bob.address)
        assert outcome(response)[0] == "too_many_requests_error", response


# --- RPC: SocialService v2 --------------------------------------------------------------------


async def test_refused_social_service_actions_change_nothing(service):
    identity = new_identity()
    me, stranger = identity.address, new_address()
    async with connect_signed(service.ws_url, identity) as client:
        await client.blocking_status()  # signed in: the user exists and is online
        with changes_nothing():
            unblocked = await client.unblock(stranger)
            blocked = await client.block(me)
            requested = await client.upsert("request", me)
            accepted = await client.upsert("accept", stranger)
            invalid = await client.upsert("request", "0x12")
    assert unblocked.WhichOneof("response") == "invalid_request", unblocked
    assert unblocked.invalid_request.message == "this user is not blocked"
    assert blocked.invalid_request.message == "a user cannot block themselves"
    assert requested.invalid_friendship_action.message == (
        "a user cannot send a friendship request to themselves"
    )
    assert accepted.invalid_friendship_action.message == (
        "accept is only possible while a request is pending"
    )
    assert invalid.WhichOneof("response") == "invalid_request", invalid


# --- Admin and management commands ------------------------------------------------------------


def test_refused_admin_blocks_change_nothing(make_user):
    admin = Client()
    admin.force_login(UserModel.objects.create_superuser(new_address()))
    alice, bob = make_user(), make_user()
    add = "/admin/friendships/block/add/"
    assert admin.post(add, {"blocker": alice.address, "blocked": bob.address}).status_code == 302
    for blocker, blocked in ((alice, bob), (alice, alice)):
        with changes_nothing():
            response = admin.post(add, {"blocker": blocker.address, "blocked": blocked.address})
        assert response.status_code == 200  # the form again, with its error
        assert response.context["adminform"].form.errors


@pytest.mark.parametrize(
    ("command", "address", "error"),
    [
        ("issuetoken", "0x12", "0x followed by 40 hex digits"),
        ("revoketokens", "not-an-address", "0x followed by 40 hex digits"),
        ("revoketokens", "stranger", "no user has the address"),
    ],
)
def test_refused_management_commands_change_nothing(make_user, command, address, error):
    make_user()
    address = new_address() if address == "stranger" else address
    with changes_nothing():
        result = manage(command, address)
    assert result.returncode == 1, result
    assert error in result.stderr
    assert result.stdout == ""
