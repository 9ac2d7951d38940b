"""The dcl-rpc framing module and RpcServerSession, in memory: no Django, no network."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from presence.protocol import friendships_service_pb2 as fs
from presence.rpc import dcl_rpc_pb2 as pb
from presence.rpc import wire
from presence.rpc.server import (
    ErrorCode,
    Limits,
    RemoteProcedureError,
    RpcModule,
    RpcServerSession,
    server_stream,
    unary,
)
from presence.rpc.wire import MalformedFrame, MessageType

# --- Message identifiers -----------------------------------------------------------------


def spec_identifier(message_type: int, number: int) -> int:
    """The formula of the protocol, written out independently of the module under test."""
    return ((message_type & 0xF) << 27) | (number & 0x07FFFFFF)


@pytest.mark.parametrize("message_type", list(range(16)))
@pytest.mark.parametrize("number", [0, 1, 2, 1000, 0x07FFFFFF, 0x08000000, 0x08000005, 0xFFFFFFFF])
def test_pack_identifier_matches_the_spec_formula(message_type, number):
    packed = wire.pack_identifier(message_type, number)
    assert packed == spec_identifier(message_type, number)
    assert 0 <= packed <= 0xFFFFFFFF


def test_pack_identifier_puts_the_type_in_the_top_bits():
    assert wire.pack_identifier(MessageType.REQUEST, 1) == 0x08000001
    assert wire.pack_identifier(MessageType.SERVER_READY, 0) == 0x58000000
    assert wire.pack_identifier(MessageType.DESTROY_PORT, 7) == 0x50000007
    assert wire.pack_identifier(15, 0) == 0x78000000


def test_pack_identifier_masks_the_number_to_27_bits():
    assert wire.pack_identifier(MessageType.RESPONSE, 0x07FFFFFF) == 0x17FFFFFF
    # Bits above 27 are dropped instead of spilling into the type.
    assert wire.pack_identifier(MessageType.RESPONSE, 0x08000000) == 0x10000000
    assert wire.pack_identifier(MessageType.RESPONSE, 0x08000003) == 0x10000003
    assert wire.pack_identifier(MessageType.RESPONSE, 0xFFFFFFFF) == 0x17FFFFFF


def test_pack_identifier_masks_the_type_to_4_bits():
    assert wire.pack_identifier(16 + MessageType.REQUEST, 9) == wire.pack_identifier(1, 9)


@pytest.mark.parametrize("message_type", list(range(16)))
@pytest.mark.parametrize("number", [0, 1, 12345, 0x07FFFFFF])
def test_unpack_inverts_pack(message_type, number):
    assert wire.unpack_identifier(wire.pack_identifier(message_type, number)) == (
        message_type,
        number,
    )


def test_encoded_bytes_are_what_dcl_rpc_puts_on_the_wire():
    # Field 1 is a fixed32: tag 0x0d, then four little-endian bytes.
    assert wire.server_ready() == bytes.fromhex("0d00000058")
    assert wire.create_port(1, "friendships") == (
        bytes.fromhex("0d01000028") + b"\x22\x0bfriendships"
    )
    assert wire.create_port_response(1, 3) == bytes.fromhex("0d01000030") + bytes.fromhex(
        "1503000000"
    )


def test_encoders_mask_large_message_numbers():
    frame = wire.decode(wire.request(0x08000000 + 3, 1, 2, b""))
    assert frame.type == MessageType.REQUEST
    assert frame.number == 3


# --- Round trips -------------------------------------------------------------------------


def test_round_trip_request():
    frame = wire.decode(wire.request(7, 2, 5, b"\x01\x02payload"))
    assert (frame.type, frame.number) == (MessageType.REQUEST, 7)
    assert (frame.message.port_id, frame.message.procedure_id) == (2, 5)
    assert frame.message.payload == b"\x01\x02payload"
    assert frame.message.client_stream == 0


def test_round_trip_response():
    frame = wire.decode(wire.response(8, b"result"))
    assert (frame.type, frame.number, frame.message.payload) == (MessageType.RESPONSE, 8, b"result")


def test_round_trip_stream_message():
    frame = wire.decode(wire.stream_message(9, 3, 4, b"item"))
    assert (frame.type, frame.number) == (MessageType.STREAM_MESSAGE, 9)
    message = frame.message
    assert (message.port_id, message.sequence_id, message.payload) == (3, 4, b"item")
    assert not message.closed
    assert not message.ack


def test_round_trip_closing_stream_message():
    frame = wire.decode(wire.close_stream(10, 3, 6))
    assert (frame.type, frame.number) == (MessageType.STREAM_MESSAGE, 10)
    assert frame.message.closed
    assert frame.message.sequence_id == 6
    assert frame.message.payload == b""


def test_round_trip_stream_ack():
    frame = wire.decode(wire.stream_ack(11, 2, 5))
    assert (frame.type, frame.number) == (MessageType.STREAM_ACK, 11)
    assert (frame.message.port_id, frame.message.sequence_id) == (2, 5)
    assert frame.message.ack
    assert not frame.message.closed


def test_round_trip_create_port():
    frame = wire.decode(wire.create_port(12, "social_service"))
    assert (frame.type, frame.number) == (MessageType.CREATE_PORT, 12)
    assert frame.message.port_name == "social_service"


def test_round_trip_create_port_response():
    frame = wire.decode(wire.create_port_response(13, 4))
    assert (frame.type, frame.number, frame.message.port_id) == (
        MessageType.CREATE_PORT_RESPONSE,
        13,
        4,
    )


def test_round_trip_request_module():
    frame = wire.decode(wire.request_module(14, 2, "FriendshipsService"))
    assert (frame.type, frame.number) == (MessageType.REQUEST_MODULE, 14)
    assert (frame.message.port_id, frame.message.module_name) == (2, "FriendshipsService")


def test_round_trip_request_module_response():
    frame = wire.decode(wire.request_module_response(15, 2, {1: "Echo", 2: "Count"}))
    assert (frame.type, frame.number) == (MessageType.REQUEST_MODULE_RESPONSE, 15)
    assert frame.message.port_id == 2
    assert [(p.procedure_id, p.procedure_name) for p in frame.message.procedures] == [
        (1, "Echo"),
        (2, "Count"),
    ]


def test_round_trip_remote_error():
    frame = wire.decode(wire.remote_error(16, 404, "no such thing: ünïcode"))
    assert (frame.type, frame.number) == (MessageType.REMOTE_ERROR_RESPONSE, 16)
    assert (frame.message.error_code, frame.message.error_message) == (
        404,
        "no such thing: ünïcode",
    )


def test_round_trip_destroy_port():
    frame = wire.decode(wire.destroy_port(5))
    assert frame.type == MessageType.DESTROY_PORT
    assert frame.message.port_id == 5


def test_round_trip_server_ready():
    frame = wire.decode(wire.server_ready())
    assert (frame.type, frame.number, frame.message) == (MessageType.SERVER_READY, 0, None)


def test_every_message_type_has_a_round_trip():
    encoded = [
        wire.request(1, 1, 1, b""),
        wire.response(1, b""),
        wire.stream_message(1, 1, 0),
        wire.stream_ack(1, 1, 0),
        wire.create_port(1, "p"),
        wire.create_port_response(1, 1),
        wire.request_module(1, 1, "m"),
        wire.request_module_response(1, 1, {}),
        wire.remote_error(1, 0, "e"),
        wire.destroy_port(1),
        wire.server_ready(),
    ]
    assert {wire.decode(data).type for data in encoded} == set(MessageType)


def test_decode_reads_frames_built_with_other_encoders():
    """A frame as another implementation may build it: fields in another order, defaults set."""
    message = pb.Request(
        message_identifier=spec_identifier(1, 42), port_id=0, procedure_id=3, payload=b""
    )
    data = message.SerializeToString(deterministic=True)
    reordered = data[5:] + data[:5]
    frame = wire.decode(reordered)
    assert (frame.type, frame.number, frame.message.procedure_id) == (MessageType.REQUEST, 42, 3)


# --- Malformed frames --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b"\xff\xff\xff\xff\xff\xff",
        bytes(range(200, 256)),
        b"\x0f\x00\x00\x00\x00",  # wire type 7 does not exist
        b"\x0d\x01\x00",  # the identifier cut short
    ],
    ids=["one-byte", "all-ones", "high-bytes", "bad-wire-type", "short-identifier"],
)
def test_garbage_is_a_malformed_frame(data):
    with pytest.raises(MalformedFrame, match="not a dcl-rpc message") as caught:
        wire.decode(data)
    assert caught.value.number == 0


def test_every_truncation_of_a_frame_inside_a_field_is_malformed():
    data = wire.request(3, 1, 2, b"hello world")
    # Field boundaries: identifier (5 bytes), port (5), procedure (5), payload (2 + 11).
    boundaries = {5, 10, 15}
    cuts = [cut for cut in range(1, len(data)) if cut not in boundaries]
    assert len(cuts) == len(data) - 1 - len(boundaries)
    for cut in cuts:
        with pytest.raises(MalformedFrame) as caught:
            wire.decode(data[:cut])
        assert str(caught.value), f"no message for a frame cut at {cut}"


@pytest.mark.parametrize("raw_type", [0, 12, 13, 15])
def test_unknown_message_type_is_malformed_and_keeps_the_number(raw_type):
    data = pb.RpcMessageHeader(message_identifier=spec_identifier(raw_type, 77)).SerializeToString()
    with pytest.raises(MalformedFrame, match=f"unknown message type {raw_type}") as caught:
        wire.decode(data)
    assert caught.value.number == 77


def test_empty_frame_is_malformed():
    with pytest.raises(MalformedFrame, match="unknown message type 0"):
        wire.decode(b"")


@pytest.mark.parametrize(
    "data",
    [
        # A varint longer than 10 bytes.
        b"\x08" + b"\xff" * 10 + b"\x01",
        # A length-delimited field claiming about 2**63 bytes.
        wire.create_port(1, "x")[:5] + b"\x32" + b"\xff" * 9 + b"\x01",
        # A length that runs past the end of the frame.
        wire.create_port(1, "x")[:5] + b"\x22\xff\xff\xff\x0f" + b"abc",
    ],
    ids=["overlong-varint", "huge-length", "length-past-end"],
)
def test_huge_varints_are_malformed(data):
    with pytest.raises(MalformedFrame, match="not a dcl-rpc message"):
        wire.decode(data)


def test_malformed_body_names_the_type_and_keeps_the_number():
    # CREATE_PORT whose port_name is not UTF-8.
    data = wire.create_port(4, "x")[:5] + b"\x22\x02\xff\xfe"
    with pytest.raises(MalformedFrame, match="malformed CREATE_PORT message") as caught:
        wire.decode(data)
    assert caught.value.number == 4


def test_malformed_frame_is_a_value_error():
    with pytest.raises(ValueError):
        wire.decode(b"\xff")


# --- RpcServerSession in memory ------------------------------------------------------------

MODULE = "TestService"


class Probe:
    """What the test procedures did, as seen from inside them."""

    def __init__(self) -> None:
        self.produced = 0
        self.started = 0
        self.finished = 0
        self.unblock = asyncio.Event()


async def echo(probe: Probe, request: fs.User) -> fs.User:
    return fs.User(address=request.address.upper())


async def count(probe: Probe, request: fs.User) -> AsyncIterator[fs.User]:
    probe.started += 1
    try:
        for index in range(3):
            probe.produced += 1
            yield fs.User(address=f"{request.address}-{index}")
    finally:
        probe.finished += 1


async def hang(probe: Probe, request: fs.User) -> AsyncIterator[fs.User]:
    probe.started += 1
    try:
        await probe.unblock.wait()
        probe.produced += 1
        yield fs.User(address="late")
    finally:
        probe.finished += 1


async def boom(probe: Probe, request: fs.User) -> fs.User:
    raise RuntimeError("database password is hunter2")


async def boom_stream(probe: Probe, request: fs.User) -> AsyncIterator[fs.User]:
    probe.started += 1
    try:
        probe.produced += 1
        yield fs.User(address="first")
        raise RuntimeError("secret token abc123 leaked")
    finally:
        probe.finished += 1


async def refuse(probe: Probe, request: fs.User) -> fs.User:
    raise RemoteProcedureError("you may not do that", ErrorCode.NOT_FOUND)


TEST_MODULE = RpcModule(
    MODULE,
    (
        unary("Echo", fs.User, echo),
        server_stream("Count", fs.User, count),
        server_stream("Hang", fs.User, hang),
        unary("Boom", fs.User, boom),
        server_stream("BoomStream", fs.User, boom_stream),
        unary("Refuse", fs.User, refuse),
    ),
)


PROCEDURES = ["Echo", "Count", "Hang", "Boom", "BoomStream", "Refuse"]


async def ping(probe: Probe, request: fs.Payload) -> fs.Payload:
    return fs.Payload(synapse_token="pong")


OTHER_MODULE = RpcModule("OtherService", (unary("Ping", fs.Payload, ping),))


class Harness:
    """A session whose `send` collects decoded frames."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.probe = Probe()
        self.sent: list[wire.Frame] = []
        self._read = 0
        self._number = 0
        self._arrived = asyncio.Event()
        modules = {MODULE: TEST_MODULE, "OtherService": OTHER_MODULE}
        self.session = RpcServerSession(self._send, modules, limits or Limits(), self.probe)

    async def _send(self, data: bytes) -> None:
        self.sent.append(wire.decode(data))
        self._arrived.set()

    def number(self) -> int:
        self._number += 1
        return self._number

    async def feed(self, data: bytes) -> None:
        await self.session.handle_frame(data)

    async def next_frame(self, timeout: float = 1.0) -> wire.Frame:
        async with asyncio.timeout(timeout):
            while len(self.sent) <= self._read:
                self._arrived.clear()
                await self._arrived.wait()
        frame = self.sent[self._read]
        self._read += 1
        return frame

    async def quiet(self) -> None:
        """Let every task run, then check that nothing else was sent."""
        await asyncio.sleep(0.02)
        extra = self.sent[self._read :]
        assert not extra, f"unexpected frames: {extra}"

    async def expect_error(self, number: int, code: ErrorCode | None = None) -> str:
        frame = await self.next_frame()
        assert frame.type == MessageType.REMOTE_ERROR_RESPONSE, frame
        assert frame.number == number
        if code is not None:
            assert frame.message.error_code == code
        assert frame.message.error_message
        return frame.message.error_message

    async def start(self) -> None:
        await self.session.open()
        ready = await self.next_frame()
        assert ready.type == MessageType.SERVER_READY

    async def create_port(self, name: str = "friendships") -> int:
        number = self.number()
        await self.feed(wire.create_port(number, name))
        frame = await self.next_frame()
        assert (frame.type, frame.number) == (MessageType.CREATE_PORT_RESPONSE, number)
        return frame.message.port_id

    async def load(self, port_id: int, module: str = MODULE) -> dict[str, int]:
        number = self.number()
        await self.feed(wire.request_module(number, port_id, module))
        frame = await self.next_frame()
        assert (frame.type, frame.number) == (MessageType.REQUEST_MODULE_RESPONSE, number)
        assert frame.message.port_id == port_id
        return {p.procedure_name: p.procedure_id for p in frame.message.procedures}

    async def ready_port(self) -> tuple[int, dict[str, int]]:
        port = await self.create_port()
        return port, await self.load(port)

    async def call(self, port: int, procedure: int, request: fs.User) -> wire.Frame:
        number = self.number()
        await self.feed(wire.request(number, port, procedure, request.SerializeToString()))
        frame = await self.next_frame()
        assert frame.number == number
        return frame

    async def open_stream(self, port: int, procedure: int, address: str = "s") -> int:
        """Request a stream and read its offer; returns the stream's message number."""
        number = self.number()
        payload = fs.User(address=address).SerializeToString()
        await self.feed(wire.request(number, port, procedure, payload))
        offer = await self.next_frame()
        assert (offer.type, offer.number) == (MessageType.STREAM_MESSAGE, number)
        assert (offer.message.sequence_id, offer.message.payload) == (0, b"")
        assert offer.message.port_id == port
        assert not offer.message.closed
        return number

    async def stream_on_new_port(self, procedure: str, address: str = "s") -> tuple[int, int]:
        """A new port, and `procedure` requested on it: (the port, the stream's number)."""
        port, procedures = await self.ready_port()
        return port, await self.open_stream(port, procedures[procedure], address)


