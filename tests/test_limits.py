"""Each protection against a hostile or careless client, provoked on the real service: what
the client sees, and that everyone else carries on."""

import asyncio
import time
from contextlib import AsyncExitStack

import pytest
import websockets
from django.test import Client, override_settings

from friendships.models import Block, Friendship
from presence.protocol import friendships_service_pb2 as fs
from presence.rpc import wire
from presence.rpc.client import RemoteError, RpcClient, StreamClosed
from presence.rpc.wire import MessageType
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    FriendsClient,
    addresses,
    armed,
    befriend,
    closed_with,
    connect,
    eventually,
    new_address,
    outcome,
    pending,
    presences_of,
    raw_client,
    service_with,
    within_one_window,
)

pytestmark = pytest.mark.django_db(transaction=True)

CLOSE_TOO_MANY_CONNECTIONS = 4029
CLOSE_AUTHENTICATION_TIMEOUT = 4008
AUTH_TIMEOUT = 2
MAX_CONNECTIONS = 2
MAX_PORTS = 3
MAX_CALLS = 4
STATUS_CHANGES = 5
FRAMES_PER_SECOND = 5
FRAME_BURST = 10
# Decentraland's social service's limits, the defaults.
ACTIONS_PER_USER = 30
ACTIONS_PER_PAIR = 10


# --- Services ------------------------------------------------------------------------------


limits_service = service_with(
    {
        "PRESENCE_AUTH_TIMEOUT_SECONDS": str(AUTH_TIMEOUT),
        "PRESENCE_MAX_CONNECTIONS_PER_USER": str(MAX_CONNECTIONS),
        "PRESENCE_MAX_PORTS": str(MAX_PORTS),
        "PRESENCE_MAX_CONCURRENT_REQUESTS": str(MAX_CALLS),
        "PRESENCE_STATUS_CHANGES_PER_MINUTE": str(STATUS_CHANGES),
    }
)
flood_service = service_with(
    {"PRESENCE_FRAMES_PER_SECOND": str(FRAMES_PER_SECOND), "PRESENCE_FRAME_BURST": str(FRAME_BURST)}
)
# Default limits, on a process of its own.
actions_service = service_with({})


# --- (a) Authentication timeout ------------------------------------------------------------


async def test_only_connections_that_never_authenticate_are_closed_with_4008(
    limits_service, make_user
):
    alice, bob = make_user(), make_user()
    url = limits_service.ws_url
    loop = asyncio.get_running_loop()

    async def anonymous() -> tuple[int | None, float]:
        async with raw_client(url) as client:
            opened = loop.time()
            await client.load()
            # Calls without a token are answered, but they do not authenticate.
            await client.works("unauthorized_error")
            code = await closed_with(client.ws, AUTH_TIMEOUT + 3)
            return code, loop.time() - opened

    async def authenticated() -> None:
        async with (
            connect(url, alice.token) as by_payload,
            connect(url, bob.token, query_token=True) as by_url,
        ):
            await asyncio.sleep(AUTH_TIMEOUT / 2)
            assert outcome(await by_payload.request_events()) == ("events", "")
            await asyncio.sleep(AUTH_TIMEOUT / 2 + 1)
            for client in (by_payload, by_url):
                assert client.ws.close_code is None
                assert outcome(await client.request_events()) == ("events", "")

    (code, waited), _ = await asyncio.gather(anonymous(), authenticated())
    assert code == CLOSE_AUTHENTICATION_TIMEOUT
    assert AUTH_TIMEOUT - 0.5 <= waited <= AUTH_TIMEOUT + 2, waited


