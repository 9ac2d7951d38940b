from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RpcMessageTypes(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RpcMessageTypes_EMPTY: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_REQUEST: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_RESPONSE: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_STREAM_MESSAGE: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_STREAM_ACK: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_CREATE_PORT: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_CREATE_PORT_RESPONSE: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_REQUEST_MODULE: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_REQUEST_MODULE_RESPONSE: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_REMOTE_ERROR_RESPONSE: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_DESTROY_PORT: _ClassVar[RpcMessageTypes]
    RpcMessageTypes_SERVER_READY: _ClassVar[RpcMessageTypes]
RpcMessageTypes_EMPTY: RpcMessageTypes
RpcMessageTypes_REQUEST: RpcMessageTypes
RpcMessageTypes_RESPONSE: RpcMessageTypes
RpcMessageTypes_STREAM_MESSAGE: RpcMessageTypes
RpcMessageTypes_STREAM_ACK: RpcMessageTypes
RpcMessageTypes_CREATE_PORT: RpcMessageTypes
RpcMessageTypes_CREATE_PORT_RESPONSE: RpcMessageTypes
RpcMessageTypes_REQUEST_MODULE: RpcMessageTypes
RpcMessageTypes_REQUEST_MODULE_RESPONSE: RpcMessageTypes
RpcMessageTypes_REMOTE_ERROR_RESPONSE: RpcMessageTypes
RpcMessageTypes_DESTROY_PORT: RpcMessageTypes
RpcMessageTypes_SERVER_READY: RpcMessageTypes

class RpcMessageHeader(_message.Message):
    __slots__ = ("message_identifier",)
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    def __init__(self, message_identifier: _Optional[int] = ...) -> None: ...

class CreatePort(_message.Message):
    __slots__ = ("message_identifier", "port_name")
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PORT_NAME_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    port_name: str
    def __init__(self, message_identifier: _Optional[int] = ..., port_name: _Optional[str] = ...) -> None: ...

class CreatePortResponse(_message.Message):
    __slots__ = ("message_identifier", "port_id")
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PORT_ID_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    port_id: int
    def __init__(self, message_identifier: _Optional[int] = ..., port_id: _Optional[int] = ...) -> None: ...

class RequestModule(_message.Message):
    __slots__ = ("message_identifier", "port_id", "module_name")
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PORT_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_NAME_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    port_id: int
    module_name: str
    def __init__(self, message_identifier: _Optional[int] = ..., port_id: _Optional[int] = ..., module_name: _Optional[str] = ...) -> None: ...

class ModuleProcedure(_message.Message):
    __slots__ = ("procedure_id", "procedure_name")
    PROCEDURE_ID_FIELD_NUMBER: _ClassVar[int]
    PROCEDURE_NAME_FIELD_NUMBER: _ClassVar[int]
    procedure_id: int
    procedure_name: str
    def __init__(self, procedure_id: _Optional[int] = ..., procedure_name: _Optional[str] = ...) -> None: ...

class RequestModuleResponse(_message.Message):
    __slots__ = ("message_identifier", "port_id", "procedures")
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PORT_ID_FIELD_NUMBER: _ClassVar[int]
    PROCEDURES_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    port_id: int
    procedures: _containers.RepeatedCompositeFieldContainer[ModuleProcedure]
    def __init__(self, message_identifier: _Optional[int] = ..., port_id: _Optional[int] = ..., procedures: _Optional[_Iterable[_Union[ModuleProcedure, _Mapping]]] = ...) -> None: ...

class DestroyPort(_message.Message):
    __slots__ = ("message_identifier", "port_id")
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PORT_ID_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    port_id: int
    def __init__(self, message_identifier: _Optional[int] = ..., port_id: _Optional[int] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("message_identifier", "port_id", "procedure_id", "client_stream", "payload")
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PORT_ID_FIELD_NUMBER: _ClassVar[int]
    PROCEDURE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_STREAM_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    port_id: int
    procedure_id: int
    client_stream: int
    payload: bytes
    def __init__(self, message_identifier: _Optional[int] = ..., port_id: _Optional[int] = ..., procedure_id: _Optional[int] = ..., client_stream: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class RemoteError(_message.Message):
    __slots__ = ("message_identifier", "error_code", "error_message")
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    error_code: int
    error_message: str
    def __init__(self, message_identifier: _Optional[int] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("message_identifier", "payload")
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    payload: bytes
    def __init__(self, message_identifier: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class StreamMessage(_message.Message):
    __slots__ = ("message_identifier", "port_id", "sequence_id", "payload", "closed", "ack")
    MESSAGE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PORT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    message_identifier: int
    port_id: int
    sequence_id: int
    payload: bytes
    closed: bool
    ack: bool
    def __init__(self, message_identifier: _Optional[int] = ..., port_id: _Optional[int] = ..., sequence_id: _Optional[int] = ..., payload: _Optional[bytes] = ..., closed: _Optional[bool] = ..., ack: _Optional[bool] = ...) -> None: ...