@pytest.fixture
async def harness():
    made = Harness()
    await made.start()
    yield made
    await made.session.close()


async def test_open_sends_server_ready_first():
    made = Harness()
    await made.session.open()
    assert len(made.sent) == 1
    assert (made.sent[0].type, made.sent[0].number) == (MessageType.SERVER_READY, 0)


async def test_create_port_numbers_ports_from_one(harness):
    assert [await harness.create_port(name) for name in ("social", "friendships", "")] == [1, 2, 3]


async def test_request_module_lists_every_procedure_with_ids_from_one(harness):
    port = await harness.create_port()
    assert await harness.load(port) == {name: index + 1 for index, name in enumerate(PROCEDURES)}


async def test_request_module_again_returns_the_same_ids(harness):
    port = await harness.create_port()
    first = await harness.load(port)
    assert await harness.load(port) == first


async def test_procedure_ids_are_per_port(harness):
    one, two = await harness.create_port(), await harness.create_port()
    assert await harness.load(one) == await harness.load(two)


async def test_a_second_module_on_a_port_continues_the_numbering(harness):
    port = await harness.create_port()
    await harness.load(port)
    assert await harness.load(port, "OtherService") == {"Ping": len(PROCEDURES) + 1}


async def test_request_module_of_an_unknown_module_is_a_remote_error(harness):
    port = await harness.create_port()
    await harness.feed(wire.request_module(9, port, "NoSuchService"))
    message = await harness.expect_error(9, ErrorCode.NOT_FOUND)
    assert "NoSuchService" in message
    assert "not available" in message
    await harness.quiet()