async def test_a_client_slow_to_answer_a_close_has_the_whole_closing_handshake_timeout(
    limits_service,
):
    """autobahn waits 1 s for the client's answer to a close frame before it drops TCP. Its
    default timer rounds deadlines down to a whole second of the clock, so a close sent at
    x.8 s was cut 0.2 s later: the connection is opened at x.8 s, so that its sign-in
    deadline's close goes out there."""
    await asyncio.sleep(1.8 - time.time() % 1)
    reader, writer = await asyncio.open_connection("127.0.0.1", limits_service.port)
    try:
        writer.write(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        received = b""
        # Server frames are unmasked: a close frame's first byte is 0x88. Never answered.
        while b"\x88" not in received:
            chunk = await asyncio.wait_for(reader.read(4096), AUTH_TIMEOUT + 3)
            assert chunk, "the connection ended before the server's close frame"
            received += chunk
        close_sent = time.monotonic()
        try:
            while await asyncio.wait_for(reader.read(4096), 5):
                pass
        except ConnectionResetError:
            pass
        waited = time.monotonic() - close_sent
    finally:
        writer.close()
    assert waited >= 0.9, f"the unanswered close was cut after {waited:.2f} s"


# --- (b) Connections per user --------------------------------------------------------------


async def test_a_connection_beyond_the_users_limit_is_refused_until_one_closes(
    limits_service, make_user
):
    alice, bob = make_user(), make_user()
    url = limits_service.ws_url
    async with AsyncExitStack() as stack:
        admitted = [await stack.enter_async_context(connect(url, alice.token)) for _ in range(2)]
        for client in admitted:
            assert outcome(await client.request_events()) == ("events", "")
        # Another user is not concerned.
        other = await stack.enter_async_context(connect(url, bob.token))
        assert outcome(await other.request_events()) == ("events", "")

        async with connect(url, alice.token) as third:
            kind, message = outcome(await third.request_events())
            assert kind == "too_many_requests_error", (kind, message)
            assert str(MAX_CONNECTIONS) in message, message
            kind, _ = outcome(await third.set_status(ONLINE))
            assert kind == "too_many_requests_error"
        # The refused connection took nothing: the two still work, and still count.
        for client in admitted:
            assert outcome(await client.request_events()) == ("events", "")

        first = admitted[0]
        await first.ws.close()
        await first.rpc.close()

        async def a_new_connection_is_admitted() -> bool:
            async with connect(url, alice.token) as fresh:
                return outcome(await fresh.request_events()) == ("events", "")

        await eventually(a_new_connection_is_admitted, timeout=5, interval=0.05)
        assert outcome(await admitted[1].request_events()) == ("events", "")


async def over_the_limit_by_url_token(url: str, token: str) -> tuple[int | None, str]:
    """Open a connection whose ?access_token= would bind it at once: (close code, reason) if
    the server closes it, or (None, what its first call answers) if it stays open."""
    async with websockets.connect(f"{url}?access_token={token}") as ws:
        try:
            ready = wire.decode(await asyncio.wait_for(ws.recv(), 5))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code, closed.rcvd.reason
        assert ready.type == MessageType.SERVER_READY
        rpc = RpcClient(ws)
        try:
            client = await FriendsClient(ws, rpc, None).load()
            kind, message = outcome(await client.request_events())
        finally:
            await rpc.close()
        return None, f"{kind}: {message}"


async def test_a_url_token_connection_beyond_the_users_limit_is_closed_with_4029(
    limits_service, make_user
):
    """Closed as too many connections (not as unauthorized), with a reason that names the
    limit; the user's other connections carry on."""
    alice = make_user()
    url = limits_service.ws_url
    async with connect(url, alice.token) as one, connect(url, alice.token) as two:
        for client in (one, two):
            assert outcome(await client.request_events()) == ("events", "")
        code, said = await over_the_limit_by_url_token(url, alice.token)
        assert code == CLOSE_TOO_MANY_CONNECTIONS, (code, said)
        assert f"at most {MAX_CONNECTIONS} connections" in said, said
        for client in (one, two):
            assert outcome(await client.request_events()) == ("events", "")


# --- (c) Ports and concurrent calls at the boundary ----------------------------------------


async def test_exactly_max_ports_may_be_open(limits_service, make_user):
    alice = make_user()
    async with connect(limits_service.ws_url, alice.token) as client:
        assert outcome(await client.request_events()) == ("events", "")
        # load() created the first port.
        ports = [client.port] + [await client.rpc.create_port(f"p{i}") for i in range(2)]
        assert len(set(ports)) == MAX_PORTS
        with pytest.raises(RemoteError) as refused:
            await client.rpc.create_port("one too many")
        assert refused.value.code == 429
        assert f"at most {MAX_PORTS} ports" in refused.value.remote_message
        # Each of the ports serves.
        for port in ports[1:]:
            procedures = await client.rpc.load_module(port, "FriendshipsService")
            raw = await client.rpc.call(port, procedures["GetRequestEvents"], b"")
            assert fs.RequestEventsResponse.FromString(raw).WhichOneof("response") == "events"
        # A destroyed port frees its place.
        await client.rpc.destroy_port(ports[-1])
        again = await client.rpc.create_port("again")
        procedures = await client.rpc.load_module(again, "FriendshipsService")
        assert set(procedures) == set(client.procedures)
        assert outcome(await client.request_events()) == ("events", "")


async def test_exactly_max_concurrent_requests_may_be_open(limits_service, make_user):
    alice = make_user()
    async with connect(limits_service.ws_url, alice.token) as client:
        assert outcome(await client.request_events()) == ("events", "")
        # Streams that are never acked stay open on the server.
        streams = [await client.stream("GetFriends", fs.Payload()) for _ in range(MAX_CALLS)]
        with pytest.raises(RemoteError) as refused:
            await client.stream("GetFriends", fs.Payload())
        assert refused.value.code == 429
        assert f"at most {MAX_CALLS} calls" in refused.value.remote_message
        with pytest.raises(RemoteError) as refused:
            await client.request_events()
        assert refused.value.code == 429

        await streams[0].cancel()

        async def a_call_fits() -> bool:
            try:
                return outcome(await client.request_events()) == ("events", "")
            except RemoteError as exc:
                assert exc.code == 429
                return False

        await eventually(a_call_fits, timeout=3, interval=0.05)
        # The streams left open are still served: alice has no friends, so the first ack
        # ends each of them.
        for stream in streams[1:]:
            with pytest.raises(StreamClosed, match="server closed"):
                await stream.next(timeout=5)


# --- (d) Frame flood ----------------------------------------------------------------------


async def test_a_frame_flood_is_refused_call_by_call_and_spares_everyone_else(
    flood_service, make_user
):
    flooder, bystander = make_user(), make_user()
    url = flood_service.ws_url
    async with (
        raw_client(url, flooder.token) as client,
        connect(url, bystander.token) as other,
    ):
        await client.load()
        numbers = [client.number() for _ in range(3 * FRAME_BURST)]

        async def flood() -> dict[int, wire.Frame]:
            for number in numbers:
                await client.ws.send(client.request_events(number))
            answers = {}
            for _ in numbers:
                frame = await client.receive()
                assert frame.number not in answers, frame
                answers[frame.number] = frame
            return answers

        async def carry_on() -> None:
            for _ in range(3):
                assert outcome(await other.request_events()) == ("events", "")

        answers, _ = await asyncio.gather(flood(), carry_on())
        # Every call got exactly one answer: served, or refused for the budget.
        assert set(answers) == set(numbers)
        served = [f for f in answers.values() if f.type == MessageType.RESPONSE]
        refused = [f for f in answers.values() if f.type == MessageType.REMOTE_ERROR_RESPONSE]
        assert len(served) + len(refused) == len(numbers)
        assert 1 <= len(served) <= FRAME_BURST, len(served)
        assert len(refused) >= len(numbers) - FRAME_BURST - 2, len(refused)
        for frame in refused:
            assert frame.message.error_code == 429
            assert "too many frames" in frame.message.error_message

        # Right after, with the flooder's budget spent, the bystander is still served.
        assert outcome(await other.request_events()) == ("events", "")
        assert (await other.set_status(ONLINE)).status.type == ONLINE

        # The flooder's connection survives, and is served again after a pause.
        await asyncio.sleep(3 / FRAMES_PER_SECOND)
        assert client.ws.close_code is None
        await client.works()


# --- (e) Status changes per minute ---------------------------------------------------------


async def test_status_changes_beyond_the_limit_are_refused_and_change_nothing(
    limits_service, make_user
):
    alice, bob = make_user(), make_user()
    url = limits_service.ws_url
    await befriend(url, alice, bob)
    await within_one_window(3)
    bob_rest = Client(HTTP_AUTHORIZATION=f"Bearer {bob.token}")
    async with connect(url, alice.token) as a, connect(url, bob.token) as b:
        allowed = [AWAY, ONLINE, OFFLINE, AWAY, ONLINE][:STATUS_CHANGES]
        for status in allowed:
            response = await a.set_status(status)
            assert outcome(response) == ("status", ""), response
        assert addresses(await b.online_friends()) == [alice.address]

        for status in (OFFLINE, AWAY):
            kind, message = outcome(await a.set_status(status))
            assert kind == "too_many_requests_error", kind
            assert "status" in message
        # Still online, as chosen last: neither OFFLINE nor AWAY took effect.
        assert addresses(await b.online_friends()) == [alice.address]
        listed = (await asyncio.to_thread(bob_rest.get, "/api/v1/friends/online/")).json()
        assert [(f["address"], f["status"]) for f in listed["results"]] == [
            (alice.address, "online")
        ]
        # Other users have their own budget.
        assert outcome(await b.set_status(AWAY)) == ("status", "")


# --- (f) Flapping --------------------------------------------------------------------------


async def test_flapping_is_coalesced_and_the_final_status_arrives_promptly(service, make_user):
    alice, bob = make_user(), make_user()
    await befriend(service.ws_url, alice, bob)
    async with connect(service.ws_url, bob.token) as b, connect(service.ws_url, alice.token) as a:
        updates = await armed(b, await b.subscribe_presence())
        toggles = [ONLINE, AWAY] * 10
        for status in toggles:
            assert (await a.set_status(status)).status.type == status
        loop = asyncio.get_running_loop()
        done = loop.time()
        # (seconds after the last change, status) of every update about alice for 1.2 s.
        seen: list[tuple[float, int]] = []
        while (left := done + 1.2 - loop.time()) > 0:
            try:
                item = await updates.next(timeout=left)
            except TimeoutError:
                break
            arrived = loop.time() - done
            seen += [(arrived, s) for address, s in presences_of(item) if address == alice.address]
    assert seen, "the subscriber heard nothing"
    arrived, final = seen[-1]
    assert final == toggles[-1] == AWAY
    assert arrived <= 1.0, arrived
    assert len(seen) <= 5, seen


# --- (g) Friendship actions ---------------------------------------------------------------


def friendship_exists(one: str, other: str) -> bool:
    low, high = sorted((one, other))
    return Friendship.objects.filter(user_a_id=low, user_b_id=high).exists()


def blocks(blocker: str, blocked: str) -> bool:
    return Block.objects.filter(blocker_id=blocker, blocked_id=blocked).exists()


async def test_the_eleventh_action_on_a_pair_is_refused_and_changes_nothing(
    actions_service, make_user
):
    alice, bob = make_user(), make_user()
    url = actions_service.ws_url
    await within_one_window(3)
    async with connect(url, alice.token) as a, connect(url, bob.token) as b:
        for _ in range(ACTIONS_PER_PAIR // 2):
            assert outcome(await a.update("request", bob.address, "hi")) == ("event", "")
            assert outcome(await a.update("cancel", bob.address)) == ("event", "")
        # The pair's budget is shared by both of its users.
        for client, other in ((b, alice), (a, bob)):
            kind, message = outcome(await client.update("request", other.address))
            assert kind == "too_many_requests_error", kind
            assert "friendship actions" in message
        assert await pending(a) == ([], [])
        assert await pending(b) == ([], [])
        # Each user may still act towards others.
        assert outcome(await a.update("request", new_address())) == ("event", "")
        assert outcome(await b.update("request", new_address())) == ("event", "")


async def test_the_thirty_first_action_of_a_user_is_refused_and_changes_nothing(
    actions_service, make_user
):
    alice, bob = make_user(), make_user()
    url = actions_service.ws_url
    await within_one_window(3)
    targets = [new_address() for _ in range(ACTIONS_PER_USER)]
    async with connect(url, alice.token) as a, connect(url, bob.token) as b:
        for target in targets:
            assert outcome(await a.update("request", target)) == ("event", "")
        last = new_address()
        kind, message = outcome(await a.update("request", last))
        assert kind == "too_many_requests_error", kind
        assert "friendship actions" in message
        kind, _ = outcome(await a.update("block", bob.address))
        assert kind == "too_many_requests_error", kind
        outgoing, incoming = await pending(a)
        assert sorted(address for address, _ in outgoing) == sorted(targets)
        assert incoming == []
        assert not friendship_exists(alice.address, last)
        assert not blocks(alice.address, bob.address)
        # Someone else's budget is their own, even towards alice.
        assert outcome(await b.update("request", alice.address)) == ("event", "")


async def test_the_block_limit_of_a_pair_is_directional(actions_service, make_user):
    alice, bob = make_user(), make_user()
    url = actions_service.ws_url
    await within_one_window(3)
    async with connect(url, alice.token) as a, connect(url, bob.token) as b:
        for _ in range(ACTIONS_PER_PAIR // 2):
            assert outcome(await a.update("block", bob.address)) == ("event", "")
            assert outcome(await a.update("unblock", bob.address)) == ("event", "")
        assert outcome(await a.update("block", bob.address))[0] == "too_many_requests_error"
        # The rules come before the limits: an unblock without a block is told so.
        assert outcome(await a.update("unblock", bob.address)) == (
            "bad_request_error",
            "this user is not blocked",
        )
        assert not blocks(alice.address, bob.address)
        # bob can still block alice, and lift it.
        assert outcome(await b.update("block", alice.address)) == ("event", "")
        assert blocks(bob.address, alice.address)
        assert outcome(await b.update("unblock", alice.address)) == ("event", "")


def rest_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {user.token}")


async def rest(client: Client, method: str, path: str) -> object:
    return await asyncio.to_thread(getattr(client, method), path)


def assert_throttled(response) -> None:
    assert response.status_code == 429, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    assert "throttled" in response.json()["detail"].lower()
    assert 0 < int(response["Retry-After"]) <= 60


async def test_rest_block_limits_share_their_counts_with_rpc(actions_service, make_user):
    alice, bob = make_user(), make_user()
    url = actions_service.ws_url
    alice_rest, bob_rest = rest_client(alice), rest_client(bob)
    path = f"/api/v1/blocks/{bob.address}/"
    await within_one_window(3)
    async with connect(url, alice.token) as a:
        for _ in range(3):
            assert outcome(await a.update("block", bob.address)) == ("event", "")
            assert outcome(await a.update("unblock", bob.address)) == ("event", "")
        for _ in range(2):
            assert (await rest(alice_rest, "put", path)).status_code == 201
            assert (await rest(alice_rest, "delete", path)).status_code == 204
        # Ten actions on alice > bob: both ways of making an eleventh are refused.
        assert_throttled(await rest(alice_rest, "put", path))
        # The rules come before the limits: an unblock without a block is told so.
        assert (await rest(alice_rest, "delete", path)).status_code == 400
        assert outcome(await a.update("block", bob.address))[0] == "too_many_requests_error"
        listed = (await rest(alice_rest, "get", "/api/v1/blocks/")).json()
        assert listed["results"] == []
        assert not blocks(alice.address, bob.address)
    # The other direction is untouched.
    response = await rest(bob_rest, "put", f"/api/v1/blocks/{alice.address}/")
    assert response.status_code == 201, response.content


async def test_rest_blocks_count_towards_the_users_limit(actions_service, make_user):
    alice = make_user()
    alice_rest = rest_client(alice)
    await within_one_window(3)
    async with connect(actions_service.ws_url, alice.token) as a:
        for _ in range(ACTIONS_PER_USER - 1):
            assert outcome(await a.update("request", new_address())) == ("event", "")
        first, second = new_address(), new_address()
        assert (await rest(alice_rest, "put", f"/api/v1/blocks/{first}/")).status_code == 201
        assert_throttled(await rest(alice_rest, "put", f"/api/v1/blocks/{second}/"))
        assert not blocks(alice.address, second)
        assert outcome(await a.update("request", new_address()))[0] == "too_many_requests_error"


async def test_rest_friendship_budgets_are_the_friendships_settings(make_user):
    """Read again when they change; the refusal says when to try again."""
    alice = make_user()
    alice_rest = rest_client(alice)
    refused = new_address()
    await within_one_window(3)
    with override_settings(
        FRIENDSHIPS={"ACTIONS_PER_MINUTE": 2, "ACTIONS_PER_PAIR_PER_MINUTE": 10}
    ):
        for _ in range(2):
            response = await rest(alice_rest, "put", f"/api/v1/blocks/{new_address()}/")
            assert response.status_code == 201, response.content
        assert_throttled(await rest(alice_rest, "put", f"/api/v1/blocks/{refused}/"))
    assert not blocks(alice.address, refused)
