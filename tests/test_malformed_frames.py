"""Frames a client should never send, through the real WebSocket: each is answered with a
REMOTE_ERROR_RESPONSE, the connection stays usable and other connections do not notice."""

import random

import pytest
from websockets.exceptions import ConnectionClosed

from presence.protocol import friendships_service_pb2 as fs
from presence.rpc import dcl_rpc_pb2 as pb
from presence.rpc import wire
from presence.rpc.wire import MessageType
from tests.support import (
    ONLINE,
    FriendsClient,
    RawClient,
    connect,
    raw_client,
    service_with,
)

pytestmark = pytest.mark.django_db(transaction=True)

MODULE = "FriendshipsService"
CLOSE_MESSAGE_TOO_BIG = 1009
SMALL_LIMIT = 1024


def unexpected_frames(client: FriendsClient) -> list[wire.Frame]:
    """Frames a client received that answer none of its calls, besides SERVER_READY."""
    frames = []
    while not client.rpc.unsolicited.empty():
        frames.append(client.rpc.unsolicited.get_nowait())
    return [frame for frame in frames if frame.type != MessageType.SERVER_READY]


def header(message_type: int, number: int) -> bytes:
    identifier = ((message_type & 0xF) << 27) | (number & 0x07FFFFFF)
    return pb.RpcMessageHeader(message_identifier=identifier).SerializeToString()


def garbage(seed: int) -> bytes:
    # 0x0f is field 1 with wire type 7, which does not exist: never a valid frame.
    return b"\x0f" + random.Random(seed).randbytes(63)