async def test_request_module_on_an_unknown_port_is_a_remote_error(harness):
    await harness.feed(wire.request_module(9, 42, MODULE))
    message = await harness.expect_error(9, ErrorCode.NOT_FOUND)
    assert "port 42" in message


async def test_request_on_an_unknown_port_is_a_remote_error(harness):
    await harness.feed(wire.request(9, 42, 1, b""))
    message = await harness.expect_error(9, ErrorCode.NOT_FOUND)
    assert "port" in message.lower()


async def test_request_of_an_unknown_procedure_is_a_remote_error(harness):
    port, _ = await harness.ready_port()
    await harness.feed(wire.request(9, port, 99, b""))
    message = await harness.expect_error(9, ErrorCode.NOT_FOUND)
    assert "procedure 99" in message


async def test_request_before_any_module_is_loaded_is_a_remote_error(harness):
    port = await harness.create_port()
    await harness.feed(wire.request(9, port, 1, b""))
    assert "procedure 1" in await harness.expect_error(9, ErrorCode.NOT_FOUND)


async def test_unary_call_answers_with_a_response(harness):
    port, procedures = await harness.ready_port()
    frame = await harness.call(port, procedures["Echo"], fs.User(address="0xabc"))
    assert frame.type == MessageType.RESPONSE
    assert fs.User.FromString(frame.message.payload).address == "0XABC"
    await harness.quiet()
    assert harness.session.open_calls == 0


