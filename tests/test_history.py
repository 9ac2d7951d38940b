"""A user's own presence history: recorded by the transitions into Redis, stored by the
server's housekeeping, read and deleted by its owner over REST alone, read by staff only in
the admin, which records each reading, and kept PRESENCE_HISTORY_RETENTION_DAYS."""

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from accounts.models import User as UserModel
from accounts.services import issue_token
from presence.models import HistoryAccess, HistoryEntry, HistoryErasure
from presence.store import keys
from presence.store.history import GROUP
from tests.signing import new_identity
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    OwnRedis,
    Service,
    befriend_in_store,
    connect,
    connect_signed,
    eventually,
    http_get,
    http_raw,
    manage,
    new_user,
    running_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

HISTORY = "/api/v1/presence/history/"


def history(service: Service, token: str, query: str = "") -> dict:
    status, body = http_get(service, HISTORY + query, token)
    assert status == 200, (status, body)
    return body


def rows(body: dict) -> list[tuple]:
    return [(row["kind"], row["chosen"], row["visible"]) for row in body["results"]]


async def history_until(service: Service, token: str, count: int) -> dict:
    """The caller's history once it holds `count` entries (the housekeeping stores them
    within a heartbeat or so)."""
    found: dict = {}

    async def stored() -> bool:
        found.update(await asyncio.to_thread(history, service, token))
        return found["count"] >= count

    await eventually(stored, timeout=15)
    return found


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def store_entries(address: str, moments: list[datetime]) -> list[HistoryEntry]:
    """History entries of `address`, as the housekeeping stores them, at `moments`."""
    return HistoryEntry.objects.bulk_create(
        HistoryEntry(
            user_id=address,
            at=at,
            kind="status",
            connection=f"history-test#0/{n}",
            chosen=ONLINE,
            visible=ONLINE,
            stream_id=f"{n}-0",
        )
        for n, at in enumerate(moments)
    )


def stream_entry(address: str, at_ms: int, connection: str = "history-test#1/1") -> dict:
    return {
        "address": address,
        "kind": "connected",
        "connection": connection,
        "chosen": "",
        "visible": str(OFFLINE),
        "at": str(at_ms),
    }


def ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(keys.HISTORY, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        assert "BUSYGROUP" in str(error)


# --- Recording ------------------------------------------------------------------------------


async def test_connections_and_status_changes_are_recorded(service, make_user):
    alice = make_user()
    async with connect(service.ws_url, alice.token) as client:
        for status in (ONLINE, AWAY, OFFLINE):
            await client.set_status(status)
    body = await history_until(service, alice.token, 5)
    assert body["count"] == 5
    # Newest first: the connection opened with the first call, three choices, the close.
    assert rows(body) == [
        ("disconnected", None, "offline"),
        ("status", "offline", "offline"),
        ("status", "away", "away"),
        ("status", "online", "online"),
        ("connected", None, "offline"),
    ]
    results = body["results"]
    assert results[0]["session"] == results[-1]["session"]
    # The connection's id names its server process: the user reads an opaque one.
    assert all(re.fullmatch("[0-9a-f]{16}", row["session"]) for row in results)
    assert "connection" not in results[0]
    assert [row["at"] for row in results] == sorted((row["at"] for row in results), reverse=True)
    assert abs(results[0]["at"] - time.time() * 1000) < 60_000


async def test_a_signed_in_social_service_connection_is_recorded(service):
    identity = new_identity()
    async with connect_signed(service.ws_url, identity) as client:
        await client.blocking_status()  # signed in: counted, and ONLINE by default
    token = await asyncio.to_thread(issue_token, identity.address)
    body = await history_until(service, token, 3)
    assert rows(body) == [
        ("disconnected", None, "offline"),
        ("status", "online", "online"),
        ("connected", None, "offline"),
    ]


async def test_an_entry_names_the_device_its_connection_said(service, make_user):
    alice = make_user()
    async with connect(f"{service.ws_url}?device=mobile", alice.token) as client:
        await client.set_status(ONLINE)
    body = await history_until(service, alice.token, 3)
    assert [(row["kind"], row["device"]) for row in body["results"]] == [
        ("disconnected", "mobile"),
        ("status", "mobile"),
        ("connected", "mobile"),
    ]


async def test_a_second_connection_is_its_own_session(service, make_user):
    alice = make_user()
    async with connect(service.ws_url, alice.token) as first:
        await first.set_status(ONLINE)
        async with connect(service.ws_url, alice.token) as second:
            await second.set_status(ONLINE)
    body = await history_until(service, alice.token, 5)
    kinds = [(row["kind"], row["session"]) for row in body["results"]]
    sessions = {session for _, session in kinds}
    assert len(sessions) == 2
    # The second connection opens and closes while the first stays: friends see no change.
    assert [kind for kind, _ in kinds] == [
        "disconnected",
        "disconnected",
        "connected",
        "status",
        "connected",
    ]
    assert rows(body)[1] == ("disconnected", "online", "online")


async def test_an_entry_read_by_a_process_that_died_is_stored_once(
    service, make_user, redis_client
):
    """A process read entries, stored one and died before acknowledging them: another
    process claims them once its heartbeat would have expired, and the database's unique
    key keeps the one already stored from being stored twice."""
    alice = make_user()
    ensure_group(redis_client)
    now = int(time.time() * 1000)
    with redis_client.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.HISTORY, stream_entry(alice.address, now - 2000, "history-test#1/1"))
        pipe.xadd(keys.HISTORY, stream_entry(alice.address, now - 1000, "history-test#1/2"))
        pipe.xreadgroup(GROUP, "history-test#dead", {keys.HISTORY: ">"}, count=1000)
        first, second, _ = pipe.execute()
    HistoryEntry.objects.create(
        user_id=alice.address,
        at=datetime.fromtimestamp((now - 2000) / 1000, UTC),
        kind="connected",
        connection="history-test#1/1",
        visible=OFFLINE,
        stream_id=first,
    )
    body = await history_until(service, alice.token, 2)
    await asyncio.sleep(1.5)
    assert history(service, alice.token)["count"] == 2
    assert {row.stream_id for row in HistoryEntry.objects.filter(user_id=alice.address)} == {
        first,
        second,
    }
    assert len(body["results"]) == 2
    pending = redis_client.xpending_range(keys.HISTORY, GROUP, first, second, 10)
    assert pending == []


async def test_a_backlog_of_several_batches_is_stored(service, make_user, redis_client):
    alice = make_user()
    now = int(time.time() * 1000)
    with redis_client.pipeline(transaction=False) as pipe:
        for n in range(1200):
            pipe.xadd(keys.HISTORY, stream_entry(alice.address, now - n, f"history-test#2/{n}"))
        pipe.execute()
    body = await history_until(service, alice.token, 1200)
    assert body["count"] == 1200


# --- Reading --------------------------------------------------------------------------------


def test_history_is_paginated_newest_first_and_filtered_by_time(service):
    alice = new_user()
    moments = [ago(days=40), ago(days=3), ago(days=2), ago(days=1), ago(hours=1)]
    store_entries(alice.address, moments)
    first = history(service, alice.token, "?limit=2")
    # The last 30 days by default: not the entry 40 days old.
    assert first["count"] == 4
    assert first["previous"] is None and "offset=2" in first["next"]
    expected_ms = [int(at.timestamp() * 1000) for at in reversed(moments)]
    second = history(service, alice.token, "?limit=2&offset=2")
    assert [row["at"] for row in first["results"] + second["results"]] == expected_ms[:4]
    everything = history(service, alice.token, f"?since={expected_ms[-1]}")
    assert [row["at"] for row in everything["results"]] == expected_ms
    window = history(service, alice.token, f"?since={expected_ms[3]}&until={expected_ms[1]}")
    assert [row["at"] for row in window["results"]] == expected_ms[2:4]


