"""SocialService v2, friends and presence: every procedure through a signed connection, and
the one friendship and presence core it shares with FriendshipsService."""

import asyncio

import pytest

from presence.procedures.social_service_v2 import NOT_SERVED
from presence.protocol import social_service_v2_pb2 as pb
from presence.rpc.client import RemoteError
from tests.signing import Identity, new_identity
from tests.social_v2_support import (
    AWAY,
    OFFLINE,
    ONLINE,
    befriend_signed,
    connect_signed,
    connectivity_until,
    profiles,
)
from tests.support import AWAY as V1_AWAY
from tests.support import addresses, connect, outcome

pytestmark = pytest.mark.django_db(transaction=True)


def identities(count: int) -> list[Identity]:
    """Identities sorted by address, the order friend lists come in."""
    return sorted((new_identity() for _ in range(count)), key=lambda i: i.address)


def accepted(response: pb.UpsertFriendshipResponse) -> pb.UpsertFriendshipResponse.Accepted:
    assert response.WhichOneof("response") == "accepted", response
    return response.accepted


def status_of(response: pb.GetFriendshipStatusResponse) -> int:
    assert response.WhichOneof("response") == "accepted", response
    return response.accepted.status


# --- Friends and pagination ----------------------------------------------------------------


async def test_friends_are_paginated_as_the_proto_says(service):
    me, *friends = identities(4)
    for friend in friends:
        await befriend_signed(service.ws_url, me, friend)
    async with connect_signed(service.ws_url, me) as client:
        everyone = await client.friends()
        first = await client.friends(limit=2)
        second = await client.friends(limit=2, offset=2)
    expected = sorted(f.address for f in friends)
    assert profiles(everyone) == expected
    assert (everyone.pagination_data.total, everyone.pagination_data.page) == (3, 1)
    assert profiles(first) == expected[:2]
    assert (first.pagination_data.total, first.pagination_data.page) == (3, 1)
    assert profiles(second) == expected[2:]
    assert (second.pagination_data.total, second.pagination_data.page) == (3, 2)


async def test_mutual_friends(service):
    me, other, common, mine = new_identity(), new_identity(), new_identity(), new_identity()
    await befriend_signed(service.ws_url, me, common)
    await befriend_signed(service.ws_url, other, common)
    await befriend_signed(service.ws_url, me, mine)
    async with connect_signed(service.ws_url, me) as client:
        mutual = await client.mutual_friends(other.address)
        with pytest.raises(RemoteError) as error:
            await client.mutual_friends("not-an-address")
    assert profiles(mutual) == [common.address]
    assert mutual.pagination_data.total == 1
    assert "not an Ethereum address" in error.value.remote_message


async def test_requests_pending_and_sent_carry_message_and_id(service):
    me, asker = new_identity(), new_identity()
    async with connect_signed(service.ws_url, asker) as a, connect_signed(service.ws_url, me) as b:
        request = accepted(await a.upsert("request", me.address, message="hello there"))
        pending = await b.pending()
        sent = await a.pending(sent=True)
        none_sent = await b.pending(sent=True)
    assert pending.WhichOneof("response") == "requests"
    [item] = pending.requests.requests
    assert (item.friend.address, item.message, item.id) == (
        asker.address,
        "hello there",
        request.id,
    )
    assert pending.pagination_data.total == 1
    assert [r.friend.address for r in sent.requests.requests] == [me.address]
    assert sent.requests.requests[0].id == request.id
    assert list(none_sent.requests.requests) == []
    assert request.friend.address == me.address
    assert request.message == "hello there"
    assert request.created_at > 0


