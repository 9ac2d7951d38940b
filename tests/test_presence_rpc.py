"""Presence through the WebSocket: SetPresenceStatus, GetOnlineFriends and live updates."""

import pytest

from tests.support import AWAY, OFFLINE, ONLINE, addresses, befriend, connect

pytestmark = pytest.mark.django_db(transaction=True)


async def test_friend_sees_online_then_offline_when_last_connection_closes(service, make_user):
    alice, bob = make_user(), make_user()
    await befriend(service.ws_url, alice, bob)
    async with connect(service.ws_url, bob.token) as b:
        updates = await b.subscribe_presence()
        async with connect(service.ws_url, alice.token) as a:
            response = await a.set_status(ONLINE)
            assert response.status.type == ONLINE
            await updates.presence_until(alice.address, ONLINE)
            assert addresses(await b.online_friends()) == [alice.address]
        await updates.presence_until(alice.address, OFFLINE)
        assert addresses(await b.online_friends()) == []


async def test_snapshot_then_live_changes(service, make_user):
    alice, bob = make_user(), make_user()
    await befriend(service.ws_url, alice, bob)
    async with connect(service.ws_url, alice.token) as a:
        await a.set_status(AWAY)
        async with connect(service.ws_url, bob.token) as b:
            updates = await b.subscribe_presence()
            first = await updates.next()
            assert [(u.user.address, u.status.type) for u in first.updates.users] == [
                (alice.address, AWAY)
            ]
            await a.set_status(ONLINE)
            await updates.presence_until(alice.address, ONLINE)
