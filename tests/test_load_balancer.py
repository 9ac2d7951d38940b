"""Clients through HAProxy (deploy/haproxy.cfg) to three processes; one is killed, and its
clients reconnect through the balancer to the others with friends' views right. And a
balancer that cuts idle streams."""

import asyncio
import os
import signal
from dataclasses import dataclass, field

import pytest
from websockets.exceptions import WebSocketException

from presence.rpc.client import StreamClosed
from tests.support import (
    AWAY,
    OFFLINE,
    ONLINE,
    befriend,
    closed_with,
    connect,
    eventually,
    friend_ring,
    haproxy,
    outcome,
    start_service,
    stop_service,
)

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
                    try:
                        assert outcome(await client.set_status(ONLINE)) == ("status", "")
                        self.view, self.status = subscription.view, ONLINE
                        self.sessions += 1
                        ready.set()
                        while True:
                            await subscription.next(timeout=3600)
                    finally:
                        subscription.cancel()
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


@pytest.mark.parametrize("pings", [True, False], ids=["daphne-pings-every-1s", "default-pings"])
async def test_a_balancer_that_cuts_idle_streams(tmp_path, make_user, pings):
    """HAProxy here ends a WebSocket idle for 3 s. With daphne pinging every second the
    streams live on; with its default 20 s they are cut: the client sees 1006, its friends
    see it OFFLINE as for any disconnect, HAProxy logs the cut, the service goes on."""
    daphne_args = ("--ping-interval", "1") if pings else ()
    running = start_service(tmp_path, FAST_REAPING, daphne_args)
    alice, bob, carol = make_user(), make_user(), make_user()
    try:
        await befriend(running.ws_url, alice, bob, carol)
        log = tmp_path / "haproxy.log"
        idle_cut = {"PRESENCE_LB_TUNNEL_TIMEOUT": "3s"}
        with haproxy([running.port] * 3, log, idle_cut) as url:
            # Carol watches directly; alice and bob go through the balancer.
            async with (
                connect(running.ws_url, carol.token) as c,
                connect(url, alice.token) as a,
                connect(url, bob.token) as b,
            ):
                watching = await c.subscribe_presence()
                bob_view = await b.subscribe_presence()
                assert outcome(await a.set_status(ONLINE)) == ("status", "")
                await watching.presence_until(alice.address, ONLINE)
                await bob_view.presence_until(alice.address, ONLINE)
                await asyncio.sleep(5)
                if pings:
                    assert (a.ws.close_code, b.ws.close_code) == (None, None)
                    assert outcome(await a.set_status(AWAY)) == ("status", "")
                    await bob_view.presence_until(alice.address, AWAY)
                    await watching.presence_until(alice.address, AWAY)
                else:
                    assert await closed_with(a.ws) == 1006
                    await watching.presence_until(alice.address, OFFLINE)
                    bob_view.cancel()
        assert running.process.poll() is None
        cut = [line for line in log.read_text().splitlines() if " 101 " in line and " cD" in line]
        assert len(cut) == (0 if pings else 2), log.read_text()
    finally:
        stop_service(running)
