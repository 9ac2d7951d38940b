"""The admin in a real browser (headless Chromium through Selenium), against a real daphne
process: the live presence page updating by itself, who may see it, and pages that fit a
1,280-pixel screen.

PRESENCE_ADMIN_SCREENSHOT=docs/admin-presence.png keeps a screenshot of the live page as
the first test leaves it.
"""

import asyncio
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.test import Client
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from accounts.models import User
from friendships.selectors import friendship_between
from presence.protocol import friendships_service_pb2 as pb
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    Service,
    befriend,
    chromium,
    connect,
    new_address,
    now_ms,
    outcome,
    service_with,
)

pytestmark = pytest.mark.django_db(transaction=True)

LIVE = "/admin/presence/"
LIVE_DATA = "/admin/presence/data/"
PROCESS_NAME = f"admin-live-{secrets.token_hex(3)}"


# A process of its own, named, with a heartbeat every second: its row on the page shows
# its connections a second after they change.
live_service = service_with(
    {"PRESENCE_PROCESS_NAME": PROCESS_NAME, "PRESENCE_HEARTBEAT_SECONDS": "1"}
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chrome]:
    with chromium(width=1280, height=900) as running:
        yield running


@pytest.fixture
def signed_out(browser: Chrome) -> Chrome:
    browser.delete_all_cookies()
    return browser


