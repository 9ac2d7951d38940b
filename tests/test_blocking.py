"""Blocking, through RPC, REST and the admin: it ends friendships and hides presence."""

import asyncio

import pytest
from django.test import Client

from accounts.models import User as UserModel
from tests.support import AWAY, OFFLINE, ONLINE, addresses, befriend, connect

pytestmark = pytest.mark.django_db(transaction=True)


class Threaded:
    """A Django test client whose requests run off the event loop, as a real server's do."""

    def __init__(self, **defaults):
        self.client = Client(**defaults)

    def __getattr__(self, method):
        request = getattr(self.client, method)

        async def call(*args, **kwargs):
            return await asyncio.to_thread(request, *args, **kwargs)

        return call


def rest(user) -> Threaded:
    return Threaded(HTTP_AUTHORIZATION=f"Bearer {user.token}")


async def test_block_ends_friendship_and_hides_presence_both_ways(service, make_user):
    alice, bob = make_user(), make_user()
    await befriend(service.ws_url, alice, bob)
    async with connect(service.ws_url, alice.token) as a, connect(service.ws_url, bob.token) as b:
        await a.set_status(ONLINE)
        await b.set_status(ONLINE)
        alice_view = await a.subscribe_presence()
        bob_view = await b.subscribe_presence()
        await alice_view.presence_until(bob.address, ONLINE)
        await bob_view.presence_until(alice.address, ONLINE)
        bob_events = await b.subscribe_events()

        response = await a.update("block", bob.address)
        assert response.event.block.user.address == bob.address

        event = await bob_events.next()
        assert event.events.responses[0].block.user.address == alice.address
        await bob_view.presence_until(alice.address, OFFLINE)
        await alice_view.presence_until(bob.address, OFFLINE)
        assert addresses(await a.friends()) == []
        assert addresses(await b.online_friends()) == []
        await a.set_status(AWAY)
        await bob_view.expect_nothing(0.5)


async def test_blocked_user_cannot_request_and_blocker_must_unblock_first(service, make_user):
    alice, bob = make_user(), make_user()
    async with connect(service.ws_url, alice.token) as a, connect(service.ws_url, bob.token) as b:
        await a.update("block", bob.address)
        refused = await b.update("request", alice.address)
        assert refused.WhichOneof("response") == "bad_request_error"
        assert "blocked" in refused.bad_request_error.message
        refused = await a.update("request", bob.address)
        assert refused.WhichOneof("response") == "bad_request_error"
        again = await a.update("block", bob.address)
        assert again.bad_request_error.message == "this user is already blocked"
        not_blocked = await b.update("unblock", alice.address)
        assert not_blocked.bad_request_error.message == "this user is not blocked"

        assert (await a.update("unblock", bob.address)).WhichOneof("response") == "event"
        assert (await b.update("request", alice.address)).WhichOneof("response") == "event"


async def test_block_cancels_a_pending_request(service, make_user):
    alice, bob = make_user(), make_user()
    async with connect(service.ws_url, alice.token) as a, connect(service.ws_url, bob.token) as b:
        await a.update("request", bob.address)
        await b.update("block", alice.address)
        events = await a.request_events()
        assert events.events.outgoing.total == 0
        await b.update("unblock", alice.address)
        refused = await b.update("accept", alice.address)
        assert refused.WhichOneof("response") == "bad_request_error"


async def test_mutual_blocks_stay_until_both_are_lifted(service, make_user):
    alice, bob = make_user(), make_user()
    async with connect(service.ws_url, alice.token) as a, connect(service.ws_url, bob.token) as b:
        await a.update("block", bob.address)
        await b.update("block", alice.address)
        await a.update("unblock", bob.address)
        still_blocked = await a.update("request", bob.address)
        assert still_blocked.WhichOneof("response") == "bad_request_error"
        await b.update("unblock", alice.address)
        assert (await a.update("request", bob.address)).WhichOneof("response") == "event"


async def test_block_over_rest(service, make_user):
    alice, bob = make_user(), make_user()
    await befriend(service.ws_url, alice, bob)
    client = rest(alice)
    created = await client.put(f"/api/v1/blocks/{bob.address.upper().replace('0X', '0x')}/")
    assert created.status_code == 201
    assert created.json()["address"] == bob.address
    listed = (await client.get("/api/v1/blocks/")).json()
    assert [row["address"] for row in listed["results"]] == [bob.address]
    # The block as answered is the block as listed, to the microsecond.
    assert listed["results"][0]["blocked_at"] == created.json()["blocked_at"]
    assert (await rest(bob).get("/api/v1/friends/")).json()["results"] == []
    twice = await client.put(f"/api/v1/blocks/{bob.address}/")
    assert twice.status_code == 400
    assert twice.json() == {"detail": "this user is already blocked"}
    assert (await client.put("/api/v1/blocks/not-an-address/")).status_code == 400
    assert (await client.delete(f"/api/v1/blocks/{bob.address}/")).status_code == 204
    assert (await client.get("/api/v1/blocks/")).json()["results"] == []
    assert (await client.delete(f"/api/v1/blocks/{bob.address}/")).status_code == 400


async def test_block_and_unblock_from_the_admin_reach_the_users(service, make_user):
    alice, bob = make_user(), make_user()
    operator = UserModel.objects.create_superuser("0x" + "ab" * 20, "a-long-password-1")
    await befriend(service.ws_url, alice, bob)
    admin = Threaded()
    admin.client.force_login(operator)
    async with connect(service.ws_url, bob.token) as b:
        bob_events = await b.subscribe_events()
        added = await admin.post(
            "/admin/friendships/block/add/", {"blocker": alice.address, "blocked": bob.address}
        )
        assert added.status_code == 302, added.content[:2000]
        event = await bob_events.next()
        assert event.events.responses[0].block.user.address == alice.address
        assert addresses(await b.friends()) == []

        from friendships.models import Block

        block = Block.objects.get(blocker_id=alice.address)
        deleted = await admin.post(f"/admin/friendships/block/{block.pk}/delete/", {"post": "yes"})
        assert deleted.status_code == 302
        event = await bob_events.next()
        assert event.events.responses[0].unblock.user.address == alice.address
        async with connect(service.ws_url, alice.token) as a:
            assert (await a.update("request", bob.address)).WhichOneof("response") == "event"
