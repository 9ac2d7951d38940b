"""The operators' admin: finding users and friendships, and a friendship's history."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.urls import reverse

from accounts.models import User
from friendships.models import Friendship, FriendshipAction, FriendshipState
from friendships.services import apply_action
from presence.events import Status
from presence.store import online
from presence_project import redis_clients
from tests.support import befriend_in_store, http_get, new_address, start_service, stop_service

pytestmark = pytest.mark.django_db(transaction=True)

USERS = reverse("admin:accounts_user_changelist")
FRIENDSHIPS = reverse("admin:friendships_friendship_changelist")


def new_user() -> User:
    return User.objects.create_user(new_address())


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser(new_address()))
    return client


def listed(response: object) -> list:
    """The objects a changelist page shows."""
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def friendship_of(one: User, other: User) -> Friendship:
    low, high = sorted((one.address, other.address))
    return Friendship.objects.get(user_a_id=low, user_b_id=high)


# --- Users ------------------------------------------------------------------------------------


def test_users_changelist_searches_by_address(admin_client):
    wanted, other = new_user(), new_user()
    response = admin_client.get(USERS, {"q": wanted.address})
    assert listed(response) == [wanted]
    assert other.address not in response.content.decode()


def test_users_changelist_shows_each_status_read_once_for_the_page(admin_client):
    here, away, gone = new_user(), new_user(), new_user()
    async_to_sync(online.set_status)(here.address, "admin-test#1/1", Status.ONLINE)
    async_to_sync(online.set_status)(away.address, "admin-test#1/2", Status.AWAY)
    redis = redis_clients.client(asynchronous=False, decode_responses=True)
    before = redis.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)
    page = admin_client.get(USERS, {"q": "0x"}).content.decode()
    after = redis.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)
    assert after - before == 1
    for user, status in ((here, "online"), (away, "away"), (gone, "offline")):
        row = page[page.index(f">{user.address}<") :]
        assert row[: row.index("</tr>")].count(f'<td class="field-presence">{status}</td>') == 1


def test_users_changelist_search_ignores_case(admin_client):
    wanted, other = new_user(), new_user()
    assert listed(admin_client.get(USERS, {"q": wanted.address.upper()})) == [wanted]
    mixed = "0x" + wanted.address[2:12].upper() + wanted.address[12:]
    assert listed(admin_client.get(USERS, {"q": mixed})) == [wanted]
    assert other not in listed(admin_client.get(USERS, {"q": wanted.address.upper()}))


def test_users_changelist_searches_by_part_of_an_address(admin_client):
    wanted, other = new_user(), new_user()
    part = wanted.address[-12:]
    assert part not in other.address
    assert listed(admin_client.get(USERS, {"q": part.upper()})) == [wanted]


def test_users_changelist_search_without_match_lists_nothing(admin_client):
    new_user()
    assert listed(admin_client.get(USERS, {"q": new_address()})) == []


def test_users_changelist_shows_the_address(admin_client):
    user = new_user()
    response = admin_client.get(USERS)
    assert user in listed(response)
    assert user.address in response.content.decode()


# --- Friendships ------------------------------------------------------------------------------


class Scene:
    """Alice and Bob are friends, Carol asked Dave, Carol rejected Alice."""

    def __init__(self) -> None:
        self.alice, self.bob, self.carol, self.dave = (new_user() for _ in range(4))
        befriend_in_store(self.alice.address, self.bob.address, "hello")
        self.accepted = friendship_of(self.alice, self.bob)
        apply_action(self.carol.address, self.dave.address, FriendshipAction.REQUEST)
        self.requested = friendship_of(self.carol, self.dave)
        apply_action(self.alice.address, self.carol.address, FriendshipAction.REQUEST)
        apply_action(self.carol.address, self.alice.address, FriendshipAction.REJECT)
        self.rejected = friendship_of(self.alice, self.carol)


@pytest.fixture
def scene() -> Scene:
    return Scene()


@pytest.mark.parametrize("state", ["accepted", "requested", "rejected"])
def test_friendships_changelist_filters_by_state(admin_client, scene, state):
    assert listed(admin_client.get(FRIENDSHIPS, {"state": state})) == [getattr(scene, state)]


def test_friendships_changelist_filter_without_match_lists_nothing(admin_client, scene):
    assert listed(admin_client.get(FRIENDSHIPS, {"state": FriendshipState.DELETED})) == []


def test_friendships_changelist_lists_all_without_filter(admin_client, scene):
    found = listed(admin_client.get(FRIENDSHIPS))
    assert set(found) == {scene.accepted, scene.requested, scene.rejected}


def test_friendships_changelist_searches_by_address(admin_client, scene):
    # Dave is user_b or user_a depending on the addresses: either side is found.
    assert listed(admin_client.get(FRIENDSHIPS, {"q": scene.dave.address})) == [scene.requested]
    assert listed(admin_client.get(FRIENDSHIPS, {"q": scene.bob.address})) == [scene.accepted]
    found = listed(admin_client.get(FRIENDSHIPS, {"q": scene.alice.address}))
    assert set(found) == {scene.accepted, scene.rejected}


def test_friendships_changelist_search_ignores_case(admin_client, scene):
    response = admin_client.get(FRIENDSHIPS, {"q": scene.dave.address.upper()})
    assert listed(response) == [scene.requested]
    # The row shows the stored (lowercase) addresses of both users.
    page = response.content.decode()
    assert scene.carol.address in page
    assert scene.dave.address in page
    part = "0x" + scene.bob.address[2:].upper()
    assert listed(admin_client.get(FRIENDSHIPS, {"q": f"  {part}  "})) == [scene.accepted]


def test_friendships_changelist_search_without_match_lists_nothing(admin_client, scene):
    assert listed(admin_client.get(FRIENDSHIPS, {"q": new_address()})) == []


def test_friendships_changelist_search_and_filter_combine(admin_client, scene):
    query = {"q": scene.alice.address, "state": "rejected"}
    assert listed(admin_client.get(FRIENDSHIPS, query)) == [scene.rejected]


def test_friendship_change_page_shows_its_event_history(admin_client):
    alice, bob = new_user(), new_user()
    apply_action(alice.address, bob.address, FriendshipAction.REQUEST, "first hello")
    apply_action(bob.address, alice.address, FriendshipAction.REJECT)
    apply_action(alice.address, bob.address, FriendshipAction.REQUEST, "second hello")
    apply_action(bob.address, alice.address, FriendshipAction.ACCEPT)
    friendship = friendship_of(alice, bob)
    one, other = new_user(), new_user()
    befriend_in_store(one.address, other.address, "hello")
    unrelated = friendship_of(one, other)

    response = admin_client.get(
        reverse("admin:friendships_friendship_change", args=[friendship.pk])
    )
    assert response.status_code == 200
    page = response.content.decode()
    # Only the history holds the first request's message; the friendship keeps the latest.
    assert "first hello" in page
    assert "second hello" in page
    for label in ("Request", "Reject", "Accept"):
        assert label in page
    assert bob.address in page
    assert unrelated.user_a_id not in page
    history = response.context["inline_admin_formsets"][0]
    assert [form.original.action for form in history] == [
        FriendshipAction.REQUEST,
        FriendshipAction.REJECT,
        FriendshipAction.REQUEST,
        FriendshipAction.ACCEPT,
    ]
    assert [form.original.acting_user_id for form in history] == [
        alice.address,
        bob.address,
        alice.address,
        bob.address,
    ]


def test_friendship_history_cannot_be_added_to(admin_client, scene):
    friendship = scene.accepted
    url = reverse("admin:friendships_friendship_change", args=[friendship.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="events-0-action"' not in page
    events_before = friendship.events.count()
    admin_client.post(
        url,
        {
            "events-TOTAL_FORMS": "1",
            "events-INITIAL_FORMS": "0",
            "events-0-action": "delete",
            "events-0-acting_user": scene.alice.address,
            "events-0-message": "forged",
        },
    )
    assert friendship.events.count() == events_before
    assert not friendship.events.filter(message="forged").exists()


def side(friendship: Friendship, user: User) -> str:
    """Where `user` stands in the friendship's pair: "A" or "B"."""
    return "A" if friendship.user_a_id == user.address else "B"