def sign_in(browser: Chrome, service: Service, role: str = "staff") -> User:
    """Sign in through the admin's login form as a new user with a password: "staff" (no
    model permissions), "superuser" or a plain "user"."""
    password = secrets.token_urlsafe(16)
    user = User.objects.create_user(
        new_address(), password, is_staff=role != "user", is_superuser=role == "superuser"
    )
    browser.get(service.http_url + "/admin/login/")
    browser.find_element(By.ID, "id_username").send_keys(user.address)
    browser.find_element(By.ID, "id_password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # The click returns before the form's answer has loaded: wait for it (the admin, or the
    # login page again with its error note), so that the next page is asked for signed in.
    WebDriverWait(browser, PAGE_WAIT).until(
        lambda _: "/admin/login/" not in browser.current_url or text(browser, ".errornote")
    )
    return user


def text(browser: Chrome, css: str) -> str:
    """The text of the element `css` selects, "" while it does not exist."""
    try:
        return browser.find_element(By.CSS_SELECTOR, css).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


# The page polls every 1.5 s; the rest of the budget is for a browser and a server that
# share two loaded cores with the test suite.
PAGE_WAIT = 10


async def page_shows(check: Callable[[], bool], within: float, what: str) -> None:
    """Wait until `check` of the page holds; the page is never reloaded meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, f"the page did not show {what} within {within} s"
        await asyncio.sleep(0.1)


def fetch_json(browser: Chrome, path: str) -> dict:
    """GET `path` from the page's own script context, with its cookies: (status, body)."""
    return browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: "same-origin"})
          .then(async (r) => done({status: r.status, body: await r.text()}));
        """,
        path,
    )


# --- The live page ------------------------------------------------------------------------


async def test_live_page_shows_a_client_going_online_without_a_reload(
    live_service, signed_out, make_user
):
    browser = signed_out
    sign_in(browser, live_service)
    player, friend = make_user(), make_user()
    await befriend(live_service.ws_url, player, friend)

    browser.get(live_service.http_url + LIVE)
    assert browser.current_url.endswith(LIVE), browser.current_url
    browser.find_element(By.ID, "live-address").send_keys("0x" + player.address[2:].upper())
    browser.find_element(By.CSS_SELECTOR, "#live-search input[type=submit]").click()
    await page_shows(lambda: text(browser, "#live-user-status") == "offline", PAGE_WAIT, "offline")
    assert text(browser, "#live-user-connections") == "none"
    assert text(browser, "#live-user-last-seen") == "never"
    # A reload would drop this.
    browser.execute_script("window.notReloaded = true")
    online_before = int(text(browser, "#live-online"))
    connections_cell = f'#live-processes tr[data-process^="{PROCESS_NAME}#"] td:nth-child(3)'

    async with AsyncExitStack() as stack:
        friend_client = await stack.enter_async_context(connect(live_service.ws_url, friend.token))
        await friend_client.set_status(AWAY)
        client = await stack.enter_async_context(connect(live_service.ws_url, player.token))
        await client.set_status(ONLINE)

        await page_shows(
            lambda: text(browser, "#live-user-status") == "online", PAGE_WAIT, "online"
        )
        # [location]
        assert text(browser, "#live-user-location") == "not shared"
        await client.set_location(("main", 10, -20))
        await page_shows(
            lambda: text(browser, "#live-user-location") == "main (10, -20)",
            PAGE_WAIT,
            "the location",
        )
        connections = browser.find_elements(By.CSS_SELECTOR, "#live-user-connections li")
        assert len(connections) == 1
        assert connections[0].text.startswith(f"{PROCESS_NAME}#")
        assert "s ago" in text(browser, "#live-user-last-seen")
        await page_shows(
            lambda: (
                friend.address in text(browser, "#live-user-friends")
                and "away" in text(browser, "#live-user-friends")
            ),
            5,
            "the friend away",
        )
        await page_shows(
            lambda: int(text(browser, "#live-online") or -1) == online_before + 1,
            5,
            "one more user online",
        )
        assert int(text(browser, "#live-away")) >= 1
        # The process's heartbeat (every second here) reports both connections.
        await page_shows(
            lambda: text(browser, connections_cell) == "2", PAGE_WAIT, "the process's 2 connections"
        )
        if target := os.environ.get("PRESENCE_ADMIN_SCREENSHOT"):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(target)

        # [status] A message (shown as text, never as markup) and the end of a chosen status.
        until = now_ms() + 3_600_000
        request = pb.StatusPayload(
            synapse_token=player.token,
            status=pb.Status(type=AWAY),
            message="<b>back</b> soon",
            status_until=until,
        )
        assert outcome(await client.call("SetPresenceStatus", request, pb.StatusResponse)) == (
            "status",
            "",
        )
        await page_shows(
            lambda: text(browser, "#live-user-message") == '"<b>back</b> soon"', 5, "the message"
        )
        ends = datetime.fromtimestamp(until / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        assert text(browser, "#live-user-status-until") == ends

        await client.set_status(OFFLINE)
        await page_shows(
            lambda: text(browser, "#live-user-status") == "offline (connected, appearing offline)",
            5,
            "appearing offline",
        )

    await page_shows(
        lambda: text(browser, "#live-user-status") == "offline", PAGE_WAIT, "offline again"
    )
    assert text(browser, "#live-user-connections") == "none"
    assert browser.execute_script("return window.notReloaded") is True


async def test_live_page_explains_a_search_that_finds_no_user(live_service, signed_out):
    browser = signed_out
    sign_in(browser, live_service)
    browser.get(f"{live_service.http_url}{LIVE}?address=not-an-address")
    await page_shows(
        lambda: "not an Ethereum address" in text(browser, "#live-user-error"),
        PAGE_WAIT,
        "the error",
    )
    unknown = new_address()
    field = browser.find_element(By.ID, "live-address")
    field.clear()
    field.send_keys(unknown)
    browser.find_element(By.CSS_SELECTOR, "#live-search input[type=submit]").click()
    await page_shows(
        lambda: text(browser, "#live-user-error") == "No user has this address.",
        PAGE_WAIT,
        "no user",
    )
    # The figures still update beside the error.
    assert text(browser, "#live-online").isdigit()


# --- Who may see it -----------------------------------------------------------------------


def test_non_staff_user_cannot_sign_in_to_the_admin(live_service, signed_out):
    browser = signed_out
    sign_in(browser, live_service, role="user")
    assert "/admin/login/" in browser.current_url
    assert "staff account" in text(browser, ".errornote")
    browser.get(live_service.http_url + LIVE)
    assert "/admin/login/" in browser.current_url
    assert browser.find_elements(By.ID, "live-presence") == []


def test_non_staff_session_is_refused_the_page_and_its_data(live_service, signed_out):
    browser = signed_out
    session = Client()
    session.force_login(User.objects.create_user(new_address()))
    browser.get(live_service.http_url + "/admin/login/")
    browser.add_cookie({"name": "sessionid", "value": session.cookies["sessionid"].value})

    browser.get(live_service.http_url + LIVE)
    assert "/admin/login/?next=/admin/presence/" in browser.current_url
    assert browser.find_elements(By.ID, "live-presence") == []
    answer = fetch_json(browser, LIVE_DATA + "?address=" + new_address())
    assert answer["status"] == 403
    assert json.loads(answer["body"]) == {"detail": "Staff only: sign in to the admin."}


def test_anonymous_visitor_is_refused_the_data(live_service, signed_out):
    signed_out.get(live_service.http_url + "/admin/login/")
    answer = fetch_json(signed_out, LIVE_DATA)
    assert answer["status"] == 403


# --- A user's page, and pages that fit the screen --------------------------------------------


class Scene:
    """Alice is online with friends Bob (away) and Carol (never seen); Dave blocks Alice,
    Alice blocks Eve; Frank asked Alice to be friends."""

    def __init__(self, make_user: Callable[[], object]) -> None:
        self.alice, self.bob, self.carol, self.dave, self.eve, self.frank = (
            make_user() for _ in range(6)
        )

    async def arrange(self, stack: AsyncExitStack, url: str) -> None:
        await befriend(url, self.alice, self.bob, self.carol)
        dave = await stack.enter_async_context(connect(url, self.dave.token))
        assert outcome(await dave.update("block", self.alice.address)) == ("event", "")
        alice = await stack.enter_async_context(connect(url, self.alice.token))
        assert outcome(await alice.update("block", self.eve.address)) == ("event", "")
        await alice.set_status(ONLINE)
        bob = await stack.enter_async_context(connect(url, self.bob.token))
        await bob.set_status(AWAY)
        frank = await stack.enter_async_context(connect(url, self.frank.token))
        assert outcome(await frank.update("request", self.alice.address)) == ("event", "")


def field(browser: Chrome, name: str) -> str:
    """The text of a read-only field of a change page."""
    return text(browser, f".field-{name} .readonly")


async def test_user_page_shows_presence_connections_friends_and_blocks(
    live_service, signed_out, make_user
):
    browser = signed_out
    sign_in(browser, live_service, role="superuser")
    scene = Scene(make_user)
    async with AsyncExitStack() as stack:
        await scene.arrange(stack, live_service.ws_url)
        browser.get(f"{live_service.http_url}/admin/accounts/user/{scene.alice.address}/change/")

        assert field(browser, "presence") == "online"
        assert field(browser, "last_seen").endswith(" UTC")
        assert field(browser, "last_seen")[:4].isdigit()
        connections = browser.find_elements(By.CSS_SELECTOR, ".field-open_connections li")
        assert [c.text.split("#")[0] for c in connections] == [PROCESS_NAME]
        rows = browser.find_elements(By.CSS_SELECTOR, ".field-friends tbody tr")
        friends = {row.text.split()[0]: row.text.split()[1] for row in rows}
        assert friends == {scene.bob.address: "away", scene.carol.address: "offline"}
        assert "never" in field(browser, "friends")  # Carol was never seen
        blocks = field(browser, "blocks").splitlines()
        assert blocks == [f"blocks {scene.eve.address}", f"blocked by {scene.dave.address}"]

        browser.get(f"{live_service.http_url}/admin/accounts/user/{scene.carol.address}/change/")
        assert field(browser, "presence") == "offline"
        assert field(browser, "last_seen") == "never"
        assert field(browser, "open_connections") == "none"
        assert field(browser, "blocks") == "none"


# Whether the page scrolls sideways, and every element that scrolls or cuts its content
# sideways itself (a list's results box, an input too narrow for its value).
WIDTHS = """
const cut = [];
for (const el of document.querySelectorAll("*")) {
  const scrolls = ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  if ((scrolls || el.tagName === "INPUT") && el.scrollWidth > el.clientWidth) {
    cut.push(`${el.tagName}#${el.id}.${el.className}: ${el.scrollWidth} > ${el.clientWidth}`);
  }
}
return {page: document.documentElement.scrollWidth, window: window.innerWidth, cut: cut};
"""


async def test_admin_pages_fit_a_1280_pixel_screen(live_service, signed_out, make_user):
    browser = signed_out
    assert browser.execute_script("return window.innerWidth") == 1280
    sign_in(browser, live_service, role="superuser")
    scene = Scene(make_user)
    async with AsyncExitStack() as stack:
        await scene.arrange(stack, live_service.ws_url)
        alice = scene.alice.address
        blocked = friendship_between(alice, scene.dave.address)
        pages = [
            "/admin/",
            "/admin/accounts/user/",
            f"/admin/accounts/user/?q={alice}",
            f"/admin/accounts/user/{alice}/change/",
            "/admin/friendships/friendship/",
            f"/admin/friendships/friendship/?q={alice}",
            f"/admin/friendships/friendship/{blocked.pk}/change/",
            "/admin/friendships/block/",
            "/admin/friendships/block/add/",
            f"{LIVE}?address={alice}",
        ]
        misfits = {}
        for page in pages:
            browser.get(live_service.http_url + page)
            if page.startswith(LIVE):
                await page_shows(
                    lambda: text(browser, "#live-user-friends") != "", PAGE_WAIT, "Alice"
                )
            widths = browser.execute_script(WIDTHS)
            if widths["page"] > widths["window"] or widths["cut"]:
                misfits[page] = widths
        assert misfits == {}
        # The lists show what they are for, each address whole.
        browser.get(f"{live_service.http_url}/admin/friendships/friendship/?q={alice}")
        page = text(browser, "#result_list")
        for user in (scene.bob, scene.carol, scene.dave, scene.frank):
            assert user.address in page
