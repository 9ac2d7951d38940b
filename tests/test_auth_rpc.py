"""Who a connection is: tokens in payloads and in the URL, binding, revocation, issuetoken."""

import asyncio
import io
import re
from datetime import timedelta

import pytest
import websockets
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import AccessToken
from accounts.models import User as UserModel
from accounts.services import issue_token, revoke_tokens, user_for_token
from presence.protocol import friendships_service_pb2 as pb
from tests.support import (
    OFFLINE,
    ONLINE,
    FriendsClient,
    addresses,
    befriend,
    connect,
    outcome,
    pending,
)

pytestmark = pytest.mark.django_db(transaction=True)

UNAUTHORIZED_CLOSE_CODE = 4001
SOMEONE = "0x" + "ab" * 20


def payload(token: str | None) -> pb.Payload:
    return pb.Payload() if token is None else pb.Payload(synapse_token=token)


async def first_response(client: FriendsClient, procedure: str, token: str | None) -> object:
    """The answer of `procedure` called with `token`: a unary response or a stream's first item."""
    if procedure == "GetFriends":
        return (await client.friends(token))[0]
    if procedure == "GetOnlineFriends":
        return (await client.online_friends(token))[0]
    if procedure == "GetMutualFriends":
        request = pb.MutualFriendsPayload(user=pb.User(address=SOMEONE), auth_token=payload(token))
        return (await client.collect(procedure, request, pb.UsersResponse))[0]
    if procedure == "GetRequestEvents":
        return await client.call(procedure, payload(token), pb.RequestEventsResponse)
    if procedure == "UpdateFriendshipEvent":
        return await client.update("request", SOMEONE, token=token)
    if procedure == "SetPresenceStatus":
        return await client.set_status(ONLINE, token=token)
    if procedure == "SubscribeFriendshipPresenceUpdates":
        response_type = pb.SubscribeFriendshipPresenceUpdatesResponse
    else:
        response_type = pb.SubscribeFriendshipEventsUpdatesResponse
    items = await client.collect(procedure, payload(token), response_type)
    assert len(items) == 1, items  # an error ends a subscription
    return items[0]


PROCEDURES = [
    "GetFriends",
    "GetMutualFriends",
    "GetRequestEvents",
    "UpdateFriendshipEvent",
    "SubscribeFriendshipEventsUpdates",
    "SetPresenceStatus",
    "GetOnlineFriends",
    "SubscribeFriendshipPresenceUpdates",
]


@pytest.mark.parametrize("procedure", PROCEDURES)
async def test_no_token_is_unauthorized(service, procedure):
    async with connect(service.ws_url) as client:
        kind, message = outcome(await first_response(client, procedure, None))
    assert kind == "unauthorized_error"
    assert "token" in message


@pytest.mark.parametrize("procedure", PROCEDURES)
async def test_bad_token_is_unauthorized(service, procedure):
    async with connect(service.ws_url) as client:
        kind, message = outcome(await first_response(client, procedure, "not-a-token"))
    assert kind == "unauthorized_error"
    assert "token" in message


async def test_unauthorized_calls_change_nothing(service, make_user):
    alice = make_user()
    async with connect(service.ws_url) as anonymous, connect(service.ws_url, alice.token) as a:
        for token in (None, "not-a-token"):
            response = await anonymous.update("request", alice.address, token=token)
            assert outcome(response)[0] == "unauthorized_error"
        assert await pending(a) == ([], [])