async def test_undecodable_payload_is_a_remote_error(harness):
    port, procedures = await harness.ready_port()
    await harness.feed(wire.request(9, port, procedures["Echo"], b"\xff\xff\xff"))
    message = await harness.expect_error(9, ErrorCode.BAD_MESSAGE)
    assert "Echo" in message


async def test_client_streams_are_refused(harness):
    port, procedures = await harness.ready_port()
    request = pb.Request(
        message_identifier=spec_identifier(MessageType.REQUEST, 9),
        port_id=port,
        procedure_id=procedures["Echo"],
        client_stream=5,
    )
    await harness.feed(request.SerializeToString())
    assert "client stream" in await harness.expect_error(9, ErrorCode.BAD_MESSAGE)


async def test_server_stream_sends_one_item_per_ack_then_closes(harness):
    port, number = await harness.stream_on_new_port("Count", "n")
    await harness.quiet()
    assert harness.probe.produced == 0, "an item was produced before the first ack"
    for sequence in (1, 2, 3):
        await harness.feed(wire.stream_ack(number, port, sequence - 1))
        item = await harness.next_frame()
        assert (item.type, item.number) == (MessageType.STREAM_MESSAGE, number)
        assert item.message.sequence_id == sequence
        assert item.message.port_id == port
        assert not item.message.closed
        assert fs.User.FromString(item.message.payload).address == f"n-{sequence - 1}"
        await harness.quiet()
        assert harness.probe.produced == sequence, "the server ran ahead of the acks"
    await harness.feed(wire.stream_ack(number, port, 3))
    end = await harness.next_frame()
    assert (end.type, end.number) == (MessageType.STREAM_MESSAGE, number)
    assert end.message.closed
    assert end.message.sequence_id == 3
    assert end.message.payload == b""
    await harness.quiet()
    assert harness.probe.finished == 1
    assert harness.session.open_calls == 0


