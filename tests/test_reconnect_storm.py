"""A reconnect storm: thousands of clients reaching one process at the same moment.

When a process restarts or a balancer moves clients, they all connect at once, and a
process busy for a moment (starting, collecting garbage, serving the storm's first
clients) accepts none of them meanwhile: the kernel must queue them all. With Twisted's
listen backlog of 50, it dropped all but 51, and those clients retried 1, 3, 7... seconds
later while the process sat idle (BENCHMARKS.md, "Reconnect storms").
"""

import asyncio
import os
import signal

import pytest

from tests.support import (
    Service,
    User,
    addresses,
    connect,
    open_tcp_connections,
    running_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 2000
# Long enough for the kernel's handshakes and for the clients' first SYN retries (1 and
# 3 s): a connection dropped for want of room in the queue stays unconnected throughout.
HANDSHAKE_WAIT_SECONDS = 5


async def storm(service: Service, users: list[User]) -> None:
    """Queue a connection of each of `users` in the kernel while the process is stopped, as
    while busy, then let it serve them all: each signs in and asks for its online friends."""
    async with connect(service.ws_url, users[0].token) as first:
        assert addresses(await first.online_friends()) == []
    os.kill(service.process.pid, signal.SIGSTOP)
    try:
        sockets, not_connected = await asyncio.to_thread(
            open_tcp_connections, service.port, len(users), HANDSHAKE_WAIT_SECONDS
        )
    finally:
        os.kill(service.process.pid, signal.SIGCONT)
    assert not_connected == 0, f"{not_connected} of {len(users)} clients were not queued"

    async def served(sock, user) -> list[str]:
        async with connect(service.ws_url, user.token, sock=sock) as client:
            return addresses(await client.online_friends())

    outcomes = await asyncio.gather(
        *(served(sock, user) for sock, user in zip(sockets, users, strict=True)),
        return_exceptions=True,
    )
    refused = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    assert not refused, f"{len(refused)} of {len(users)} refused, e.g. {refused[:3]}"
    assert outcomes == [[]] * len(users)


async def test_a_storm_arriving_while_the_process_is_busy_is_queued_whole_and_all_served(
    tmp_path, redis_client, make_user
):
    users = [make_user() for _ in range(CLIENTS)]
    with running_service(tmp_path) as service:
        await storm(service, users)


async def test_a_storm_is_accepted_as_fast_as_it_is_set_up_so_no_deadline_passes(
    tmp_path, redis_client, make_user
):
    """Accepted whole, the storm's sign-in deadlines and daphne's accept timeouts would all
    start together, and the process, busy with every connection at once, would miss them:
    it accepts only PRESENCE_MAX_CONNECTING at a time, the rest waiting in the kernel."""
    users = [make_user() for _ in range(CLIENTS)]
    short_deadlines = {"PRESENCE_AUTH_TIMEOUT_SECONDS": "1", "PRESENCE_MAX_CONNECTING": "50"}
    with running_service(
        tmp_path, short_deadlines, ("--websocket_connect_timeout", "1")
    ) as service:
        await storm(service, users)