# Each case: how to build the frame from the client (its port and procedures), the message
# number the error must carry, and words the error message must contain.
BAD_INPUTS = {
    "garbage-ones": (lambda c: b"\xff" * 32, 0, "not a dcl-rpc message"),
    "garbage-random-1": (lambda c: garbage(1), 0, "not a dcl-rpc message"),
    "garbage-random-2": (lambda c: garbage(2), 0, "not a dcl-rpc message"),
    "garbage-random-3": (lambda c: garbage(3), 0, "not a dcl-rpc message"),
    "truncated-identifier": (lambda c: wire.create_port(40, "x")[:3], 0, "not a dcl-rpc message"),
    "truncated-request": (
        lambda c: wire.request(40, c.port, c.procedures["GetRequestEvents"], b"\x0a\x02ab")[:-3],
        0,
        "not a dcl-rpc message",
    ),
    "truncated-create-port": (
        lambda c: wire.create_port(40, "friendships")[:-4],
        0,
        "not a dcl-rpc message",
    ),
    "unknown-type-0": (lambda c: header(0, 40), 40, "unknown message type 0"),
    "unknown-type-12": (lambda c: header(12, 41), 41, "unknown message type 12"),
    "unknown-type-15": (lambda c: header(15, 42), 42, "unknown message type 15"),
    "empty-frame": (lambda c: b"", 0, "unknown message type 0"),
    "text-frame": (lambda c: "hello", 0, "binary"),
    "json-text-frame": (lambda c: '{"type": "request"}', 0, "binary"),
    "server-only-type": (lambda c: wire.response(43, b""), 43, "may not send RESPONSE"),
    "request-unknown-port": (
        lambda c: wire.request(44, 999, 1, b""),
        44,
        "port",
    ),
    "request-unknown-procedure": (
        lambda c: wire.request(45, c.port, 999, b""),
        45,
        "procedure 999",
    ),
    "request-undecodable-payload": (
        lambda c: wire.request(46, c.port, c.procedures["GetRequestEvents"], b"\xff\xff"),
        46,
        "GetRequestEvents",
    ),
    "request-module-unknown-module": (
        lambda c: wire.request_module(47, c.port, "NoSuchService"),
        47,
        "NoSuchService",
    ),
    "request-module-unknown-port": (
        lambda c: wire.request_module(48, 999, MODULE),
        48,
        "port 999",
    ),
    "ack-unknown-stream": (lambda c: wire.stream_ack(49, c.port, 0), 49, "no open stream"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_gets_a_remote_error_and_the_connection_stays_usable(
    service, make_user, case
):
    build, number, words = BAD_INPUTS[case]
    sender, bystander = make_user(), make_user()
    async with (
        raw_client(service.ws_url, sender.token) as client,
        connect(service.ws_url, bystander.token) as other,
    ):
        await client.load()
        await client.works()
        await client.send(build(client))
        message = await client.expect_error(number)
        assert words.lower() in message.lower(), message
        # The error is the only answer: the next frame is the next call's.
        await client.works()
        assert (await other.set_status(ONLINE)).status.type == ONLINE
        assert unexpected_frames(other) == []


async def test_a_well_behaved_client_is_unaffected_throughout(service, make_user):
    """Every bad input in a row on one connection, while another keeps working beside it."""
    sender, bystander = make_user(), make_user()
    async with (
        raw_client(service.ws_url, sender.token) as client,
        connect(service.ws_url, bystander.token) as other,
    ):
        await client.load()
        watcher = await other.subscribe_presence()
        await other.set_status(ONLINE)
        for case, (build, number, words) in BAD_INPUTS.items():
            await client.send(build(client))
            message = await client.expect_error(number)
            assert words.lower() in message.lower(), (case, message)
            pending = await other.request_events()
            assert pending.WhichOneof("response") == "events", (case, pending)
        await client.works()
        assert (await other.set_status(ONLINE)).status.type == ONLINE
        await watcher.expect_nothing(within=0.2)
        assert unexpected_frames(other) == []


async def test_stream_ack_after_the_stream_ended_is_a_remote_error(service, make_user):
    user = make_user()
    async with raw_client(service.ws_url, user.token) as client:
        await client.load()
        number = client.number()
        payload = fs.Payload().SerializeToString()
        await client.send(
            wire.request(number, client.port, client.procedures["GetFriends"], payload)
        )
        offer = await client.receive()
        assert (offer.type, offer.message.sequence_id) == (MessageType.STREAM_MESSAGE, 0)
        # No friends: the first ack ends the stream.
        await client.send(wire.stream_ack(number, client.port, 0))
        end = await client.receive()
        assert (end.type, end.number) == (MessageType.STREAM_MESSAGE, number)
        assert end.message.closed
        await client.send(wire.stream_ack(number, client.port, end.message.sequence_id))
        assert "no open stream" in await client.expect_error(number)
        await client.works()


# --- Frame size ------------------------------------------------------------------------------


small_frames_service = service_with({"PRESENCE_MAX_FRAME_BYTES": str(SMALL_LIMIT)})


def create_port_of_size(number: int, size: int) -> bytes:
    """A valid CREATE_PORT frame of exactly `size` bytes (for sizes of 136 and more)."""
    # 5 bytes of identifier, 1 of tag, 2 of length for names of 128 bytes and more.
    frame = wire.create_port(number, "p" * (size - 8))
    assert len(frame) == size
    return frame


async def expect_closed(client: RawClient, code: int | None) -> None:
    """The server ends the connection before answering anything: with a close frame carrying
    `code`, or in any way at all when `code` is None."""
    with pytest.raises(ConnectionClosed) as caught:
        frame = await client.receive(timeout=10.0)
        raise AssertionError(f"expected the connection to close, got {frame}")
    if code is not None:
        assert caught.value.rcvd is not None, "the server sent no close frame"
        assert caught.value.rcvd.code == code


async def test_a_frame_exactly_at_the_limit_is_accepted(small_frames_service):
    async with raw_client(small_frames_service.ws_url) as client:
        await client.send(create_port_of_size(1, SMALL_LIMIT))
        frame = await client.receive()
        assert (frame.type, frame.number) == (MessageType.CREATE_PORT_RESPONSE, 1)


@pytest.mark.parametrize("kind", ["binary", "text"])
async def test_a_frame_over_the_limit_is_not_served_and_ends_the_connection(
    small_frames_service, kind
):
    async with (
        raw_client(small_frames_service.ws_url) as client,
        raw_client(small_frames_service.ws_url) as other,
    ):
        if kind == "binary":
            await client.send(create_port_of_size(1, SMALL_LIMIT + 1))
        else:
            await client.send("x" * (SMALL_LIMIT + 1))
        await expect_closed(client, code=None)
        # The other connection is untouched.
        await other.send(create_port_of_size(1, SMALL_LIMIT))
        frame = await other.receive()
        assert (frame.type, frame.number) == (MessageType.CREATE_PORT_RESPONSE, 1)


@pytest.mark.parametrize("kind", ["binary", "text"])
async def test_a_frame_over_the_limit_closes_with_1009(small_frames_service, kind):
    async with raw_client(small_frames_service.ws_url) as client:
        if kind == "binary":
            await client.send(create_port_of_size(1, SMALL_LIMIT + 1))
        else:
            await client.send("x" * (SMALL_LIMIT + 1))
        await expect_closed(client, CLOSE_MESSAGE_TOO_BIG)


async def test_the_default_limit_accepts_frames_over_the_small_one(service, make_user):
    user = make_user()
    async with raw_client(service.ws_url, user.token) as client:
        await client.send(create_port_of_size(1, 4 * SMALL_LIMIT))
        frame = await client.receive()
        assert frame.type == MessageType.CREATE_PORT_RESPONSE