async def test_stale_or_repeated_acks_produce_no_item(harness):
    port, number = await harness.stream_on_new_port("Count")
    await harness.feed(wire.stream_ack(number, port, 0))
    assert (await harness.next_frame()).message.sequence_id == 1
    # The server now waits for the ack of item 1: acks for other sequences ask for nothing.
    for stale in (0, 0, 5):
        await harness.feed(wire.stream_ack(number, port, stale))
    await harness.quiet()
    assert harness.probe.produced == 1


async def test_cancel_at_the_offer_never_starts_the_generator(harness):
    port, number = await harness.stream_on_new_port("Count")
    await harness.feed(wire.close_stream(number, port, 0))
    await harness.quiet()
    assert harness.probe.started == 0
    assert harness.probe.produced == 0
    assert harness.session.open_calls == 0


async def test_cancel_between_items_stops_the_generator(harness):
    port, number = await harness.stream_on_new_port("Count")
    await harness.feed(wire.stream_ack(number, port, 0))
    assert (await harness.next_frame()).message.sequence_id == 1
    await harness.feed(wire.close_stream(number, port, 1))
    await harness.quiet()
    assert harness.probe.finished == 1, "the generator's finally did not run"
    assert harness.probe.produced == 1
    assert harness.session.open_calls == 0


