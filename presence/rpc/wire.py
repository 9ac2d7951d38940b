"""Encoding and decoding of dcl-rpc frames, byte-compatible with @dcl/rpc 1.1.2."""

from dataclasses import dataclass
from enum import IntEnum

from google.protobuf.message import DecodeError, Message

from presence.rpc import dcl_rpc_pb2 as pb

_NUMBER_MASK = 0x07FFFFFF


class MessageType(IntEnum):
    REQUEST = 1
    RESPONSE = 2
    STREAM_MESSAGE = 3
    STREAM_ACK = 4
    CREATE_PORT = 5
    CREATE_PORT_RESPONSE = 6
    REQUEST_MODULE = 7
    REQUEST_MODULE_RESPONSE = 8
    REMOTE_ERROR_RESPONSE = 9
    DESTROY_PORT = 10
    SERVER_READY = 11


_MESSAGE_CLASSES: dict[MessageType, type[Message] | None] = {
    MessageType.REQUEST: pb.Request,
    MessageType.RESPONSE: pb.Response,
    MessageType.STREAM_MESSAGE: pb.StreamMessage,
    MessageType.STREAM_ACK: pb.StreamMessage,
    MessageType.CREATE_PORT: pb.CreatePort,
    MessageType.CREATE_PORT_RESPONSE: pb.CreatePortResponse,
    MessageType.REQUEST_MODULE: pb.RequestModule,
    MessageType.REQUEST_MODULE_RESPONSE: pb.RequestModuleResponse,
    MessageType.REMOTE_ERROR_RESPONSE: pb.RemoteError,
    MessageType.DESTROY_PORT: pb.DestroyPort,
    MessageType.SERVER_READY: None,
}


# By number: a dict lookup instead of an enum call for every frame.
_TYPES = {message_type.value: message_type for message_type in MessageType}


class MalformedFrame(ValueError):
    """A frame that is not a dcl-rpc message. `number` is its message number when known."""

    def __init__(self, reason: str, number: int = 0) -> None:
        super().__init__(reason)
        self.number = number


@dataclass(frozen=True, slots=True)
class Frame:
    type: MessageType
    number: int
    message: Message | None


def pack_identifier(message_type: int, number: int) -> int:
    return ((message_type & 0xF) << 27) | (number & _NUMBER_MASK)


def unpack_identifier(identifier: int) -> tuple[int, int]:
    return (identifier >> 27) & 0xF, identifier & _NUMBER_MASK


def decode(data: bytes) -> Frame:
    """Read the header first, then the message its type names, as @dcl/rpc does."""
    try:
        header = pb.RpcMessageHeader.FromString(data)
    except DecodeError as exc:
        raise MalformedFrame(f"not a dcl-rpc message: {exc}") from exc
    raw_type, number = unpack_identifier(header.message_identifier)
    message_type = _TYPES.get(raw_type)
    if message_type is None:
        raise MalformedFrame(f"unknown message type {raw_type}", number)
    message_class = _MESSAGE_CLASSES[message_type]
    if message_class is None:
        return Frame(message_type, number, None)
    try:
        return Frame(message_type, number, message_class.FromString(data))
    except DecodeError as exc:
        raise MalformedFrame(f"malformed {message_type.name} message: {exc}", number) from exc


def _ident(message_type: MessageType, number: int) -> int:
    return pack_identifier(message_type, number)


# --- Server to client ------------------------------------------------------------------


def server_ready() -> bytes:
    return pb.RpcMessageHeader(
        message_identifier=_ident(MessageType.SERVER_READY, 0)
    ).SerializeToString()


def create_port_response(number: int, port_id: int) -> bytes:
    return pb.CreatePortResponse(
        message_identifier=_ident(MessageType.CREATE_PORT_RESPONSE, number), port_id=port_id
    ).SerializeToString()


def request_module_response(number: int, port_id: int, procedures: dict[int, str]) -> bytes:
    return pb.RequestModuleResponse(
        message_identifier=_ident(MessageType.REQUEST_MODULE_RESPONSE, number),
        port_id=port_id,
        procedures=[
            pb.ModuleProcedure(procedure_id=pid, procedure_name=name)
            for pid, name in procedures.items()
        ],
    ).SerializeToString()


def response(number: int, payload: bytes) -> bytes:
    return pb.Response(
        message_identifier=_ident(MessageType.RESPONSE, number), payload=payload
    ).SerializeToString()


def remote_error(number: int, code: int, message: str) -> bytes:
    return pb.RemoteError(
        message_identifier=_ident(MessageType.REMOTE_ERROR_RESPONSE, number),
        error_code=code,
        error_message=message,
    ).SerializeToString()


def stream_message(
    number: int, port_id: int, sequence_id: int, payload: bytes = b"", closed: bool = False
) -> bytes:
    return pb.StreamMessage(
        message_identifier=_ident(MessageType.STREAM_MESSAGE, number),
        port_id=port_id,
        sequence_id=sequence_id,
        payload=payload,
        closed=closed,
    ).SerializeToString()


# --- Client to server (for clients written in Python: tests and benchmarks) ------------


def create_port(number: int, port_name: str) -> bytes:
    return pb.CreatePort(
        message_identifier=_ident(MessageType.CREATE_PORT, number), port_name=port_name
    ).SerializeToString()


def request_module(number: int, port_id: int, module_name: str) -> bytes:
    return pb.RequestModule(
        message_identifier=_ident(MessageType.REQUEST_MODULE, number),
        port_id=port_id,
        module_name=module_name,
    ).SerializeToString()


def request(number: int, port_id: int, procedure_id: int, payload: bytes) -> bytes:
    return pb.Request(
        message_identifier=_ident(MessageType.REQUEST, number),
        port_id=port_id,
        procedure_id=procedure_id,
        payload=payload,
    ).SerializeToString()


def stream_ack(number: int, port_id: int, sequence_id: int) -> bytes:
    return pb.StreamMessage(
        message_identifier=_ident(MessageType.STREAM_ACK, number),
        port_id=port_id,
        sequence_id=sequence_id,
        ack=True,
    ).SerializeToString()


def close_stream(number: int, port_id: int, sequence_id: int) -> bytes:
    """A client's cancel: @dcl/rpc sends it as a STREAM_MESSAGE with closed set."""
    return stream_message(number, port_id, sequence_id, closed=True)


def destroy_port(port_id: int) -> bytes:
    return pb.DestroyPort(
        message_identifier=_ident(MessageType.DESTROY_PORT, 0), port_id=port_id
    ).SerializeToString()
