"""Access tokens and who may connect: tokens kept as hashes, expiry, revocation closing open
connections (command and admin), the Origin check, and the staff-only endpoints."""

import asyncio
import contextlib
import hashlib
import os
from contextlib import AsyncExitStack

import pytest
import websockets
from django.db import connection
from django.test import Client

from accounts.models import AccessToken
from accounts.models import User as UserModel
from presence.rpc import wire
from presence.rpc.client import RpcClient
from tests.support import (
    FriendsClient,
    closed_with,
    connect,
    http_get,
    manage,
    outcome,
    service_with,
)

pytestmark = pytest.mark.django_db(transaction=True)

CLOSE_UNAUTHORIZED = 4001
CLOSE_ORIGIN_NOT_ALLOWED = 4003
# Long enough for the token to be used once before it expires, on a loaded machine too.
TOKEN_LIFETIME = 3
USERS = "/admin/accounts/user/"


async def refused_on_connect(url: str, **options: object) -> int | None:
    """The close code of a connection the server ends before saying anything."""
    async with websockets.connect(url, **options) as ws:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            data = await asyncio.wait_for(ws.recv(), 5)
            raise AssertionError(f"the server answered {data!r}")
    assert closed.value.rcvd is not None, "no close frame"
    return closed.value.rcvd.code


# --- Tokens are stored as hashes -------------------------------------------------------------


def test_only_a_hash_of_the_token_is_stored(make_user):
    alice = make_user()
    row = AccessToken.objects.get(user_id=alice.address)
    assert row.key_hash == hashlib.sha256(alice.token.encode()).hexdigest()
    for field in AccessToken._meta.concrete_fields:
        assert alice.token not in str(getattr(row, field.attname)), field.name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AccessToken._meta.db_table}")
        stored = cursor.fetchall()
    assert stored
    assert all(alice.token not in str(value) for line in stored for value in line)


# --- Expiry ----------------------------------------------------------------------------------


short_tokens_service = service_with({"PRESENCE_TOKEN_LIFETIME_SECONDS": str(TOKEN_LIFETIME)})


async def short_lived_token() -> str:
    """A token issued by a process whose tokens live TOKEN_LIFETIME seconds."""
    address = "0x" + os.urandom(20).hex()
    issued = await asyncio.to_thread(
        manage, "issuetoken", address, env={"PRESENCE_TOKEN_LIFETIME_SECONDS": str(TOKEN_LIFETIME)}
    )
    assert issued.returncode == 0, issued.stderr
    row = AccessToken.objects.get(user_id=address)
    lifetime = (row.expires_at - row.created_at).total_seconds()
    assert abs(lifetime - TOKEN_LIFETIME) < 0.5, lifetime
    return issued.stdout.strip()


async def test_a_token_expires_after_its_lifetime(short_tokens_service, transactional_db):
    token = await short_lived_token()
    url = short_tokens_service.ws_url
    async with connect(url, token) as client:
        assert outcome(await client.request_events()) == ("events", "")
    await asyncio.sleep(TOKEN_LIFETIME + 0.2)
    async with connect(url, token) as client:
        kind, message = outcome(await client.request_events())
        assert kind == "unauthorized_error"
        assert "expired" in message
    code = await refused_on_connect(f"{url}?access_token={token}")
    assert code == CLOSE_UNAUTHORIZED


async def test_an_expired_token_is_refused_on_the_connection_it_bound(
    short_tokens_service, transactional_db
):
    token = await short_lived_token()
    async with connect(short_tokens_service.ws_url, token) as client:
        assert outcome(await client.request_events()) == ("events", "")
        await asyncio.sleep(TOKEN_LIFETIME + 0.2)
        assert outcome(await client.request_events())[0] == "unauthorized_error"


# --- Revocation closes open connections ----------------------------------------------------


async def open_connections(url: str, alice, bob, stack) -> tuple:
    """alice bound by a payload token and by the URL, bob beside her; all of them in use."""
    by_payload = await stack.enter_async_context(connect(url, alice.token))
    by_url = await stack.enter_async_context(connect(url, alice.token, query_token=True))
    other = await stack.enter_async_context(connect(url, bob.token))
    for client in (by_payload, by_url, other):
        assert outcome(await client.request_events()) == ("events", "")
    return by_payload, by_url, other


async def assert_revoked(url: str, alice, closed: list, other) -> None:
    """alice's connections close with 4001, bob's goes on, alice's token is refused."""
    for client in closed:
        assert await closed_with(client.ws, within=5) == CLOSE_UNAUTHORIZED
    assert other.ws.close_code is None
    assert outcome(await other.request_events()) == ("events", "")
    async with connect(url, alice.token) as again:
        assert outcome(await again.request_events())[0] == "unauthorized_error"
    assert await refused_on_connect(f"{url}?access_token={alice.token}") == CLOSE_UNAUTHORIZED


async def test_revoketokens_closes_the_users_connections(service, make_user):
    alice, bob = make_user(), make_user()
    async with AsyncExitStack() as stack:
        by_payload, by_url, other = await open_connections(service.ws_url, alice, bob, stack)
        result = await asyncio.to_thread(manage, "revoketokens", alice.address)
        assert result.returncode == 0, result.stderr
        assert "revoked 1 token(s)" in result.stdout
        await assert_revoked(service.ws_url, alice, [by_payload, by_url], other)