@pytest.mark.parametrize(
    "query, named",
    [
        ("?since=yesterday", "since"),
        ("?until=-5", "until"),
        ("?since=" + "9" * 30, "since"),
        ("?limit=0", "limit"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(service, query, named):
    alice = new_user()
    status, body = http_get(service, HISTORY + query, alice.token)
    assert status == 400, (status, body)
    assert list(body) == ["detail"] and named in body["detail"]


def test_nobody_else_reads_a_users_history(service, make_user):
    alice, friend, stranger, blocked, staff = (make_user() for _ in range(5))
    UserModel.objects.filter(address=staff.address).update(is_staff=True, is_superuser=True)
    # In the store, not over a WebSocket: a connection of alice's would add its own entries
    # to her history whenever the housekeeping stores them.
    befriend_in_store(alice.address, friend.address)
    status, _, _ = http_raw(
        "PUT", f"{service.http_url}/api/v1/blocks/{blocked.address}/", alice.token
    )
    assert status in (200, 201, 204), status
    store_entries(alice.address, [ago(hours=1)])
    assert history(service, alice.token)["count"] == 1
    for other in (friend, stranger, blocked, staff):
        for query in ("", f"?user={alice.address}", f"?address={alice.address}"):
            assert history(service, other.token, query)["count"] == 0
        status, _ = http_get(service, f"{HISTORY}{alice.address}/", other.token)
        assert status == 404
    status, body = http_get(service, HISTORY)
    assert status == 401, body
    status, _, _ = http_raw("DELETE", service.http_url + HISTORY)
    assert status == 401
    assert history(service, alice.token)["count"] == 1


# --- Deleting -------------------------------------------------------------------------------


async def test_delete_removes_all_of_it_even_entries_on_their_way(service, make_user, redis_client):
    alice, bob = make_user(), make_user()
    await asyncio.to_thread(store_entries, alice.address, [ago(days=2), ago(hours=1)])
    await asyncio.to_thread(store_entries, bob.address, [ago(hours=1)])
    before_ms = int(time.time() * 1000) - 10
    status, _, body = await asyncio.to_thread(
        http_raw, "DELETE", service.http_url + HISTORY, alice.token
    )
    assert (status, body) == (204, b"")
    # An entry of before the deletion still in the stream when it came is never stored;
    # one after it is.
    redis_client.xadd(keys.HISTORY, stream_entry(alice.address, before_ms))
    async with connect(service.ws_url, alice.token) as client:
        await client.set_status(ONLINE)
    body = await history_until(service, alice.token, 3)
    assert rows(body) == [
        ("disconnected", None, "offline"),
        ("status", "online", "online"),
        ("connected", None, "offline"),
    ]
    await asyncio.sleep(1.5)
    assert (await asyncio.to_thread(history, service, alice.token))["count"] == 3
    assert (await asyncio.to_thread(history, service, bob.token))["count"] == 1


# --- Retention ------------------------------------------------------------------------------


def test_retention_command_deletes_what_is_older(redis_client):
    alice = new_user()
    moments = [ago(days=40), ago(days=10), ago(hours=1)]
    store_entries(alice.address, moments)
    done = manage("presence", "purge-history")
    assert done.returncode == 0, done.stderr
    assert "older than 30 days" in done.stdout
    left = HistoryEntry.objects.filter(user_id=alice.address).order_by("at")
    assert [entry.at for entry in left] == moments[1:]
    done = manage("presence", "purge-history", env={"PRESENCE_HISTORY_RETENTION_DAYS": "5"})
    assert done.returncode == 0, done.stderr
    assert HistoryEntry.objects.filter(user_id=alice.address).count() == 1


def test_retention_removes_entries_stored_while_their_user_deleted_them(redis_client):
    """A drain that read no deletion yet stores entries from before it: reads never show
    them, and the retention deletes them."""
    alice, bob = new_user(), new_user()
    HistoryErasure.objects.create(user_id=alice.address, at=ago(minutes=30))
    store_entries(alice.address, [ago(hours=2), ago(hours=1), ago(minutes=10)])
    store_entries(bob.address, [ago(hours=1)])
    done = manage("presence", "purge-history")
    assert done.returncode == 0, done.stderr
    left = HistoryEntry.objects.filter(user_id=alice.address)
    assert [entry.at > ago(minutes=30) for entry in left] == [True]
    assert HistoryEntry.objects.filter(user_id=bob.address).count() == 1


@pytest.fixture
def short_retention_service(
    tmp_path, own_redis: OwnRedis, redis_client: redis.Redis
) -> Iterator[Service]:
    """A service of its own Redis, so that its hourly retention pass is due at once."""
    with running_service(
        tmp_path, {"REDIS_URL": own_redis.url, "PRESENCE_HISTORY_RETENTION_DAYS": "2"}
    ) as running:
        yield running


async def test_housekeeping_enforces_the_retention(short_retention_service, make_user):
    alice = make_user()
    await asyncio.to_thread(store_entries, alice.address, [ago(days=3), ago(days=1)])
    # The housekeeping starts with the process's first request.
    await asyncio.to_thread(history, short_retention_service, alice.token)

    async def purged() -> bool:
        left = await asyncio.to_thread(HistoryEntry.objects.filter(user_id=alice.address).count)
        return left == 1

    await eventually(purged, timeout=20)


# --- The admin ------------------------------------------------------------------------------


def staff_client(superuser: bool = False, may_view_history: bool = True) -> tuple[Client, str]:
    user = new_user(staff=True)
    model = UserModel.objects.get(address=user.address)
    model.is_superuser = superuser
    model.save()
    if may_view_history:
        model.user_permissions.add(Permission.objects.get(codename="view_historyentry"))
    client = Client()
    client.force_login(model)
    return client, user.address


def test_staff_read_history_in_the_admin_and_each_reading_is_recorded():
    alice = new_user()
    (entry,) = store_entries(alice.address, [ago(hours=1)])
    reader, reader_address = staff_client()
    listing = reader.get(reverse("admin:presence_historyentry_changelist"), {"q": alice.address})
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [entry]
    page = reader.get(reverse("admin:presence_historyentry_change", args=[entry.pk]))
    assert page.status_code == 200 and alice.address in page.content.decode()
    recorded = list(HistoryAccess.objects.filter(reader=reader_address).order_by("id"))
    assert [(r.view, r.subject) for r in recorded] == [("list", ""), ("entry", alice.address)]
    assert alice.address in recorded[0].path

    # The records are for superusers: a staff member reads neither them nor, without the
    # permission, the history; nothing is recorded of a refused reading.
    accesses = reverse("admin:presence_historyaccess_changelist")
    assert reader.get(accesses).status_code == 403
    refused, refused_address = staff_client(may_view_history=False)
    assert refused.get(reverse("admin:presence_historyentry_changelist")).status_code == 403
    assert not HistoryAccess.objects.filter(reader=refused_address).exists()
    superuser, _ = staff_client(superuser=True, may_view_history=False)
    shown = superuser.get(accesses, {"q": reader_address})
    assert shown.status_code == 200
    assert list(shown.context["cl"].result_list) == list(reversed(recorded))

    # Nobody edits or deletes history in the admin.
    change = reverse("admin:presence_historyentry_change", args=[entry.pk])
    assert superuser.post(change, {}).status_code == 403
    delete = reverse("admin:presence_historyentry_delete", args=[entry.pk])
    assert superuser.post(delete, {"post": "yes"}).status_code == 403
    assert HistoryEntry.objects.filter(pk=entry.pk).exists()