async def test_cancel_with_a_closing_ack_stops_the_generator(harness):
    port, number = await harness.stream_on_new_port("Count")
    await harness.feed(wire.stream_ack(number, port, 0))
    await harness.next_frame()
    cancel = pb.StreamMessage(
        message_identifier=spec_identifier(MessageType.STREAM_ACK, number),
        port_id=port,
        sequence_id=1,
        closed=True,
    )
    await harness.feed(cancel.SerializeToString())
    await harness.quiet()
    assert harness.probe.finished == 1
    assert harness.session.open_calls == 0


async def test_cancel_while_the_generator_is_busy_stops_it(harness):
    port, number = await harness.stream_on_new_port("Hang")
    await harness.feed(wire.stream_ack(number, port, 0))
    await asyncio.sleep(0.01)
    assert harness.probe.started == 1
    await harness.feed(wire.close_stream(number, port, 0))
    await harness.quiet()
    assert harness.probe.finished == 1, "the generator's finally did not run"
    assert harness.probe.produced == 0
    assert harness.session.open_calls == 0
    # Nothing is left that could still produce the item.
    harness.probe.unblock.set()
    await harness.quiet()


async def test_after_a_cancel_the_stream_is_unknown(harness):
    port, number = await harness.stream_on_new_port("Count")
    await harness.feed(wire.close_stream(number, port, 0))
    await harness.quiet()
    await harness.feed(wire.stream_ack(number, port, 0))
    await harness.expect_error(number, ErrorCode.NOT_FOUND)


