"""A slow synchronous request (a heavy admin page) holds Django's HTTP thread; WebSocket
sign-ins, by token or by signed first frame, and their queries go on beside it."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import Service, start_service, stop_service
from tests.held_page_urls import HELD_PAGE
from tests.signing import new_identity
from tests.social_v2_support import connect_signed
from tests.support import addresses, befriend, connect, eventually, http_raw

pytestmark = pytest.mark.django_db(transaction=True)

# Far longer than a sign-in takes, even on a loaded machine; the page is held until released.
SIGN_IN_SECONDS = 15


@pytest.fixture
def held_service(tmp_path: Path) -> Iterator[Service]:
    """The service with tests/held_page_urls.py's page, which waits for tmp_path/release."""
    running = start_service(
        tmp_path,
        {"DJANGO_SETTINGS_MODULE": "tests.held_page_settings", "HELD_PAGE_DIR": str(tmp_path)},
    )
    yield running
    (tmp_path / "release").touch()
    stop_service(running)


@pytest.fixture
async def held_page(held_service: Service, tmp_path: Path) -> AsyncIterator[asyncio.Task]:
    """A request to the held page, in flight and inside its view."""
    url = f"{held_service.http_url}/{HELD_PAGE}"
    request = asyncio.create_task(asyncio.to_thread(http_raw, "GET", url, timeout=120))

    async def started() -> bool:
        return (tmp_path / "started").exists()

    await eventually(started)
    yield request
    (tmp_path / "release").touch()
    await request


async def test_sign_ins_complete_while_a_slow_request_is_in_flight(
    held_service, held_page, make_user, tmp_path
):
    user, friend, identity = make_user(), make_user(), new_identity()

    async def sign_ins() -> None:
        await befriend(held_service.ws_url, user, friend)
        async with connect(held_service.ws_url, user.token, query_token=True) as client:
            assert addresses(await client.friends()) == [friend.address]
        async with connect_signed(held_service.ws_url, identity) as social:
            assert len((await social.blocking_status()).blocked_users) == 0

    await asyncio.wait_for(sign_ins(), SIGN_IN_SECONDS)
    assert not held_page.done(), "the slow request ended before the sign-ins: nothing was shown"
    (tmp_path / "release").touch()
    status, _, body = await held_page
    assert (status, body) == (200, b"released")
