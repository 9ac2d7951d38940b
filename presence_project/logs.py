"""Log records that say where they come from, as plain text or one JSON object per line.

`ContextFilter` adds this process, the connection the record is about (its id and user
address) and the RPC call being served, from context variables the WebSocket side sets;
`JsonFormatter` writes every record as a JSON object (LOG_FORMAT=json). Nothing here adds a
token or a signature: the code that logs never passes them.
"""

import json
import logging
from datetime import UTC, datetime

from presence import observability
from presence.delivery import process
from presence.rpc.server import current_call

# Attributes a record may carry beyond the standard ones: the context filled in here, and
# the `extra` of presence.observability's events.
_FIELDS = (
    "process",
    "connection",
    "address",
    "rpc_module",
    "rpc_procedure",
    "event",
    "reason",
    "outcome",
    "duration_ms",
)


class ContextFilter(logging.Filter):
    """Adds the process's incarnation, the connection and the RPC call to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_incarnation = process.INCARNATION
        connection = observability.current_connection.get()
        record.connection = connection.connection_id if connection is not None else None
        record.address = connection.address if connection is not None else None
        call = current_call.get()
        record.rpc_module, record.rpc_procedure = call if call is not None else (None, None)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, fields without a value left out."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, "process_incarnation" if name == "process" else name, None)
            if value is not None:
                entry[name] = round(value, 3) if isinstance(value, float) else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