async def test_friendship_status_through_its_life(service):
    me, other = new_identity(), new_identity()
    async with connect_signed(service.ws_url, me) as a, connect_signed(service.ws_url, other) as b:
        assert status_of(await a.status_with(other.address)) == pb.NONE
        accepted(await a.upsert("request", other.address, message="be my friend"))
        mine = await a.status_with(other.address)
        assert (status_of(mine), mine.accepted.message) == (pb.REQUEST_SENT, "be my friend")
        assert status_of(await b.status_with(me.address)) == pb.REQUEST_RECEIVED
        accepted(await a.upsert("cancel", other.address))
        assert status_of(await b.status_with(me.address)) == pb.CANCELED
        accepted(await a.upsert("request", other.address))
        accepted(await b.upsert("reject", me.address))
        assert status_of(await a.status_with(other.address)) == pb.REJECTED
        accepted(await a.upsert("request", other.address))
        accepted(await b.upsert("accept", me.address))
        assert status_of(await a.status_with(other.address)) == pb.ACCEPTED
        accepted(await b.upsert("delete", me.address))
        assert status_of(await a.status_with(other.address)) == pb.DELETED
        assert (await a.block(other.address)).WhichOneof("response") == "ok"
        assert status_of(await a.status_with(other.address)) == pb.BLOCKED
        assert status_of(await b.status_with(me.address)) == pb.BLOCKED_BY


async def test_a_broken_rule_is_an_invalid_friendship_action(service):
    me, other = new_identity(), new_identity()
    async with connect_signed(service.ws_url, me) as client:
        response = await client.upsert("accept", other.address)
        yourself = await client.upsert("request", me.address)
    assert response.WhichOneof("response") == "invalid_friendship_action"
    assert "pending" in response.invalid_friendship_action.message
    assert yourself.WhichOneof("response") == "invalid_friendship_action"


async def test_bad_arguments_are_invalid_requests(service):
    async with connect_signed(service.ws_url, new_identity()) as client:
        bad_address = await client.upsert("request", "0x123")
        no_action = await client.call(
            "UpsertFriendship", pb.UpsertFriendshipPayload(), pb.UpsertFriendshipResponse
        )
        status = await client.status_with("nobody")
    assert bad_address.WhichOneof("response") == "invalid_request"
    assert no_action.WhichOneof("response") == "invalid_request"
    assert "request, accept" in no_action.invalid_request.message
    assert status.WhichOneof("response") == "invalid_request"


# --- Blocks ---------------------------------------------------------------------------------


async def test_block_unblock_and_the_lists(service):
    me, *others = identities(3)
    async with connect_signed(service.ws_url, me) as client:
        for other in others:
            block = await client.block(other.address)
            assert block.WhichOneof("response") == "ok", block
            assert block.ok.profile.address == other.address
            assert block.ok.profile.blocked_at > 0
        again = await client.block(others[0].address)
        blocked = await client.blocked_users()
        page = await client.blocked_users(limit=1, offset=1)
        status = await client.blocking_status()
        unblock = await client.unblock(others[0].address)
        not_blocked = await client.unblock(others[0].address)
        after = await client.blocking_status()
    assert again.WhichOneof("response") == "invalid_request"
    assert "already blocked" in again.invalid_request.message
    assert sorted(p.address for p in blocked.profiles) == [o.address for o in others]
    assert blocked.pagination_data.total == 2
    assert len(page.profiles) == 1
    assert page.pagination_data.page == 2
    assert sorted(status.blocked_users) == [o.address for o in others]
    assert list(status.blocked_by_users) == []
    assert unblock.WhichOneof("response") == "ok"
    assert not unblock.ok.profile.HasField("blocked_at")
    assert not_blocked.WhichOneof("response") == "invalid_request"
    assert list(after.blocked_users) == [others[1].address]


async def test_blocked_by_shows_in_the_blocked_users_status(service):
    me, blocker = new_identity(), new_identity()
    async with connect_signed(service.ws_url, blocker) as client:
        await client.block(me.address)
    async with connect_signed(service.ws_url, me) as client:
        status = await client.blocking_status()
        request = await client.upsert("request", blocker.address)
    assert list(status.blocked_by_users) == [blocker.address]
    assert request.WhichOneof("response") == "invalid_friendship_action"


# --- Subscriptions --------------------------------------------------------------------------


