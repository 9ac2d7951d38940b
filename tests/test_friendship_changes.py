"""Open presence subscriptions follow friendship changes without reconnecting."""

import pytest

from tests.support import AWAY, OFFLINE, ONLINE, addresses, connect, start_service, stop_service

pytestmark = pytest.mark.django_db(transaction=True)


async def test_accepting_starts_both_subscriptions_at_once(service, make_user):
    alice, bob = make_user(), make_user()
    async with connect(service.ws_url, alice.token) as a, connect(service.ws_url, bob.token) as b:
        await a.set_status(ONLINE)
        await b.set_status(AWAY)
        alice_view = await a.subscribe_presence()
        bob_view = await b.subscribe_presence()
        await alice_view.expect_nothing(0.3)
        await a.update("request", bob.address)
        await b.update("accept", alice.address)
        # Each sees the other's current state, then later changes, on the same stream.
        await alice_view.presence_until(bob.address, AWAY)
        await bob_view.presence_until(alice.address, ONLINE)
        await a.set_status(AWAY)
        await bob_view.presence_until(alice.address, AWAY)


async def test_deleting_sends_offline_once_and_then_nothing(service, make_user):
    alice, bob = make_user(), make_user()
    async with connect(service.ws_url, alice.token) as a, connect(service.ws_url, bob.token) as b:
        await a.update("request", bob.address)
        await b.update("accept", alice.address)
        await a.set_status(ONLINE)
        bob_view = await b.subscribe_presence()
        await bob_view.presence_until(alice.address, ONLINE)
        await a.update("delete", bob.address)
        await bob_view.presence_until(alice.address, OFFLINE)
        for status in (AWAY, ONLINE, OFFLINE, ONLINE):
            await a.set_status(status)
        await bob_view.expect_nothing(0.5)
        assert addresses(await b.online_friends()) == []


async def test_an_outsider_hears_nothing_of_a_hundred_changes(service, make_user):
    alice, friend, outsider = make_user(), make_user(), make_user()
    async with (
        connect(service.ws_url, alice.token) as a,
        connect(service.ws_url, friend.token) as f,
        connect(service.ws_url, outsider.token) as o,
    ):
        await a.update("request", friend.address)
        await f.update("accept", alice.address)
        friend_view = await f.subscribe_presence()
        outsider_view = await o.subscribe_presence()
        for change in range(100):
            await a.set_status((ONLINE, AWAY)[change % 2])
        await friend_view.presence_until(alice.address, AWAY)
        await outsider_view.expect_nothing(0.5)


async def test_memberships_outlive_the_core_layer_group_expiry(tmp_path, service, make_user):
    short = start_service(
        tmp_path,
        {"CHANNEL_LAYER": "core", "CHANNEL_GROUP_EXPIRY": "2", "PRESENCE_HEARTBEAT_SECONDS": "1"},
    )
    try:
        alice, bob = make_user(), make_user()
        async with connect(short.ws_url, alice.token) as a, connect(short.ws_url, bob.token) as b:
            await a.update("request", bob.address)
            await b.update("accept", alice.address)
            bob_view = await b.subscribe_presence()
            bob_events = await b.subscribe_events()
            # Three expiry periods with nothing sent: memberships must have been renewed.
            await bob_view.expect_nothing(6.0)
            await a.set_status(ONLINE)
            await bob_view.presence_until(alice.address, ONLINE)
            await a.update("delete", bob.address)
            event = await bob_events.next()
            assert event.events.responses[0].delete.user.address == alice.address
    finally:
        stop_service(short)
