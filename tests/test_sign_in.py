"""Signing in with a Decentraland identity: a token for signed headers over REST, and the
WebSocket's signed first frame; tokens keep working beside them."""

import asyncio
import json
import time

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User as UserModel
from accounts.services import user_for_token
from presence.protocol import friendships_service_pb2 as v1
from presence.rpc import wire
from presence.rpc.client import RemoteError, RpcClient
from presence.rpc.wire import MessageType
from tests.conftest import start_service, stop_service
from tests.signing import new_identity, ws_sign_in_frame
from tests.social_v2_support import SocialClient, connect_signed, profiles
from tests.support import OFFLINE, ONLINE, addresses, connect, outcome

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "/api/v1/auth/token"
UNAUTHORIZED_CLOSE_CODE = 4001


def now_ms() -> int:
    return int(time.time() * 1000)


def post_token(headers: dict[str, str]) -> object:
    client = APIClient()
    client.credentials(
        **{f"HTTP_{name.upper().replace('-', '_')}": v for name, v in headers.items()}
    )
    return client.post(TOKEN)


async def apost_token(headers: dict[str, str]) -> object:
    return await sync_to_async(post_token)(headers)


# --- POST /api/v1/auth/token -----------------------------------------------------------------


def test_signed_request_gets_a_token_for_its_wallet(transactional_db):
    identity = new_identity()
    response = post_token(identity.headers("post", TOKEN))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["address"] == identity.address
    assert body["expires_in"] == 30 * 24 * 3600
    assert user_for_token(body["token"]).address == identity.address
    assert UserModel.objects.filter(address=identity.address).exists()


def test_the_token_works_on_the_rest_api(transactional_db):
    token = post_token(new_identity().headers("post", TOKEN)).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/api/v1/friends/")
    assert response.status_code == 200, response.content


async def test_the_token_works_as_synapse_token(service, make_user):
    identity, friend = new_identity(), make_user()
    token = (await apost_token(identity.headers("post", TOKEN))).json()["token"]
    async with connect(service.ws_url, token) as client:
        assert outcome(await client.update("request", friend.address)) == ("event", "")
        assert outcome(await client.set_status(ONLINE)) == ("status", "")
    async with connect(service.ws_url, friend.token) as other:
        assert outcome(await other.update("accept", identity.address)) == ("event", "")
        assert addresses(await other.friends()) == [identity.address]


def test_every_sign_in_gets_a_new_token_for_the_same_user(transactional_db):
    identity = new_identity()
    at = now_ms()
    first = post_token(identity.headers("post", TOKEN, timestamp_ms=at)).json()
    second = post_token(identity.headers("post", TOKEN, timestamp_ms=at + 1)).json()
    assert first["token"] != second["token"]
    assert first["address"] == second["address"] == identity.address


def test_the_same_signed_headers_work_once(transactional_db):
    headers = new_identity().headers("post", TOKEN)
    assert post_token(headers).status_code == 201
    replay = post_token(headers)
    assert replay.status_code == 401
    assert "used already" in replay.json()["detail"]


def test_no_signed_headers_is_401_with_the_scheme_to_use(transactional_db):
    response = APIClient().post(TOKEN)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "SignedFetch"


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/"), ("get", TOKEN), ("post", "/api/v1/friends/")]
)
def test_headers_signed_for_another_request_are_refused(transactional_db, method, path):
    response = post_token(new_identity().headers(method, path))
    assert response.status_code == 401
    assert "not for this request" in response.json()["detail"]


def test_a_token_request_signed_by_a_scene_is_refused(transactional_db):
    metadata = '{"signer":"decentraland-kernel-scene","sceneId":"x"}'
    response = post_token(new_identity().headers("post", TOKEN, metadata=metadata))
    assert response.status_code == 401
    assert "scene" in response.json()["detail"]


def test_a_disabled_user_cannot_sign_in(transactional_db):
    identity = new_identity()
    UserModel.objects.create(address=identity.address, is_active=False)
    response = post_token(identity.headers("post", TOKEN))
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]


def test_the_timestamp_window_is_a_setting(transactional_db):
    identity = new_identity()
    at = now_ms() - 10_000
    with override_settings(ACCOUNTS={**settings.ACCOUNTS, "SIGNED_FETCH_WINDOW_SECONDS": 5}):
        response = post_token(identity.headers("post", TOKEN, timestamp_ms=at))
    assert response.status_code == 401
    assert "within 5 s" in response.json()["detail"]
    # The default window (300 s) takes the same age.
    assert post_token(identity.headers("post", TOKEN, timestamp_ms=at + 1)).status_code == 201


# --- The WebSocket's first frame ----------------------------------------------------------


async def closed_after(url: str, frame: str | bytes) -> websockets.exceptions.ConnectionClosed:
    """Send `frame` first; the close the server answers with."""
    async with websockets.connect(url) as ws:
        await ws.send(frame)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    return closed.value


@pytest.mark.parametrize("binary", [True, False])
async def test_a_signed_first_frame_binds_the_connection(service, binary):
    identity, friend = new_identity(), new_identity()
    async with connect_signed(service.ws_url, identity, binary=binary) as client:
        response = await client.upsert("request", friend.address, message="hi")
        assert response.WhichOneof("response") == "accepted", response
        assert (await client.pending(sent=True)).requests.requests[0].friend.address == (
            friend.address
        )