async def test_ack_for_an_unknown_stream_is_a_remote_error(harness):
    port, _ = await harness.ready_port()
    await harness.feed(wire.stream_ack(55, port, 0))
    message = await harness.expect_error(55, ErrorCode.NOT_FOUND)
    assert "55" in message
    assert "stream" in message


async def test_ack_for_a_unary_call_number_is_a_remote_error(harness):
    port, procedures = await harness.ready_port()
    frame = await harness.call(port, procedures["Echo"], fs.User(address="x"))
    await harness.feed(wire.stream_ack(frame.number, port, 0))
    await harness.expect_error(frame.number, ErrorCode.NOT_FOUND)


async def test_cancel_of_an_unknown_stream_is_ignored(harness):
    port, _ = await harness.ready_port()
    await harness.feed(wire.close_stream(55, port, 0))
    await harness.quiet()


async def test_destroy_port_cancels_its_streams_only(harness):
    port_one, procedures = await harness.ready_port()
    port_two, _ = await harness.ready_port()
    doomed = await harness.open_stream(port_one, procedures["Hang"])
    await harness.feed(wire.stream_ack(doomed, port_one, 0))
    survivor = await harness.open_stream(port_two, procedures["Count"], "kept")
    await asyncio.sleep(0.01)
    await harness.feed(wire.destroy_port(port_one))
    await harness.quiet()
    assert harness.probe.finished == 1, "the destroyed port's stream was not stopped"
    assert harness.session.open_calls == 1
    await harness.feed(wire.stream_ack(survivor, port_two, 0))
    item = await harness.next_frame()
    assert item.number == survivor
    assert fs.User.FromString(item.message.payload).address == "kept-0"


async def test_a_destroyed_port_takes_no_more_requests(harness):
    port, procedures = await harness.ready_port()
    await harness.feed(wire.destroy_port(port))
    await harness.quiet()
    await harness.feed(wire.request(30, port, procedures["Echo"], b""))
    await harness.expect_error(30, ErrorCode.NOT_FOUND)
    await harness.feed(wire.request_module(31, port, MODULE))
    await harness.expect_error(31, ErrorCode.NOT_FOUND)


async def test_destroying_an_unknown_port_sends_nothing(harness):
    await harness.feed(wire.destroy_port(77))
    await harness.quiet()


async def test_port_limit():
    made = Harness(Limits(max_ports=2))
    await made.start()
    assert [await made.create_port(), await made.create_port()] == [1, 2]
    await made.feed(wire.create_port(50, "third"))
    message = await made.expect_error(50, ErrorCode.TOO_MANY)
    assert "2 ports" in message
    await made.feed(wire.destroy_port(1))
    assert await made.create_port() == 3
    await made.session.close()


async def test_concurrent_request_limit():
    made = Harness(Limits(max_concurrent_requests=2))
    await made.start()
    port, procedures = await made.ready_port()
    first = await made.open_stream(port, procedures["Count"])
    await made.open_stream(port, procedures["Count"])
    await made.feed(wire.request(60, port, procedures["Echo"], b""))
    message = await made.expect_error(60, ErrorCode.TOO_MANY)
    assert "at most 2" in message
    await made.feed(wire.close_stream(first, port, 0))
    await made.quiet()
    frame = await made.call(port, procedures["Echo"], fs.User(address="ok"))
    assert frame.type == MessageType.RESPONSE
    await made.session.close()


async def test_a_message_number_in_use_is_refused(harness):
    port, procedures = await harness.ready_port()
    number = await harness.open_stream(port, procedures["Count"])
    await harness.feed(wire.request(number, port, procedures["Echo"], b""))
    assert "in use" in await harness.expect_error(number, ErrorCode.BAD_MESSAGE)
    # The open stream is untouched.
    await harness.feed(wire.stream_ack(number, port, 0))
    assert (await harness.next_frame()).message.sequence_id == 1


