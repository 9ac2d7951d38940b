"""A test-sized soak: a few hundred clients connect, change status and leave for a while;
at the end every client's view of its friends equals the truth."""

import asyncio
import os
import random
import time

import pytest

from presence.protocol import friendships_service_pb2 as pb
from presence.rpc.client import StreamClosed
from tests.support import AWAY, OFFLINE, ONLINE, connect, friend_ring

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = int(os.environ.get("SOAK_CLIENTS", "300"))
SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
FRIENDS_EACH_WAY = 5  # a ring: everyone is friends with the 5 before and the 5 after


class Client:
    def __init__(self, address: str, token: str, friends: set[str], settled: asyncio.Event) -> None:
        self.address = address
        self.settled = settled
        self.token = token
        self.friends = friends
        self.status = OFFLINE  # the truth, as friends must see it
        self.view: dict[str, int] = {}
        self.errors: list[str] = []
        self.rate_limited = 0

    async def follow(self, stream) -> None:
        try:
            while True:
                raw = await stream.next()
                update = pb.SubscribeFriendshipPresenceUpdatesResponse.FromString(raw)
                if update.WhichOneof("response") != "updates":
                    self.errors.append(f"subscription: {update}")
                    return
                for user in update.updates.users:
                    self.view[user.user.address] = user.status.type
        except StreamClosed:
            pass

    async def set(self, connection, status: int) -> None:
        response = await connection.set_status(status)
        kind = response.WhichOneof("response")
        if kind == "status":
            self.status = status
        elif kind == "too_many_requests_error":
            self.rate_limited += 1
        else:
            self.errors.append(f"SetPresenceStatus: {response}")

    async def session(self, url: str, until: float, final: bool) -> None:
        """One connection: subscribe, change status a few times, then leave unless final."""
        async with connect(url, self.token) as connection:
            self.view = {}
            stream = await connection.stream(
                "SubscribeFriendshipPresenceUpdates", connection._payload()
            )
            follower = asyncio.ensure_future(self.follow(stream))
            try:
                while time.monotonic() < until:
                    await self.set(connection, random.choice((ONLINE, AWAY, OFFLINE)))
                    await asyncio.sleep(random.uniform(0.2, 2.0))
                    if not final and random.random() < 0.3:
                        break
                if final:
                    await self.set(connection, random.choice((ONLINE, AWAY, OFFLINE)))
                    await self.settled.wait()
            finally:
                follower.cancel()
                await asyncio.wait([follower])
                if not follower.cancelled() and follower.exception() is not None:
                    self.errors.append(f"{self.address} subscription: {follower.exception()!r}")
            self.status = OFFLINE if not final else self.status

    async def run(self, url: str, deadline: float) -> None:
        try:
            while time.monotonic() < deadline - 3:
                await self.session(url, deadline - 3, final=False)
                self.status = OFFLINE
                await asyncio.sleep(random.uniform(0, 0.5))
            await self.session(url, deadline, final=True)
        except Exception as exc:
            # A client that failed is gone: its friends must see it OFFLINE, and it is reported.
            self.status = OFFLINE
            self.errors.append(f"{self.address}: {exc!r}")


def build_graph(settled: asyncio.Event) -> list[Client]:
    ring = friend_ring(CLIENTS, FRIENDS_EACH_WAY)
    return [Client(address, token, friends, settled) for address, token, friends in ring]


async def test_soak_every_final_view_equals_the_truth(service):
    settled = asyncio.Event()
    clients = build_graph(settled)
    mark = service.log_mark()
    deadline = time.monotonic() + SECONDS
    runs = [asyncio.ensure_future(client.run(service.ws_url, deadline)) for client in clients]
    # Everyone ends connected with a final status; give the last changes time to arrive.
    await asyncio.sleep(deadline + 5 - time.monotonic())
    truth = {client.address: client.status for client in clients}
    wrong = [
        (client.address, friend, client.view.get(friend, OFFLINE), truth[friend])
        for client in clients
        for friend in client.friends
        if client.view.get(friend, OFFLINE) != truth[friend]
    ]
    settled.set()
    await asyncio.gather(*runs)
    # Errors until the very end: leaving, and the subscriptions' last reads, count too.
    errors = [error for client in clients for error in client.errors]
    assert errors == [], f"{len(errors)} errors, e.g. {errors[:5]}"
    assert "Traceback" not in service.logged_since(mark), service.log_tail(40)
    assert wrong == [], f"{len(wrong)} wrong views, e.g. {wrong[:5]}"
