"""Clients through HAProxy (deploy/haproxy.cfg) to three processes; one is killed, and its
clients reconnect through the balancer to the others with friends' views right."""

import asyncio
import os
import signal
from dataclasses import dataclass, field

import pytest
from websockets.exceptions import WebSocketException

from presence.rpc.client import StreamClosed
from tests.conftest import start_service, stop_service
from tests.support import OFFLINE, ONLINE, connect, eventually, friend_ring, haproxy

pytestmark = pytest.mark.django_db(transaction=True)

USERS = 30
FAST_REAPING = {"PRESENCE_HEARTBEAT_SECONDS": "1", "PRESENCE_PROCESS_TTL_SECONDS": "2"}


@dataclass
class Member:
    """A user whose client reconnects through the balancer when its connection is lost,
    unless it is one that gives up (`returns` False)."""

    address: str
    token: str
    friends: set[str]
    returns: bool
    status: int = OFFLINE
    view: dict[str, int] = field(default_factory=dict)
    sessions: int = 0
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, url: str, ready: asyncio.Event) -> None:
        while True:
            try:
                async with connect(url, self.token) as client:
                    subscription = await client.subscribe_presence()
                    assert (await client.set_status(ONLINE)).WhichOneof("response") == "status"
                    self.view, self.status = subscription.view, ONLINE
                    self.sessions += 1
                    ready.set()
                    while True:
                        await subscription.next(timeout=3600)
            except (StreamClosed, OSError, TimeoutError, WebSocketException):
                self.status = OFFLINE
                self.lost.set()
                if not self.returns:
                    self.view = {}
                    return
                await asyncio.sleep(0.2)

    def wrong(self, truth: dict[str, int]) -> list[tuple[str, str, int, int]]:
        if self.status == OFFLINE:
            return []
        return [
            (self.address, friend, self.view.get(friend, OFFLINE), truth[friend])
            for friend in self.friends
            if self.view.get(friend, OFFLINE) != truth[friend]
        ]


def members() -> list[Member]:
    """USERS users in a ring, each a friend of the two before and the two after, so that
    every process holds friends of users on the others."""
    return [
        Member(address, token, friends, returns=i % 2 == 0)
        for i, (address, token, friends) in enumerate(friend_ring(USERS, 2))
    ]


async def views_right(everyone: list[Member], within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        truth = {m.address: m.status for m in everyone}
        wrong = [entry for m in everyone for entry in m.wrong(truth)]
        if not wrong:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{len(wrong)} wrong views, e.g. {wrong[:5]}")
        await asyncio.sleep(0.2)


async def test_killed_process_clients_reconnect_through_the_balancer(tmp_path):
    processes = [start_service(tmp_path, FAST_REAPING) for _ in range(3)]
    everyone = members()
    runs: list[asyncio.Task[None]] = []
    try:
        with haproxy([p.port for p in processes], tmp_path / "haproxy.log") as url:
            for member in everyone:
                ready = asyncio.Event()
                runs.append(asyncio.ensure_future(member.run(url, ready)))
                await asyncio.wait_for(ready.wait(), 10)
            await views_right(everyone, within=10)

            doomed = processes[0]
            os.kill(doomed.process.pid, signal.SIGKILL)
            # Its clients, and only they, lose their connection; leastconn spread them evenly.
            await asyncio.sleep(1.0)
            moved = [m for m in everyone if m.lost.is_set()]
            assert 3 <= len(moved) <= 17, len(moved)

            # Those who come back are served by the two others; friends see the ones who do
            # not come back OFFLINE once the dead process is reaped, and the rest ONLINE.
            returned = [m for m in moved if m.returns]
            gone = [m for m in moved if not m.returns]
            assert returned and gone

            async def all_back() -> bool:
                return all(m.sessions == 2 and m.status == ONLINE for m in returned)

            await eventually(all_back, timeout=15)
            await views_right(everyone, within=20)
            assert all(m.status == OFFLINE for m in gone)
            assert all(m.sessions == 1 for m in everyone if m not in moved)
            # No client's loop failed on something else than a lost connection.
            assert [run.exception() for run in runs if run.done()] == [None] * len(gone)
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for running in processes[1:]:
            stop_service(running)