async def test_a_signed_connection_serves_friendships_service_without_tokens(service):
    identity = new_identity()
    async with connect_signed(service.ws_url, identity) as social:
        port = await social.rpc.create_port("friendships")
        procedures = await social.rpc.load_module(port, "FriendshipsService")
        raw = await social.rpc.call(
            port, procedures["GetRequestEvents"], v1.Payload().SerializeToString()
        )
        assert v1.RequestEventsResponse.FromString(raw).WhichOneof("response") == "events"


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        ("hello", "JSON object"),
        (b"{not json", "JSON object"),
        ('["x-identity-auth-chain-0"]', "JSON object"),
        ('{"x-identity-timestamp": 5}', "JSON object"),
        ("{}", "no auth chain"),
    ],
)
async def test_a_bad_first_frame_closes_with_4001_and_a_reason(service, frame, words):
    closed = await closed_after(service.ws_url, frame)
    assert closed.rcvd is not None
    assert closed.rcvd.code == UNAUTHORIZED_CLOSE_CODE
    assert words in closed.rcvd.reason


async def test_refused_signed_headers_close_with_the_reason(service):
    identity = new_identity()
    frame = json.dumps(identity.headers("get", "/", timestamp_ms=now_ms() - 3_600_000))
    closed = await closed_after(service.ws_url, frame)
    assert closed.rcvd.code == UNAUTHORIZED_CLOSE_CODE
    assert closed.rcvd.reason.startswith("signed headers refused: ")
    assert "within 300 s" in closed.rcvd.reason


async def test_nothing_sent_after_a_refused_first_frame_is_served(service):
    identity = new_identity()
    async with websockets.connect(service.ws_url) as ws:
        assert wire.decode(await ws.recv()).type == MessageType.SERVER_READY
        await ws.send(json.dumps(identity.headers("post", TOKEN)))  # signed for another request
        await ws.send(wire.create_port(1, "social"))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            frame = await ws.recv()
            pytest.fail(f"the server answered {wire.decode(frame)}")
    assert closed.value.rcvd.code == UNAUTHORIZED_CLOSE_CODE


async def test_a_replayed_first_frame_is_refused(service):
    identity = new_identity()
    frame = ws_sign_in_frame(identity)
    async with websockets.connect(service.ws_url) as first:
        await first.send(frame)
        rpc = RpcClient(first)
        try:
            social = await SocialClient(first, rpc).load()
            assert profiles(await social.friends()) == []
            closed = await closed_after(service.ws_url, frame)
        finally:
            await rpc.close()
    assert closed.rcvd.code == UNAUTHORIZED_CLOSE_CODE
    assert "used already" in closed.rcvd.reason


async def test_a_signed_frame_for_another_user_than_the_url_token_is_refused(service, make_user):
    alice = make_user()
    url = f"{service.ws_url}?access_token={alice.token}"
    closed = await closed_after(url, ws_sign_in_frame(new_identity()))
    assert closed.rcvd.code == UNAUTHORIZED_CLOSE_CODE
    assert "another user" in closed.rcvd.reason


async def test_signing_in_over_the_connection_limit_closes_with_4029(tmp_path):
    running = start_service(tmp_path, {"PRESENCE_MAX_CONNECTIONS_PER_USER": "1"})
    try:
        identity = new_identity()
        async with connect_signed(running.ws_url, identity) as client:
            closed = await closed_after(running.ws_url, ws_sign_in_frame(identity))
            assert profiles(await client.friends()) == []
    finally:
        stop_service(running)
    assert closed.rcvd.code == 4029
    assert "at most 1 connections" in closed.rcvd.reason


async def test_a_dcl_rpc_first_frame_keeps_the_token_way(service, make_user):
    alice = make_user()
    async with connect(service.ws_url) as client:
        assert outcome(await client.request_events())[0] == "unauthorized_error"
        assert outcome(await client.set_status(ONLINE, token=alice.token)) == ("status", "")
        assert outcome(await client.request_events()) == ("events", "")


async def test_social_service_on_a_connection_that_did_not_sign_in_is_a_remote_error(
    service,
):
    async with connect(service.ws_url) as client:
        port = await client.rpc.create_port("social")
        procedures = await client.rpc.load_module(port, "SocialService")
        with pytest.raises(RemoteError) as error:
            await client.rpc.call(port, procedures["GetFriends"], b"")
    assert error.value.code == 401
    assert "not signed in" in error.value.remote_message


# --- Signed connections and presence --------------------------------------------------------


async def test_a_signed_connection_is_online_for_friends_until_it_closes(service, make_user):
    """Decentraland's clients have no SetPresenceStatus: connecting is coming online."""
    identity, watcher = new_identity(), make_user()
    async with connect(service.ws_url, watcher.token) as friend:
        async with connect_signed(service.ws_url, identity) as social:
            await social.upsert("request", watcher.address)
        assert outcome(await friend.update("accept", identity.address)) == ("event", "")
        subscription = await friend.subscribe_presence()
        async with connect_signed(service.ws_url, identity):
            await subscription.presence_until(identity.address, ONLINE)
        await subscription.presence_until(identity.address, OFFLINE)


async def test_a_status_chosen_on_another_connection_is_kept(service, make_user):
    """Appearing offline through FriendshipsService holds when a signed client connects."""
    identity, watcher = new_identity(), make_user()
    token = (await apost_token(identity.headers("post", TOKEN))).json()["token"]
    async with (
        connect(service.ws_url, watcher.token) as friend,
        connect(service.ws_url, token) as hidden,
    ):
        assert outcome(await hidden.update("request", watcher.address)) == ("event", "")
        assert outcome(await friend.update("accept", identity.address)) == ("event", "")
        assert outcome(await hidden.set_status(OFFLINE)) == ("status", "")
        subscription = await friend.subscribe_presence()
        async with connect_signed(service.ws_url, identity):
            await asyncio.sleep(0.5)
            assert addresses(await friend.online_friends()) == []
        await subscription.expect_nothing(within=0.3)
