"""The presence keys in Redis, and how connection ids name their process.

A connection id is "<process incarnation>/<n>", n counting the incarnation's connections,
so it names its process and is never reused.
"""

import itertools

CONNECTIONS = "presence:connections:{}"  # SET of connection ids of one user
CHOSEN = "presence:chosen"  # HASH address -> status the user chose while connected
VISIBLE = "presence:visible"  # HASH address -> "status:version:last_seen_ms"
VISIBLE_INDEX = "presence:visible-index"  # ZSET of visible addresses, for paging
AWAY = "presence:away"  # SET of the visible addresses that are AWAY, for counting
VERSIONS = "presence:versions"  # HASH address -> version of the last visible change
LAST_SEEN = "presence:last-seen"  # HASH address -> ms of the last visible change
PROCESSES = "presence:processes"  # SET of process incarnations that have registered
HEARTBEAT = "presence:heartbeat:{}"  # STRING with a TTL: the process's stats at its last beat
PROCESS_CONNECTIONS = "presence:process-connections:{}"  # SET "address connection_id"
# [status] HASH address -> "<1 if cleared when the last connection closes, else 0>:<text>"
MESSAGE = "presence:message"
# [status] ZSET of "message <address>" and "status <address>", scored by the ms at which that
# message or chosen status ends: housekeeping applies the ends that are due.
ENDS = "presence:ends"
# [conn] HASH connection id -> "<device kind>:<1 if idle, else 0>", of one user's connections
CONNECTION_STATES = "presence:connection-states:{}"
# [conn] HASH address -> the sorted device kinds of a visible user, comma-separated
DEVICES = "presence:devices"
EPOCH = "presence:epoch"  # STRING set once; a new value means Redis lost everything
# [privacy] HASH address -> audience rule (presence.sharing) of the users who share with
# fewer than all friends, their lists and frozen last_seen included; read with every
# presence, so a read of many users stays one round trip per shard.
SHARING = "presence:sharing"
# [privacy] STRING, present once the shard's sharing mirror was loaded from the database:
# its absence means Redis lost it (or never had it).
SHARING_LOADED = "presence:sharing-loaded"
# [history] STREAM of the users' own presence history entries (presence.store.history),
# one per shard for the users it holds, written by the transitions and drained into the
# database; HISTORY_PURGE, on the first shard, a STRING with a TTL: the last retention pass.
HISTORY = "presence:history"
HISTORY_PURGE = "presence:history-purge"
# [location]
LOCATION = "presence:location"  # HASH address -> "x:y:realm" the user shares while connected
# ZSET address -> ms after which the user's heartbeat connection is gone (housekeeping)
HEARTBEATS = "presence:heartbeats"
# The connection id of a user's heartbeats, one per user: its "process" never registers, so
# it is never reaped with one; it goes when its heartbeats stop (HEARTBEATS).
HEARTBEAT_CONNECTION = "heartbeat/0"

_connection_numbers = itertools.count(1)


def connection_id(process: str) -> str:
    """A new id for a connection held by the process incarnation `process`; a count, as the
    incarnation is random already."""
    return f"{process}/{next(_connection_numbers)}"


def process_of(connection: str) -> str:
    return connection.rpartition("/")[0]
