"""Generated input against the frame decoder, the dcl-rpc server session and the real
WebSocket: whatever a client sends, the service answers in frames, keeps the connection
usable and lets other clients carry on."""

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import websockets
from google.protobuf.message import Message
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from presence import signed_auth
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
from presence.rpc.wire import MessageType
from tests.support import ONLINE, befriend, connect, service_with

NUMBER_MASK = 0x07FFFFFF
SERVER_TYPES = {
    MessageType.RESPONSE,
    MessageType.STREAM_MESSAGE,
    MessageType.CREATE_PORT_RESPONSE,
    MessageType.REQUEST_MODULE_RESPONSE,
    MessageType.REMOTE_ERROR_RESPONSE,
    MessageType.SERVER_READY,
}
ANSWERED = {MessageType.REQUEST, MessageType.CREATE_PORT, MessageType.REQUEST_MODULE}


# --- Strategies --------------------------------------------------------------------------------

FIXED32 = st.integers(0, 2**32 - 1)
TEXT = st.text(max_size=40)
BLOB = st.binary(max_size=200)


def serialized(strategy: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    return strategy.map(lambda message: message.SerializeToString())


# The message of each type, with any value in every field but the identifier.
BODIES: dict[MessageType, st.SearchStrategy[Message]] = {
    MessageType.REQUEST: st.builds(
        pb.Request, port_id=FIXED32, procedure_id=FIXED32, client_stream=FIXED32, payload=BLOB
    ),
    MessageType.RESPONSE: st.builds(pb.Response, payload=BLOB),
    MessageType.STREAM_MESSAGE: st.builds(
        pb.StreamMessage,
        port_id=FIXED32,
        sequence_id=FIXED32,
        payload=BLOB,
        closed=st.booleans(),
        ack=st.booleans(),
    ),
    MessageType.CREATE_PORT: st.builds(pb.CreatePort, port_name=TEXT),
    MessageType.CREATE_PORT_RESPONSE: st.builds(pb.CreatePortResponse, port_id=FIXED32),
    MessageType.REQUEST_MODULE: st.builds(pb.RequestModule, port_id=FIXED32, module_name=TEXT),
    MessageType.REQUEST_MODULE_RESPONSE: st.builds(
        pb.RequestModuleResponse,
        port_id=FIXED32,
        procedures=st.lists(
            st.builds(pb.ModuleProcedure, procedure_id=FIXED32, procedure_name=TEXT),
            max_size=4,
        ),
    ),
    MessageType.REMOTE_ERROR_RESPONSE: st.builds(
        pb.RemoteError, error_code=FIXED32, error_message=TEXT
    ),
    MessageType.DESTROY_PORT: st.builds(pb.DestroyPort, port_id=FIXED32),
    MessageType.SERVER_READY: st.builds(pb.RpcMessageHeader),
}
BODIES[MessageType.STREAM_ACK] = BODIES[MessageType.STREAM_MESSAGE]


def with_identifier(body: Message, identifier: int) -> bytes:
    body.message_identifier = identifier
    return body.SerializeToString()


# Every dcl-rpc message, with any value in every field (so any type in the identifier).
VALID_FRAMES = st.sampled_from(MessageType).flatmap(
    lambda message_type: st.builds(with_identifier, BODIES[message_type], FIXED32)
)


def varint(value: int, padding: int = 0) -> bytes:
    """`value` as a protobuf varint, made `padding` bytes longer than needed."""
    out = bytearray()
    while True:
        out.append(value & 0x7F)
        value >>= 7
        if not value:
            break
    out.extend(b"\x00" * padding)
    for i in range(len(out) - 1):
        out[i] |= 0x80
    return bytes(out)


@st.composite
def huge_varint_frames(draw: st.DrawFn) -> bytes:
    """Fields whose tags, values or lengths are varints far beyond any field's range."""
    frame = draw(st.sampled_from([b"", wire.create_port(1, "p"), b"\x0d\x01\x00\x00\x28"]))
    for _ in range(draw(st.integers(1, 4))):
        number = draw(st.one_of(st.integers(1, 8), st.integers(1, 2**64)))
        kind = draw(st.integers(0, 7))
        value = draw(st.one_of(st.integers(0, 2**64), st.integers(2**64, 2**140)))
        frame += varint(number << 3 | kind, draw(st.integers(0, 3)))
        frame += varint(value, draw(st.integers(0, 12)))
    return frame + draw(st.binary(max_size=8))


@st.composite
def truncated(draw: st.DrawFn, frames: st.SearchStrategy[bytes] = VALID_FRAMES) -> bytes:
    frame = draw(frames)
    return frame[: draw(st.integers(0, max(0, len(frame) - 1)))]


@st.composite
def mutated(draw: st.DrawFn, frames: st.SearchStrategy[bytes] = VALID_FRAMES) -> bytes:
    """A valid frame with bytes flipped, inserted, deleted or cut off."""
    data = bytearray(draw(frames))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if operation == "insert" or not data:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "flip":
            data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, drawn in proportion to its weight (one_of flattens nested
    one_ofs into equal shares, which would drown the frames that matter)."""
    expanded = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(expanded) - 1).flatmap(lambda i: expanded[i])


ANY_BYTES = weighted(
    (1, st.binary(max_size=300)),
    (1, VALID_FRAMES),
    (1, truncated()),
    (1, mutated()),
    (1, huge_varint_frames()),
)


# --- The decoder -------------------------------------------------------------------------------


def decodes_or_is_malformed(data: bytes) -> wire.Frame | None:
    """Decode `data`: a frame, or None for MalformedFrame; anything else is raised."""
    try:
        frame = wire.decode(data)
    except wire.MalformedFrame as exc:
        assert 0 <= exc.number <= NUMBER_MASK
        assert str(exc)
        return None
    assert isinstance(frame.type, MessageType)
    assert 0 <= frame.number <= NUMBER_MASK
    return frame


def owed_answers(frames: list[wire.Frame | None]) -> set[int]:
    """The numbers a session must answer: every port, module and call asked for, except a
    call whose port was destroyed or that the client closed itself (a client may close a
    stream before its first message arrives, and is then owed nothing)."""
    sent = [frame for frame in frames if frame is not None]
    destroyed = any(frame.type == MessageType.DESTROY_PORT for frame in sent)
    closed = {
        frame.number
        for frame in sent
        if frame.type == MessageType.STREAM_MESSAGE and frame.message.closed
    }
    return {
        frame.number
        for frame in sent
        if frame.type in ANSWERED
        and not (frame.type == MessageType.REQUEST and (destroyed or frame.number in closed))
    }


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_decode_of_random_bytes_raises_only_malformed_frame(data):
    decodes_or_is_malformed(data)


@settings(max_examples=300, deadline=None)
@given(truncated())
def test_decode_of_truncated_frames_raises_only_malformed_frame(data):
    decodes_or_is_malformed(data)


@settings(max_examples=300, deadline=None)
@given(mutated())
def test_decode_of_mutated_frames_raises_only_malformed_frame(data):
    decodes_or_is_malformed(data)


@settings(max_examples=300, deadline=None)
@given(huge_varint_frames())
def test_decode_of_huge_varints_raises_only_malformed_frame(data):
    decodes_or_is_malformed(data)


@settings(max_examples=300, deadline=None)
@given(VALID_FRAMES)
def test_decode_of_well_formed_messages_reads_their_identifier(data):
    """Any well-formed message decodes when its identifier names a known type."""
    identifier = pb.RpcMessageHeader.FromString(data).message_identifier
    raw_type, number = (identifier >> 27) & 0xF, identifier & NUMBER_MASK
    frame = decodes_or_is_malformed(data)
    if raw_type in MessageType._value2member_map_:
        assert frame is not None
        assert (frame.type, frame.number) == (raw_type, number)
    else:
        assert frame is None
        with pytest.raises(wire.MalformedFrame, match=f"unknown message type {raw_type}"):
            wire.decode(data)


# --- The server session, in memory -------------------------------------------------------------


async def echo(context: object, request: pb.DestroyPort) -> pb.DestroyPort:
    return request


async def fail(context: object, request: pb.DestroyPort) -> pb.DestroyPort:
    raise RuntimeError("a procedure failed")


async def refuse(context: object, request: pb.DestroyPort) -> pb.DestroyPort:
    raise RemoteProcedureError("refused", ErrorCode.TOO_MANY)


async def count(context: object, request: pb.DestroyPort) -> AsyncIterator[pb.DestroyPort]:
    for i in range(request.port_id % 4):
        yield pb.DestroyPort(port_id=i)


async def forever(context: object, request: pb.DestroyPort) -> AsyncIterator[pb.DestroyPort]:
    while True:
        await asyncio.sleep(0)
        yield request


async def broken(context: object, request: pb.DestroyPort) -> AsyncIterator[pb.DestroyPort]:
    yield request
    raise RuntimeError("a stream failed")


MODULE = RpcModule(
    "M",
    (
        unary("Echo", pb.DestroyPort, echo),
        unary("Fail", pb.DestroyPort, fail),
        unary("Refuse", pb.DestroyPort, refuse),
        server_stream("Count", pb.DestroyPort, count),
        server_stream("Forever", pb.DestroyPort, forever),
        server_stream("Broken", pb.DestroyPort, broken),
    ),
)

SMALL = st.integers(0, 6)
# Mostly ports and procedures that exist, sometimes any.
PORTS = weighted((4, st.integers(1, 2)), (1, st.integers(0, 3)), (1, FIXED32))
PROCEDURES = weighted((4, st.integers(1, 8)), (1, FIXED32))


def client_streamed_request(number: int, port_id: int, procedure_id: int) -> bytes:
    return pb.Request(
        message_identifier=wire.pack_identifier(MessageType.REQUEST, number),
        port_id=port_id,
        procedure_id=procedure_id,
        client_stream=1,
    ).SerializeToString()


def session_frames(payloads: st.SearchStrategy[bytes], module: str) -> st.SearchStrategy[bytes]:
    """Frames a client could send, aimed at ports, procedures and streams that may exist."""
    return weighted(
        (6, st.builds(wire.request, SMALL, PORTS, PROCEDURES, payloads)),
        (3, st.builds(wire.stream_ack, SMALL, PORTS, SMALL)),
        (1, st.builds(wire.close_stream, SMALL, PORTS, SMALL)),
        (1, st.builds(wire.create_port, SMALL, TEXT)),
        (1, st.builds(wire.request_module, SMALL, PORTS, st.one_of(st.just(module), TEXT))),
        (1, st.builds(client_streamed_request, SMALL, PORTS, PROCEDURES)),
        (1, st.builds(wire.destroy_port, PORTS)),
        (1, st.builds(wire.response, SMALL, BLOB)),
        (3, ANY_BYTES),
    )


IN_MEMORY_FRAMES = session_frames(
    st.one_of(serialized(st.builds(pb.DestroyPort, port_id=FIXED32)), BLOB), "M"
)


async def serve(frames: list[tuple[bytes, bool]]) -> list[bytes]:
    """Feed `frames` (data, refused?) to a fresh session; every frame it sent."""
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    session = RpcServerSession(send, {"M": MODULE}, Limits(max_ports=3, max_concurrent_requests=4))
    await session.open()
    for data, refused in frames:
        if refused:
            await session.refuse_frame(data, "slow down")
        else:
            await session.handle_frame(data)
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    before_close = list(sent)
    await session.close()
    assert session.open_calls == 0
    assert sent == before_close, "the session sent frames after it was closed"
    return sent


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(IN_MEMORY_FRAMES, st.booleans()), max_size=20))
def test_the_session_never_raises_and_sends_only_frames(frames):
    sent = asyncio.run(serve(frames))
    decoded = [wire.decode(data) for data in sent]
    assert decoded[0].type == MessageType.SERVER_READY
    assert all(frame.type in SERVER_TYPES for frame in decoded), decoded
    answered = {frame.number for frame in decoded}
    assert owed_answers([decodes_or_is_malformed(data) for data, _ in frames]) <= answered


# --- Bytes read before decoding: the first frame and refused frames -------------------------

# Bytes JSON reads as whitespace or the start of an object or string, and the other bytes
# bytes.strip() strips: a message number made of them is what a test of bytes may misread.
JSON_LIKE = st.sampled_from(b'{ \t\n\r\x0b\x0c"')
# The whole range of message numbers, with those made of such bytes drawn often.
NUMBERS = st.one_of(
    st.integers(0, NUMBER_MASK),
    st.lists(st.one_of(JSON_LIKE, st.integers(0, 255)), min_size=4, max_size=4).map(
        lambda octets: int.from_bytes(bytes(octets), "little") & NUMBER_MASK
    ),
)
# Fields a decoder skips or overwrites, each starting with a byte JSON could start with:
# an empty group of field 15 (`{|`), field 4 as a varint, field 1 as 64 bits, as bytes and
# as the header itself, read again later.
SKIPPED_FIELDS = st.one_of(
    st.just(b"{|"),
    st.integers(0, 2**64 - 1).map(lambda value: b" " + varint(value)),
    st.binary(min_size=8, max_size=8).map(lambda value: b"\t" + value),
    st.binary(max_size=20).map(lambda value: b"\n" + varint(len(value)) + value),
    st.binary(min_size=4, max_size=4).map(lambda value: b"\r" + value),
)


@st.composite
def dcl_rpc_frames(draw: st.DrawFn) -> tuple[MessageType, int, bytes]:
    """A valid dcl-rpc frame of any type, number and content: (its type, number, bytes).

    Mostly as @dcl/rpc writes them, the header first; sometimes after fields the decoder
    skips or overwrites (SKIPPED_FIELDS), which make it no less a dcl-rpc frame."""
    message_type = draw(st.sampled_from(MessageType))
    number = draw(NUMBERS)
    data = with_identifier(draw(BODIES[message_type]), wire.pack_identifier(message_type, number))
    prefix = draw(weighted((3, st.just(b"")), (1, SKIPPED_FIELDS)))
    return message_type, number, prefix + data


# JSON objects of strings, as Decentraland's clients send signed-fetch headers, and written
# in other ways JSON allows.
@st.composite
def sign_in_frames(draw: st.DrawFn) -> str:
    headers = draw(st.dictionaries(st.text(max_size=30), st.text(max_size=200), max_size=6))
    leading = draw(st.sampled_from(["", " ", "\n", "\t \n"]))
    return leading + json.dumps(
        headers,
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, 1, "\t"])),
    )


@settings(max_examples=2000, deadline=None)
@given(dcl_rpc_frames())
# The first frame of @dcl/rpc's connection whose counter stands at 0x17B: 0x0d then `{`.
@example((MessageType.CREATE_PORT, 0x17B, wire.create_port(0x17B, "reconnect")))
def test_no_dcl_rpc_frame_is_taken_for_a_sign_in(frame):
    message_type, number, data = frame
    decoded = wire.decode(data)
    assert (decoded.type, decoded.number) == (message_type, number)
    assert not signed_auth.is_sign_in_frame(None, data)


@settings(max_examples=500, deadline=None)
@given(sign_in_frames())
def test_a_json_object_of_headers_is_a_sign_in_and_no_dcl_rpc_frame(text):
    assert signed_auth.is_sign_in_frame(text, None)
    assert signed_auth.is_sign_in_frame(None, text.encode())
    with pytest.raises(wire.MalformedFrame):
        wire.decode(text.encode())


@settings(max_examples=1000, deadline=None)
@given(dcl_rpc_frames())
def test_a_frame_over_the_budget_is_refused_by_its_own_number(frame):
    """Answered with 429 when its client waits for an answer, else dropped in silence."""
    message_type, number, data = frame
    sent = asyncio.run(serve([(data, True)]))
    answered = message_type in ANSWERED
    assert sent[1:] == (
        [wire.remote_error(number, ErrorCode.TOO_MANY, "slow down")] if answered else []
    )


@settings(max_examples=300, deadline=None)
@given(sign_in_frames())
def test_a_sign_in_over_the_budget_is_dropped(text):
    assert asyncio.run(serve([(text.encode(), True)])) == [wire.server_ready()]


# --- The real WebSocket ------------------------------------------------------------------------

ADDRESSES = st.one_of(TEXT, st.from_regex(r"0x[0-9a-fA-F]{40}", fullmatch=True))
TOKENS = st.one_of(st.none(), TEXT)


def auth(token: str | None) -> fs.Payload:
    return fs.Payload() if token is None else fs.Payload(synapse_token=token)


@st.composite
def friendship_payloads(draw: st.DrawFn) -> fs.UpdateFriendshipPayload:
    kind = draw(
        st.sampled_from(["request", "accept", "reject", "delete", "cancel", "block", "unblock"])
    )
    body = getattr(fs, f"{kind.capitalize()}Payload")(user=fs.User(address=draw(ADDRESSES)))
    if kind == "request" and draw(st.booleans()):
        body.message = draw(st.text(max_size=1100))
    event = fs.FriendshipEventPayload(**{kind: body}) if draw(st.booleans()) else None
    return fs.UpdateFriendshipPayload(event=event, auth_token=auth(draw(TOKENS)))


SERVICE_PAYLOADS = st.one_of(
    serialized(st.builds(auth, TOKENS)),
    serialized(
        st.builds(
            fs.MutualFriendsPayload,
            user=st.builds(fs.User, address=ADDRESSES),
            auth_token=st.builds(auth, TOKENS),
        )
    ),
    serialized(friendship_payloads()),
    serialized(
        st.builds(
            fs.StatusPayload,
            status=st.builds(fs.Status, type=st.integers(-(2**31), 2**31 - 1)),
        )
    ),
    BLOB,
)

WEBSOCKET_FRAMES = weighted(
    (10, session_frames(SERVICE_PAYLOADS, "FriendshipsService")), (1, st.text(max_size=100))
)

# Numbers of the check calls, far from the generated ones.
CHECK = NUMBER_MASK - 10


def top_level_fields(data: bytes) -> list[int]:
    """The field numbers at the top level of a well-formed protobuf message."""

    def read_varint(at: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = data[at]
            value |= (byte & 0x7F) << shift
            at += 1
            shift += 7
            if not byte & 0x80:
                return value, at

    fields, at = [], 0
    while at < len(data):
        key, at = read_varint(at)
        fields.append(key >> 3)
        kind = key & 7
        if kind == 0:
            _, at = read_varint(at)
        elif kind == 1:
            at += 8
        elif kind == 2:
            length, at = read_varint(at)
            at += length
        elif kind == 5:
            at += 4
        else:
            raise AssertionError(f"wire type {kind} in a server message")
    return fields


def assert_sound(frame: wire.Frame) -> None:
    """A frame the service sent: a server message, and no internal error in it."""
    assert frame.type in SERVER_TYPES, frame
    if frame.type == MessageType.REMOTE_ERROR_RESPONSE:
        assert frame.message.error_code != ErrorCode.INTERNAL, frame
        assert frame.message.error_message
    elif frame.type in (MessageType.RESPONSE, MessageType.STREAM_MESSAGE):
        # In every FriendshipsService response, field 2 is internal_server_error.
        assert 2 not in top_level_fields(frame.message.payload), frame


class Probe:
    """One WebSocket connection, frames in and out as they are."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.answered: set[int] = set()

    async def receive(self) -> wire.Frame:
        data = await asyncio.wait_for(self.ws.recv(), 5)
        assert isinstance(data, bytes), f"the server sent text: {data!r}"
        frame = wire.decode(data)
        assert_sound(frame)
        self.answered.add(frame.number)
        return frame

    async def all_answered(self, frames: list[bytes | str]) -> None:
        """Every call, port and module asked for got an answer (see owed_answers)."""
        expected = owed_answers(
            [decodes_or_is_malformed(f) for f in frames if isinstance(f, bytes)]
        )
        while not expected <= self.answered:
            await self.receive()

    async def answer(self, number: int) -> wire.Frame:
        """The answer to `number`, passing over (and checking) answers to anything else."""
        while True:
            frame = await self.receive()
            if frame.number == number and frame.type != MessageType.STREAM_MESSAGE:
                return frame

    async def still_serves(self) -> None:
        """A port, the module and a call, all well-formed, are answered as they should be."""
        await self.ws.send(wire.create_port(CHECK, "check"))
        frame = await self.answer(CHECK)
        assert frame.type == MessageType.CREATE_PORT_RESPONSE, frame
        port = frame.message.port_id
        await self.ws.send(wire.request_module(CHECK + 1, port, "FriendshipsService"))
        frame = await self.answer(CHECK + 1)
        assert frame.type == MessageType.REQUEST_MODULE_RESPONSE, frame
        procedures = {p.procedure_name: p.procedure_id for p in frame.message.procedures}
        payload = fs.Payload().SerializeToString()
        await self.ws.send(wire.request(CHECK + 2, port, procedures["GetRequestEvents"], payload))
        frame = await self.answer(CHECK + 2)
        assert frame.type == MessageType.RESPONSE, frame
        response = fs.RequestEventsResponse.FromString(frame.message.payload)
        assert response.WhichOneof("response") == "events", response


@asynccontextmanager
async def probe(url: str, token: str) -> AsyncIterator[Probe]:
    async with websockets.connect(f"{url}?access_token={token}") as ws:
        client = Probe(ws)
        assert (await client.receive()).type == MessageType.SERVER_READY
        await ws.send(wire.create_port(1, "fuzz"))
        assert (await client.answer(1)).type == MessageType.CREATE_PORT_RESPONSE
        await ws.send(wire.request_module(2, 1, "FriendshipsService"))
        assert (await client.answer(2)).type == MessageType.REQUEST_MODULE_RESPONSE
        client.answered.clear()
        yield client


# A frame budget so large that every frame reaches the decoder.
fuzz_service = service_with(
    {"PRESENCE_FRAMES_PER_SECOND": "1000000", "PRESENCE_FRAME_BURST": "1000000"}
)


@pytest.mark.django_db(transaction=True)
async def test_generated_frames_over_the_websocket_disturb_no_one(fuzz_service, make_user):
    url = fuzz_service.ws_url
    senders = itertools.cycle([make_user() for _ in range(3)])
    bystander, friend = make_user(), make_user()
    await befriend(url, bystander, friend)
    loop = asyncio.get_running_loop()
    async with connect(url, bystander.token) as watcher:
        updates = await watcher.subscribe_presence()

        async def example(frames: list[bytes | str]) -> None:
            async with probe(url, next(senders).token) as client:
                for frame in frames:
                    await client.ws.send(frame)
                await client.still_serves()
                await client.all_answered(frames)
            assert (await watcher.request_events()).WhichOneof("response") == "events"

        @settings(
            max_examples=100,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(st.lists(WEBSOCKET_FRAMES, min_size=1, max_size=12))
        def each(frames):
            asyncio.run_coroutine_threadsafe(example(frames), loop).result(timeout=60)

        await asyncio.to_thread(each)

        # The watcher saw nothing of it, and still hears its friend.
        await updates.expect_nothing(within=0.2)
        assert watcher.rpc.unsolicited.get_nowait().type == MessageType.SERVER_READY
        assert watcher.rpc.unsolicited.empty()
        async with connect(url, friend.token) as f:
            await f.set_status(ONLINE)
            await updates.presence_until(friend.address, ONLINE)
    log = fuzz_service.log.read_text(errors="replace")
    assert "Traceback" not in log, fuzz_service.log_tail(80)


@pytest.mark.django_db(transaction=True)
async def test_any_dcl_rpc_frame_first_on_a_connection_is_served(fuzz_service, make_user):
    """Whatever its type, number and content, a dcl-rpc first frame is served as dcl-rpc,
    never refused as a sign-in."""
    url = fuzz_service.ws_url
    senders = itertools.cycle([make_user() for _ in range(3)])
    loop = asyncio.get_running_loop()

    async def example(data: bytes) -> None:
        async with websockets.connect(f"{url}?access_token={next(senders).token}") as ws:
            client = Probe(ws)
            assert (await client.receive()).type == MessageType.SERVER_READY
            await ws.send(data)
            await client.still_serves()
            await client.all_answered([data])

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(dcl_rpc_frames())
    def each(frame):
        _, number, data = frame
        assume(not CHECK <= number <= CHECK + 2)
        asyncio.run_coroutine_threadsafe(example(data), loop).result(timeout=60)

    await asyncio.to_thread(each)
