"""The REST API, in process, over the same database and Redis as the WebSocket service: what
users do over the WebSocket shows in the API."""

import asyncio
import re
from collections.abc import Iterator
from contextlib import AsyncExitStack

import pytest
from asgiref.sync import sync_to_async
from django.urls import URLResolver, get_resolver
from rest_framework.test import APIClient

from accounts.services import revoke_tokens
from tests.support import AWAY, ONLINE, FriendsClient, befriend, connect, new_address, now_ms

pytestmark = pytest.mark.django_db(transaction=True)

ONLINE_FRIENDS = "/api/v1/friends/online/"
FRIENDS = "/api/v1/friends/"
ONLINE_USERS = "/api/v1/presence/online/"


def api(token: str | None = None) -> APIClient:
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def get(client: APIClient, path: str, **params: object) -> object:
    return client.get(path, params)


async def aget(client: APIClient, path: str, **params: object) -> object:
    """A request from an async test: the view runs in a worker thread, as under ASGI."""
    return await sync_to_async(get)(client, path, **params)


def assert_json(response: object, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    return response.json()


async def go_online(stack: AsyncExitStack, url: str, user: object, status: int) -> FriendsClient:
    client = await stack.enter_async_context(connect(url, user.token))
    assert (await client.set_status(status)).status.type == status
    return client


async def wait_for_results(client: APIClient, path: str, expected: list[str]) -> dict:
    """The endpoint's addresses once they equal `expected` (disconnects settle asynchronously)."""
    body: dict = {}
    for _ in range(100):
        body = assert_json(await aget(client, path), 200)
        if [row["address"] for row in body["results"]] == expected:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never listed {expected}: {body}")


# --- /api/v1/friends/online/ -----------------------------------------------------------------


async def test_online_friends_lists_online_and_away_friends_with_status_and_last_seen(
    service, make_user
):
    me, online, away, offline, connected_silent, stranger = (make_user() for _ in range(6))
    await befriend(service.ws_url, me, online, away, offline, connected_silent)
    async with AsyncExitStack() as stack:
        before = now_ms()
        await go_online(stack, service.ws_url, online, ONLINE)
        await go_online(stack, service.ws_url, away, AWAY)
        await go_online(stack, service.ws_url, stranger, ONLINE)
        # Connected without choosing a status: not visible.
        await stack.enter_async_context(connect(service.ws_url, connected_silent.token))
        after = now_ms()

        body = assert_json(await aget(api(me.token), ONLINE_FRIENDS), 200)

    assert body["count"] == 2
    assert body["next"] is None
    assert body["previous"] is None
    expected = sorted([(online.address, "online"), (away.address, "away")])
    assert [(row["address"], row["status"]) for row in body["results"]] == expected
    for row in body["results"]:
        assert set(row) == {"address", "status", "last_seen", "message", "devices", "location"}
        assert row["devices"] == ["desktop"]
        assert row["location"] is None  # shared by neither (tests/test_location.py)
        assert isinstance(row["last_seen"], int)
        assert before - 1000 <= row["last_seen"] <= after + 1000, (before, row, after)


async def test_online_friends_follow_status_changes_and_disconnects(service, make_user):
    me, friend = make_user(), make_user()
    await befriend(service.ws_url, me, friend)
    client = api(me.token)
    async with connect(service.ws_url, friend.token) as connection:
        await connection.set_status(AWAY)
        body = assert_json(await aget(client, ONLINE_FRIENDS), 200)
        assert [(r["address"], r["status"]) for r in body["results"]] == [(friend.address, "away")]
        await connection.set_status(ONLINE)
        body = assert_json(await aget(client, ONLINE_FRIENDS), 200)
        assert [r["status"] for r in body["results"]] == ["online"]
    # The last connection closed: the friend is offline, so no longer listed.
    body = await wait_for_results(client, ONLINE_FRIENDS, [])
    assert body["count"] == 0


async def test_online_friends_are_paginated_with_limit_and_offset(service, make_user):
    me = make_user()
    friends = [make_user() for _ in range(3)]
    await befriend(service.ws_url, me, *friends)
    expected = sorted(friend.address for friend in friends)
    client = api(me.token)
    async with AsyncExitStack() as stack:
        for friend in friends:
            await go_online(stack, service.ws_url, friend, ONLINE)

        first = assert_json(await aget(client, ONLINE_FRIENDS, limit=2), 200)
        assert first["count"] == 3
        assert [row["address"] for row in first["results"]] == expected[:2]
        assert first["previous"] is None
        assert "offset=2" in first["next"]
        assert "limit=2" in first["next"]

        second = assert_json(await aget(client, first["next"]), 200)
        assert second["count"] == 3
        assert [row["address"] for row in second["results"]] == expected[2:]
        assert second["next"] is None
        assert second["previous"] is not None

        middle = assert_json(await aget(client, ONLINE_FRIENDS, limit=1, offset=1), 200)
        assert [row["address"] for row in middle["results"]] == expected[1:2]


async def test_online_friends_is_empty_without_friends(service, make_user):
    me = make_user()
    body = assert_json(await aget(api(me.token), ONLINE_FRIENDS), 200)
    assert body == {"count": 0, "next": None, "previous": None, "results": []}


# --- /api/v1/friends/ ------------------------------------------------------------------------


def addresses_of(body: dict) -> list[str]:
    return [row["address"] for row in body["results"]]


async def test_friends_lists_every_friend_online_or_not(service, make_user):
    me, online, offline, requested, stranger = (make_user() for _ in range(5))
    await befriend(service.ws_url, me, online, offline)
    async with connect(service.ws_url, me.token) as connection:
        await connection.update("request", requested.address)
    client = api(me.token)
    everyone = sorted([online.address, offline.address])

    async with AsyncExitStack() as stack:
        await go_online(stack, service.ws_url, online, ONLINE)
        body = assert_json(await aget(client, FRIENDS), 200)

    assert body["count"] == 2
    assert addresses_of(body) == everyone
    statuses = {row["address"]: row["status"] for row in body["results"]}
    assert statuses == {online.address: "online", offline.address: "offline"}
    assert stranger.address not in str(body)
    assert requested.address not in str(body)

    page = assert_json(await aget(client, FRIENDS, limit=1, offset=1), 200)
    assert page["count"] == 2
    assert addresses_of(page) == everyone[1:]
    assert page["next"] is None
    assert page["previous"] is not None

    # Friendship is mutual: the friend sees me too.
    theirs = assert_json(await aget(api(offline.token), FRIENDS), 200)
    assert addresses_of(theirs) == [me.address]


# --- /api/v1/presence/online/ (staff) ----------------------------------------------------------


async def test_online_users_lists_visible_users_for_staff(service, make_user):
    staff, online, away, silent = make_user(staff=True), make_user(), make_user(), make_user()
    client = api(staff.token)
    async with AsyncExitStack() as stack:
        await go_online(stack, service.ws_url, online, ONLINE)
        await go_online(stack, service.ws_url, away, AWAY)
        await stack.enter_async_context(connect(service.ws_url, silent.token))

        body = assert_json(await aget(client, ONLINE_USERS, limit=1000), 200)
        statuses = {row["address"]: row["status"] for row in body["results"]}
        assert statuses[online.address] == "online"
        assert statuses[away.address] == "away"
        assert silent.address not in statuses
        assert body["count"] == len(body["results"])
        assert all(isinstance(row["last_seen"], int) for row in body["results"])

        page = assert_json(await aget(client, ONLINE_USERS, limit=1), 200)
        assert len(page["results"]) == 1
        assert page["count"] == body["count"]
        assert "offset=1" in page["next"]
        rest = assert_json(await aget(client, page["next"]), 200)
        assert rest["results"][0]["address"] == body["results"][1]["address"]


def test_online_users_is_forbidden_to_non_staff(make_user):
    user = make_user()
    body = assert_json(get(api(user.token), ONLINE_USERS), 403)
    assert body["detail"]


def test_online_users_needs_credentials():
    response = get(api(), ONLINE_USERS)
    body = assert_json(response, 401)
    assert body["detail"]
    assert response["WWW-Authenticate"] == "Bearer"


# --- Authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ONLINE_FRIENDS, FRIENDS, ONLINE_USERS])
def test_no_credentials_is_401_json(path):
    response = get(api(), path)
    assert assert_json(response, 401)["detail"]
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("path", [ONLINE_FRIENDS, FRIENDS, ONLINE_USERS])
def test_bad_token_is_401_json(path):
    response = get(api("not-a-token"), path)
    body = assert_json(response, 401)
    assert "token" in body["detail"].lower()


def test_malformed_authorization_header_is_401_json():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert assert_json(client.get(FRIENDS), 401)["detail"]


def test_revoked_token_is_401_json(make_user):
    user = make_user()
    assert get(api(user.token), FRIENDS).status_code == 200
    revoke_tokens(user.address)
    assert_json(get(api(user.token), FRIENDS), 401)


def api_routes_in_urlconf() -> set[str]:
    """Every URL under /api/v1/ the URLconf routes, its parameters written as OpenAPI does."""

    def routes(patterns: list, prefix: str) -> Iterator[str]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    return {
        "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        for route in routes(get_resolver().url_patterns, "")
        if route.startswith("api/v1/")
    }


def test_staff_token_reaches_every_endpoint(make_user):
    """Every operation of the contract that takes a bearer token answers a staff user's token
    with its documented success, so a new endpoint is covered without being named here."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    # The contract lists every API URL the service routes: none escapes the loop below.
    assert set(schema["paths"]) == api_routes_in_urlconf()
    operations = [
        (method, path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    # The one operation that takes no token is the one that issues them.
    tokenless = [(m, p) for m, p, op in operations if {"bearerToken": []} not in op["security"]]
    assert tokenless == [("post", "/api/v1/auth/token")]
    client = api(make_user(staff=True).token)
    target = new_address()
    # Deletions last: the block a PUT makes is the one a DELETE lifts.
    for method, path, operation in sorted(operations, key=lambda o: o[0] == "delete"):
        if (method, path) in tokenless:
            continue
        (success,) = [int(code) for code in operation["responses"] if code.startswith("2")]
        response = getattr(client, method)(path.replace("{address}", target))
        if success == 204:
            assert response.status_code == 204, (method, path, response.content)
        else:
            assert_json(response, success)


# --- Errors are JSON --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing/", "/api/v2/friends/", "/api/", "/api/v1/friends/online/extra/"]
)
def test_unknown_api_url_is_404_json(make_user, path):
    user = make_user()
    body = assert_json(get(api(user.token), path), 404)
    assert body == {"detail": "Not found."}


def test_unsupported_method_is_405_json(make_user):
    user = make_user()
    body = assert_json(api(user.token).post(FRIENDS, {}), 405)
    assert "POST" in body["detail"]
