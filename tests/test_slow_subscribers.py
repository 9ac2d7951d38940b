"""A subscriber that stops acking costs one entry per friend and delays nobody else."""

import asyncio
import time

import pytest

from presence.protocol import friendships_service_pb2 as pb
from tests.support import AWAY, OFFLINE, ONLINE, connect, http_get, new_user, store_friendships

pytestmark = pytest.mark.django_db(transaction=True)

FRIENDS = 200
CHANGES_EACH = 50
CATCH_UP_SECONDS = 5


async def process_stats(service, staff) -> dict:
    status, body = await asyncio.to_thread(
        http_get, service, "/api/v1/presence/process/", staff.token
    )
    assert status == 200, body
    return body


async def test_stalled_subscriber_is_bounded_and_catches_up_with_the_truth(service, make_user):
    stalled, watcher, pinger = make_user(), make_user(), make_user()
    staff = make_user(staff=True)
    friends = [new_user() for _ in range(FRIENDS)]
    store_friendships((f.address, stalled.address) for f in friends)
    store_friendships([(pinger.address, watcher.address)])

    async with (
        connect(service.ws_url, stalled.token) as s,
        connect(service.ws_url, watcher.token) as w,
        connect(service.ws_url, pinger.token) as p,
    ):
        stalled_stream = await s.stream("SubscribeFriendshipPresenceUpdates", s._payload())
        watcher_view = await w.subscribe_presence()
        # The stalled client asks for one item and then never acks again.
        first_item = asyncio.ensure_future(stalled_stream.next())

        clients = []
        for friend in friends:
            client = connect(service.ws_url, friend.token)
            clients.append((client, await client.__aenter__()))
        truth: dict[str, int] = {}

        async def churn(index: int, client) -> None:
            statuses = (ONLINE, AWAY, OFFLINE)
            for change in range(CHANGES_EACH):
                status = statuses[(index + change) % 3]
                await client.set_status(status)
                truth[friends[index].address] = status

        flood = asyncio.gather(*(churn(i, c) for i, (_, c) in enumerate(clients)))
        latencies = []
        while not flood.done():
            for status in (ONLINE, AWAY):
                sent = time.monotonic()
                await p.set_status(status)
                await watcher_view.presence_until(pinger.address, status, timeout=5)
                latencies.append(time.monotonic() - sent)
        await flood

        stats = await process_stats(service, staff)
        assert 0 < stats["peak_presence_backlog"] <= FRIENDS, stats
        # The watcher was never held up by the stalled subscriber (generous: no timing target).
        assert max(latencies) < 4.0, latencies

        # Resume: read until the stream has nothing more; the view must equal the truth. Until
        # it does, a pause of CATCH_UP_SECONDS is "nothing more" (a loaded machine may pause
        # between items); after, one of a second, so a stale item sent last is still seen.
        view: dict[str, int] = {}

        def absorb(raw: bytes) -> None:
            for user in pb.SubscribeFriendshipPresenceUpdatesResponse.FromString(raw).updates.users:
                view[user.user.address] = user.status.type

        def seen() -> dict[str, int]:
            return {address: status for address, status in view.items() if status != OFFLINE}

        expected = {address: status for address, status in truth.items() if status != OFFLINE}
        absorb(await first_item)
        while True:
            quiet = 1.0 if seen() == expected else CATCH_UP_SECONDS
            try:
                absorb(await stalled_stream.next(timeout=quiet))
            except TimeoutError:
                break
        assert seen() == expected

        for client, _ in clients:
            await client.__aexit__(None, None, None)
