"""The WebSocket side's database calls, on threads of their own.

Django's synchronous HTTP code runs on the process's thread-sensitive worker thread
(presence_project.sync_http). Were the WebSocket side's queries there too, as Channels'
`database_sync_to_async` puts them, every sign-in's token lookup would queue behind
whatever page is being rendered, however slow. Here they run on a small pool of their own.

`database_sync_to_async` is a drop-in for Channels' of the same name: the call runs on
one of the pool's threads, with Django's connection clean-up before and after it
(close_old_connections). Django's connections are per thread, so each thread keeps one
connection for CONN_MAX_AGE between calls: the process holds at most `THREADS` of them
for the WebSocket side, whatever the load. SQLite gets one thread, so the WebSocket
side's writes never contend with each other for the database file's lock.
"""

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from channels.db import DatabaseSyncToAsync
from django.conf import settings

_P = ParamSpec("_P")
_R = TypeVar("_R")

# Four, so that a sign-in does not queue behind another WebSocket query that waits (a row
# lock, a long friend list); each thread holds one PostgreSQL connection.
THREADS = 1 if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") else 4

_threads = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="database")


def database_sync_to_async(func: Callable[_P, _R]) -> Callable[_P, Awaitable[_R]]:
    """`func` as a coroutine function that runs it on the database threads."""
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=_threads)