async def test_other_users_token_on_a_bound_connection_is_forbidden(service, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    await befriend(service.ws_url, alice, carol)
    async with connect(service.ws_url) as client, connect(service.ws_url, bob.token) as b:
        # The first valid token binds the connection to alice.
        assert addresses(await client.friends(alice.token)) == [carol.address]

        for procedure in PROCEDURES:
            kind, message = outcome(await first_response(client, procedure, bob.token))
            assert kind == "forbidden_error", procedure
            assert "another user" in message
        response = await client.update("request", carol.address, token=bob.token)
        assert outcome(response)[0] == "forbidden_error"

        # Nothing was done as bob, and the connection still belongs to alice.
        assert await pending(b) == ([], [])
        assert addresses(await b.friends()) == []
        assert addresses(await client.friends(alice.token)) == [carol.address]
        assert addresses(await client.friends()) == [carol.address]


async def test_payloads_without_a_token_work_on_a_bound_connection(service, make_user):
    alice, bob = make_user(), make_user()
    async with connect(service.ws_url) as client, connect(service.ws_url, bob.token) as b:
        response = await client.call(
            "GetRequestEvents", payload(alice.token), pb.RequestEventsResponse
        )
        assert outcome(response) == ("events", "")

        assert outcome(await client.update("request", bob.address)) == ("event", "")
        assert await pending(b) == ([], [(alice.address, None)])
        assert outcome(await b.update("accept", alice.address)) == ("event", "")
        assert addresses(await client.friends()) == [bob.address]
        assert (await client.set_status(ONLINE)).status.type == ONLINE
        assert addresses(await b.online_friends()) == [alice.address]


async def test_another_token_of_the_same_user_is_accepted(service, make_user):
    alice = make_user()
    second = issue_token(alice.address)
    async with connect(service.ws_url, alice.token) as client:
        assert outcome(await client.request_events()) == ("events", "")
        response = await client.call("GetRequestEvents", payload(second), pb.RequestEventsResponse)
        assert outcome(response) == ("events", "")


async def test_invalid_token_on_a_bound_connection_is_unauthorized(service, make_user):
    alice = make_user()
    async with connect(service.ws_url, alice.token) as client:
        assert outcome(await client.request_events()) == ("events", "")
        response = await client.call(
            "GetRequestEvents", payload("forged"), pb.RequestEventsResponse
        )
        assert outcome(response)[0] == "unauthorized_error"


# --- ?access_token= ---------------------------------------------------------------------


async def test_query_token_binds_the_connection(service, make_user):
    alice, bob = make_user(), make_user()
    async with (
        connect(service.ws_url, alice.token, query_token=True) as client,
        connect(service.ws_url, bob.token) as b,
    ):
        assert client.token is None  # every payload below goes without a token
        assert outcome(await client.update("request", bob.address)) == ("event", "")
        assert await pending(b) == ([], [(alice.address, None)])
        assert await pending(client) == ([(bob.address, None)], [])
        response = await client.call(
            "GetRequestEvents", payload(bob.token), pb.RequestEventsResponse
        )
        assert outcome(response)[0] == "forbidden_error"


async def test_query_token_makes_the_user_count_as_connected(service, make_user):
    alice, bob = make_user(), make_user()
    await befriend(service.ws_url, alice, bob)
    async with connect(service.ws_url, bob.token) as b:
        updates = await b.subscribe_presence()
        async with connect(service.ws_url, alice.token, query_token=True) as a:
            assert (await a.set_status(ONLINE)).status.type == ONLINE
            await updates.presence_until(alice.address, ONLINE)
            assert addresses(await b.online_friends()) == [alice.address]
        # Closing alice's only connection makes her offline.
        await updates.presence_until(alice.address, OFFLINE)
        assert addresses(await b.online_friends()) == []


async def closed_at_open(url: str) -> websockets.exceptions.ConnectionClosed:
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await ws.recv()
    return closed.value


@pytest.mark.parametrize("token", ["not-a-token", "x" * 43])
async def test_invalid_query_token_closes_with_4001(service, token):
    closed = await closed_at_open(f"{service.ws_url}?access_token={token}")
    assert closed.rcvd is not None
    assert closed.rcvd.code == UNAUTHORIZED_CLOSE_CODE


async def test_revoked_query_token_closes_with_4001(service, make_user):
    alice = make_user()
    revoke_tokens(alice.address)
    closed = await closed_at_open(f"{service.ws_url}?access_token={alice.token}")
    assert closed.rcvd is not None
    assert closed.rcvd.code == UNAUTHORIZED_CLOSE_CODE


async def test_valid_query_token_gets_server_ready(service, make_user):
    alice = make_user()
    async with connect(service.ws_url, alice.token, query_token=True) as client:
        assert outcome(await client.request_events()) == ("events", "")


# --- Tokens in the database -------------------------------------------------------------


async def test_revoked_tokens_are_refused_on_a_new_connection(service, make_user):
    alice = make_user()
    other_token = issue_token(alice.address)
    assert revoke_tokens(alice.address) == 2
    for token in (alice.token, other_token):
        async with connect(service.ws_url, token) as client:
            assert outcome(await client.request_events())[0] == "unauthorized_error"
            assert outcome(await client.update("request", SOMEONE))[0] == "unauthorized_error"
    fresh = issue_token(alice.address)
    async with connect(service.ws_url, fresh) as client:
        assert outcome(await client.request_events()) == ("events", "")


async def test_expired_token_is_refused(service, make_user):
    alice = make_user()
    AccessToken.objects.filter(user_id=alice.address).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    async with connect(service.ws_url, alice.token) as client:
        assert outcome(await client.request_events())[0] == "unauthorized_error"


async def test_a_token_that_expires_while_bound_is_refused_from_then_on(service, make_user):
    alice = make_user()
    AccessToken.objects.filter(user_id=alice.address).update(
        expires_at=timezone.now() + timedelta(seconds=1.5)
    )
    async with connect(service.ws_url, alice.token) as client:
        assert outcome(await client.request_events()) == ("events", "")
        await asyncio.sleep(2)
        assert outcome(await client.request_events())[0] == "unauthorized_error"


async def test_token_of_a_deactivated_user_is_refused(service, make_user):
    alice = make_user()
    UserModel.objects.filter(address=alice.address).update(is_active=False)
    async with connect(service.ws_url, alice.token) as client:
        assert outcome(await client.request_events())[0] == "unauthorized_error"


# --- issuetoken -------------------------------------------------------------------------


def test_issuetoken_prints_only_the_token(transactional_db):
    address = "0x" + "C0FFEE" * 6 + "abcd"
    out, err = io.StringIO(), io.StringIO()
    call_command("issuetoken", address, stdout=out, stderr=err)
    printed = out.getvalue()
    token = printed.strip()
    assert printed in (token, token + "\n")
    assert re.fullmatch(r"[A-Za-z0-9_-]{20,}", token)
    assert err.getvalue() == ""
    user = user_for_token(token)
    assert user is not None
    assert user.address == address.lower()


@pytest.mark.parametrize("address", ["0x123", "hello", "0x" + "z" * 40, ""])
def test_issuetoken_rejects_a_bad_address(transactional_db, address):
    out = io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("issuetoken", address, stdout=out)
    assert "Ethereum address" in str(error.value)
    assert "0x followed by 40 hex digits" in str(error.value)
    assert out.getvalue() == ""
    assert not AccessToken.objects.exists()


async def test_issued_token_works_over_the_websocket(service, make_user):
    bob = make_user()
    address = "0x" + "12" * 20
    out = io.StringIO()
    call_command("issuetoken", address, stdout=out)
    async with connect(service.ws_url, out.getvalue().strip()) as client:
        assert outcome(await client.update("request", bob.address)) == ("event", "")
    async with connect(service.ws_url, bob.token) as b:
        assert await pending(b) == ([], [(address, None)])