async def test_friendship_updates_reach_the_other_user(service):
    me, other = new_identity(), new_identity()
    async with connect_signed(service.ws_url, me) as a, connect_signed(service.ws_url, other) as b:
        updates = await b.friendship_updates()
        request = accepted(await a.upsert("request", other.address, message="hi"))
        first = await updates.next()
        assert first.WhichOneof("update") == "request"
        assert (first.request.friend.address, first.request.message) == (me.address, "hi")
        assert first.request.id == request.id
        assert first.request.created_at == request.created_at
        accepted(await b.upsert("accept", me.address))  # b's own action: not announced to b
        accepted(await a.upsert("delete", other.address))
        deleted = await updates.next()
        assert (deleted.WhichOneof("update"), deleted.delete.user.address) == ("delete", me.address)
        await a.block(other.address)
        blocked = await updates.next()
        assert (blocked.WhichOneof("update"), blocked.block.user.address) == ("block", me.address)
        await a.unblock(other.address)  # v2 has no unblock update: SubscribeToBlockUpdates says it
        await updates.expect_nothing(within=0.3)


async def test_block_updates_tell_the_blocked_user(service):
    me, other = new_identity(), new_identity()
    async with connect_signed(service.ws_url, me) as a, connect_signed(service.ws_url, other) as b:
        updates = await b.block_updates()
        await a.block(other.address)
        blocked = await updates.next()
        await a.unblock(other.address)
        unblocked = await updates.next()
        await a.upsert("request", other.address)
        await updates.expect_nothing(within=0.3)
    assert (blocked.address, blocked.is_blocked) == (me.address, True)
    assert (unblocked.address, unblocked.is_blocked) == (me.address, False)


async def test_connectivity_snapshot_then_live(service):
    me, early, late = new_identity(), new_identity(), new_identity()
    await befriend_signed(service.ws_url, me, early)
    await befriend_signed(service.ws_url, me, late)
    async with connect_signed(service.ws_url, early), connect_signed(service.ws_url, me) as client:
        updates = await client.connectivity()
        await connectivity_until(updates, early.address, ONLINE)
        async with connect_signed(service.ws_url, late):
            await connectivity_until(updates, late.address, ONLINE)
        await connectivity_until(updates, late.address, OFFLINE)


async def test_a_block_reads_as_offline_once(service):
    me, friend = new_identity(), new_identity()
    await befriend_signed(service.ws_url, me, friend)
    async with (
        connect_signed(service.ws_url, friend) as other,
        connect_signed(service.ws_url, me) as client,
    ):
        updates = await client.connectivity()
        await connectivity_until(updates, friend.address, ONLINE)
        await other.block(me.address)
        await connectivity_until(updates, friend.address, OFFLINE)
        await updates.expect_nothing(within=0.3)


# --- One core, two modules ------------------------------------------------------------------


async def test_a_status_set_through_friendships_service_is_seen_through_social_service(
    service, make_user
):
    me, v1_friend = new_identity(), make_user()
    async with connect(service.ws_url, v1_friend.token) as old:
        async with connect_signed(service.ws_url, me) as client:
            accepted(await client.upsert("request", v1_friend.address))
            assert outcome(await old.update("accept", me.address)) == ("event", "")
            updates = await client.connectivity()
            assert outcome(await old.set_status(V1_AWAY)) == ("status", "")
            await connectivity_until(updates, v1_friend.address, AWAY)
            assert profiles(await client.friends()) == [v1_friend.address]
        assert addresses(await old.friends()) == [me.address]


async def test_a_signed_client_is_seen_online_through_friendships_service(service, make_user):
    me, v1_friend = new_identity(), make_user()
    async with connect(service.ws_url, v1_friend.token) as old:
        assert outcome(await old.update("request", me.address)) == ("event", "")
        async with connect_signed(service.ws_url, me) as client:
            accepted(await client.upsert("accept", v1_friend.address))
            await asyncio.sleep(0.1)
            assert addresses(await old.online_friends()) == [me.address]


# --- Outside friends and presence -------------------------------------------------------


@pytest.mark.parametrize("name", ["StartPrivateVoiceChat", "GetSocialSettings"])
async def test_procedures_outside_friends_and_presence_answer_a_remote_error(service, name):
    assert name in NOT_SERVED
    async with connect_signed(service.ws_url, new_identity()) as client:
        with pytest.raises(RemoteError) as error:
            await client.rpc.call(client.port, client.procedures[name], b"")
        assert profiles(await client.friends()) == []  # the connection goes on
    assert error.value.code == 501
    assert f"SocialService.{name} is not served here" in error.value.remote_message