async def test_frames_crossing_a_revocation_are_dropped_quietly(service, make_user):
    """alice keeps sending while her access is revoked: she gets 4001, nothing fails."""
    alice = make_user()
    mark = service.log_mark()
    async with connect(service.ws_url, alice.token, query_token=True) as client:
        assert outcome(await client.request_events()) == ("events", "")

        async def keep_sending() -> None:
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                for sent, number in enumerate(range(1000, 1_000_000), start=1):
                    await client.ws.send(wire.create_port(number, "busy"))
                    # At most 100 answers ahead of what the client read: the server's close
                    # frame waits behind its answers, and one that cannot reach the client
                    # within the close handshake's timeout is dropped with them (1006).
                    while sent - client.rpc.unsolicited.qsize() > 100:
                        if client.rpc.closed_by is not None:
                            return
                        await asyncio.sleep(0.001)

        sender = asyncio.create_task(keep_sending())
        result = await asyncio.to_thread(manage, "revoketokens", alice.address)
        assert result.returncode == 0, result.stderr
        assert await closed_with(client.ws, within=5) == CLOSE_UNAUTHORIZED
        await sender
    await asyncio.sleep(0.5)
    assert "Traceback" not in service.logged_since(mark), service.log_tail(40)


@pytest.mark.parametrize("address", ["0x123", "0x" + "g" * 40])
def test_revoketokens_with_a_bad_address_fails_clearly(transactional_db, address):
    result = manage("revoketokens", address)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "CommandError" in result.stderr
    assert "0x followed by 40 hex digits" in result.stderr
    assert result.stdout == ""


def admin_client(staff: bool) -> Client:
    user = UserModel.objects.create_user("0x" + os.urandom(20).hex(), is_staff=staff)
    if staff:
        user.is_superuser = True
        user.save()
    client = Client()
    client.force_login(user)
    return client


def revoke_action(users: list) -> dict:
    return {
        "action": "revoke_all_tokens",
        "_selected_action": [user.address for user in users],
        "index": 0,
    }


async def test_the_admin_action_revokes_tokens_and_closes_connections(service, make_user):
    alice, bob = make_user(), make_user()
    admin = admin_client(staff=True)
    async with AsyncExitStack() as stack:
        by_payload, by_url, other = await open_connections(service.ws_url, alice, bob, stack)
        response = await asyncio.to_thread(admin.post, USERS, revoke_action([alice]), follow=True)
        assert response.status_code == 200
        assert "Revoked 1 token(s) of 1 user(s)." in response.content.decode()
        await assert_revoked(service.ws_url, alice, [by_payload, by_url], other)


def test_the_admin_refuses_non_staff(make_user):
    alice = make_user()
    outsider = admin_client(staff=False)
    for path in ("/admin/", USERS, f"{USERS}{alice.address}/change/"):
        response = outsider.get(path)
        assert response.status_code == 302, (path, response.status_code)
        assert response["Location"].startswith("/admin/login/")
    response = outsider.post(USERS, revoke_action([alice]))
    assert response.status_code == 302
    assert not AccessToken.objects.filter(user_id=alice.address, revoked_at__isnull=False).exists()
    bearer = Client(HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    assert bearer.get("/admin/").status_code == 302
    assert admin_client(staff=True).get(USERS).status_code == 200


# --- Origin ----------------------------------------------------------------------------------


strict_origin_service = service_with(
    {"PRESENCE_ALLOWED_ORIGINS": "https://a.example", "PRESENCE_ALLOW_MISSING_ORIGIN": "false"}
)


@pytest.mark.parametrize("origin", ["https://play.decentraland.org", None])
async def test_default_settings_accept_decentraland_and_no_origin(service, make_user, origin):
    alice = make_user()
    headers = {} if origin is None else {"Origin": origin}
    async with websockets.connect(service.ws_url, additional_headers=headers) as ws:
        rpc = RpcClient(ws)
        client = await FriendsClient(ws, rpc, alice.token).load()
        assert outcome(await client.request_events()) == ("events", "")
        await rpc.close()


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://decentraland.org.evil.example"]
)
async def test_default_settings_refuse_other_origins(service, origin):
    assert await refused_on_connect(service.ws_url, origin=origin) == CLOSE_ORIGIN_NOT_ALLOWED


async def test_configured_origins_and_no_missing_origin(strict_origin_service):
    url = strict_origin_service.ws_url
    assert await refused_on_connect(url) == CLOSE_ORIGIN_NOT_ALLOWED
    for origin in ("https://b.example", "https://play.decentraland.org"):
        assert await refused_on_connect(url, origin=origin) == CLOSE_ORIGIN_NOT_ALLOWED
    async with websockets.connect(url, origin="https://a.example") as ws:
        assert await asyncio.wait_for(ws.recv(), 5) == wire.server_ready()


# --- Staff-only endpoints --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/presence/online/", "/api/v1/presence/process/"])
def test_staff_endpoints_refuse_everyone_else(service, make_user, path):
    user, staff = make_user(), make_user(staff=True)
    status, body = http_get(service, path)
    assert status == 401, body
    assert "detail" in body
    status, body = http_get(service, path, user.token)
    assert status == 403, body
    assert "detail" in body
    status, body = http_get(service, path, staff.token)
    assert status == 200, body