async def test_a_raising_procedure_answers_without_leaking_the_exception(harness):
    port, procedures = await harness.ready_port()
    frame = await harness.call(port, procedures["Boom"], fs.User())
    assert frame.type == MessageType.REMOTE_ERROR_RESPONSE
    assert frame.message.error_code == ErrorCode.INTERNAL
    assert "Boom" in frame.message.error_message
    assert "hunter2" not in frame.message.error_message
    assert "RuntimeError" not in frame.message.error_message
    await harness.quiet()
    assert harness.session.open_calls == 0


async def test_a_raising_stream_answers_without_leaking_the_exception(harness):
    port, number = await harness.stream_on_new_port("BoomStream")
    await harness.feed(wire.stream_ack(number, port, 0))
    assert (await harness.next_frame()).message.sequence_id == 1
    await harness.feed(wire.stream_ack(number, port, 1))
    message = await harness.expect_error(number, ErrorCode.INTERNAL)
    assert "BoomStream" in message
    assert "abc123" not in message
    await harness.quiet()
    assert harness.probe.finished == 1
    assert harness.session.open_calls == 0


async def test_remote_procedure_error_passes_its_message_and_code(harness):
    port, procedures = await harness.ready_port()
    frame = await harness.call(port, procedures["Refuse"], fs.User())
    assert frame.type == MessageType.REMOTE_ERROR_RESPONSE
    assert frame.message.error_code == ErrorCode.NOT_FOUND
    assert frame.message.error_message == "you may not do that"


@pytest.mark.parametrize(
    "data",
    [b"\xff\xff\xff", wire.request(3, 1, 1, b"payload")[:-2]],
    ids=["garbage", "truncated"],
)
async def test_session_answers_a_malformed_frame_with_a_remote_error(harness, data):
    await harness.feed(data)
    message = await harness.expect_error(0, ErrorCode.BAD_MESSAGE)
    assert "not a dcl-rpc message" in message
    assert await harness.create_port() == 1


async def test_session_answers_an_unknown_type_with_its_number(harness):
    data = pb.RpcMessageHeader(message_identifier=spec_identifier(13, 21)).SerializeToString()
    await harness.feed(data)
    assert "unknown message type 13" in await harness.expect_error(21, ErrorCode.BAD_MESSAGE)


@pytest.mark.parametrize(
    "data",
    [wire.response(22, b""), wire.server_ready(), wire.create_port_response(22, 1)],
    ids=["RESPONSE", "SERVER_READY", "CREATE_PORT_RESPONSE"],
)
async def test_server_only_messages_from_a_client_are_refused(harness, data):
    frame = wire.decode(data)
    await harness.feed(data)
    message = await harness.expect_error(frame.number, ErrorCode.BAD_MESSAGE)
    assert frame.type.name in message


async def test_text_frames_are_refused(harness):
    await harness.session.reject_text_frame()
    assert "binary" in await harness.expect_error(0, ErrorCode.BAD_MESSAGE)


async def test_close_stops_every_stream():
    made = Harness()
    await made.start()
    port, procedures = await made.ready_port()
    await made.open_stream(port, procedures["Count"])
    busy = await made.open_stream(port, procedures["Hang"])
    await made.feed(wire.stream_ack(busy, port, 0))
    await asyncio.sleep(0.01)
    await made.session.close()
    assert made.session.open_calls == 0
    assert made.probe.finished == 1, "the busy generator's finally did not run"
    made.probe.unblock.set()
    await made.quiet()


async def test_nothing_is_sent_after_close():
    made = Harness()
    await made.start()
    port, procedures = await made.ready_port()
    await made.session.close()
    await made.feed(wire.create_port(made.number(), "late"))
    await made.feed(wire.request_module(made.number(), port, MODULE))
    await made.feed(wire.request(made.number(), port, procedures["Echo"], b""))
    await made.feed(wire.stream_ack(99, port, 0))
    await made.feed(b"\xff")
    await made.quiet()
    assert made.session.open_calls == 0