def test_blocked_friendship_says_who_blocked_whom(admin_client):
    alice, bob = new_user(), new_user()
    befriend_in_store(alice.address, bob.address, "hello")
    friendship = friendship_of(alice, bob)
    apply_action(bob.address, alice.address, FriendshipAction.BLOCK)
    change = reverse("admin:friendships_friendship_change", args=[friendship.pk])

    listing = admin_client.get(FRIENDSHIPS, {"q": alice.address}).content.decode()
    assert f"blocked: {side(friendship, bob)} blocks {side(friendship, alice)}" in listing
    page = admin_client.get(change).content.decode()
    assert f"{bob.address} blocks {alice.address}" in page

    apply_action(alice.address, bob.address, FriendshipAction.BLOCK)
    listing = admin_client.get(FRIENDSHIPS, {"q": alice.address}).content.decode()
    assert "blocked: A and B block each other" in listing
    page = admin_client.get(change).content.decode()
    assert f"{friendship.user_a_id} and {friendship.user_b_id} block each other" in page

    apply_action(bob.address, alice.address, FriendshipAction.UNBLOCK)
    listing = admin_client.get(FRIENDSHIPS, {"q": alice.address}).content.decode()
    assert f"blocked: {side(friendship, alice)} blocks {side(friendship, bob)}" in listing


def test_requested_friendship_says_who_asked(admin_client, scene):
    listing = admin_client.get(FRIENDSHIPS, {"q": scene.dave.address}).content.decode()
    assert f"requested by {side(scene.requested, scene.carol)}" in listing
    page = admin_client.get(
        reverse("admin:friendships_friendship_change", args=[scene.requested.pk])
    ).content.decode()
    assert "neither blocks the other" in page


# --- Access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", USERS, FRIENDSHIPS])
def test_non_staff_user_is_redirected_to_login(path):
    client = Client()
    client.force_login(new_user())
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "next=" in response["Location"]


@pytest.mark.parametrize("path", ["/admin/", USERS, FRIENDSHIPS])
def test_anonymous_visitor_is_redirected_to_login(path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_superuser_sees_the_admin_index(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    page = response.content.decode()
    assert USERS in page
    assert FRIENDSHIPS in page
    assert reverse("admin:presence_live") in page


def test_live_page_data_says_redis_is_unavailable_and_recovers(tmp_path, own_redis):
    """The live page's data answers 503 with a reason while Redis is down, never a 500."""
    client = Client()
    client.force_login(User.objects.create_superuser(new_address()))
    cookie = {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}
    data = reverse("admin:presence_live_data")
    running = start_service(tmp_path, {"REDIS_URL": own_redis.url})
    try:
        status, body = http_get(running, data, headers=cookie)
        assert status == 200, body
        own_redis.stop()
        status, body = http_get(running, data, headers=cookie)
        assert status == 503, body
        assert "Redis" in body["detail"]
        assert own_redis.password not in json.dumps(body)
        own_redis.start()
        status, body = http_get(running, data, headers=cookie)
        assert status == 200, body
    finally:
        stop_service(running)
