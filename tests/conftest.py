"""Fixtures: a real daphne process serving the project, on the test database and the real
Redis-protocol server that scripts/test.sh provides, and users with access tokens. What the
fixtures are made of lives in tests/support.py."""

import os
import secrets
import weakref
from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from tests.support import OwnRedis, Service, User, free_port, new_user, running_service

# Async tests set up their data with the ORM directly; the service itself runs elsewhere.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# Async tests reach the ORM outside the context pytest-django manages: from worker threads
# (sync_to_async, asyncio.to_thread) and from the event loop's tasks, for which Django keeps
# a connection per context. Left open, such a connection outlives its test, and PostgreSQL
# refuses to drop a test database other sessions still use: every connection opened during
# a test is closed when it ends.
_opened_connections: weakref.WeakSet[BaseDatabaseWrapper] = weakref.WeakSet()


def _remember_connection(sender: object, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
    _opened_connections.add(connection)


connection_created.connect(_remember_connection)


@pytest.fixture(autouse=True)
def close_connections_opened_by_the_test() -> Iterator[None]:
    yield
    for wrapper in list(_opened_connections):
        # Its thread is idle now; the wrapper refuses to be closed from another otherwise.
        wrapper.inc_thread_sharing()
        try:
            wrapper.close()
        finally:
            wrapper.dec_thread_sharing()
    _opened_connections.clear()


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def service(
    django_db_setup: None,
    django_db_blocker: object,
    redis_client: redis.Redis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("service")) as running:
        yield running


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    holder = OwnRedis(free_port(), secrets.token_hex(12))
    holder.start()
    yield holder
    holder.stop()


@pytest.fixture
def make_user(transactional_db: None) -> Callable[..., User]:
    """Makes users with fresh random addresses (`new_user`), on the test's database."""
    return new_user
