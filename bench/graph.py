"""The benchmark's users, tokens and friend graph, written with the project's own code.

Tokens come from accounts.services.issue_token and friendships are accepted Friendship
rows, so the service authenticates and reads friends exactly as in production; bulk inserts
keep building some 70,000 friendships to seconds. Online users are seeded through
presence.store.online, so Redis holds exactly the keys the service itself writes.
"""

import asyncio
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from accounts.services import issue_token
from friendships.models import Friendship, FriendshipState
from presence.conf import presence_settings

SEED_PROCESS = "bench-seed#00000000"


def address(group: str, index: int) -> str:
    """A stable, valid address per (group, index), spread like real ones."""
    return "0x" + hashlib.sha1(f"{group}-{index}".encode()).hexdigest()


@dataclass
class Graph:
    """Who the benchmark users are, their tokens and their friends."""

    tokens: dict[str, str] = field(default_factory=dict)
    friends: dict[str, set[str]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)

    def befriend(self, one: str, other: str) -> None:
        self.friends.setdefault(one, set()).add(other)
        self.friends.setdefault(other, set()).add(one)

    def ring(self, members: list[str], each_side: int) -> None:
        """Everyone befriends the `each_side` next members on both sides: 2*each_side friends."""
        count = len(members)
        for i, member in enumerate(members):
            for step in range(1, each_side + 1):
                self.befriend(member, members[(i + step) % count])

    def pairs(self) -> set[tuple[str, str]]:
        return {(min(a, b), max(a, b)) for a, friends in self.friends.items() for b in friends}

    def write_relay_file(self, path: Path) -> None:
        """What the relay needs: token -> address, address -> friends."""
        path.write_text(
            json.dumps(
                {
                    "tokens": {token: user for user, token in self.tokens.items()},
                    "friends": {user: sorted(f) for user, f in self.friends.items()},
                }
            )
        )


@dataclass(frozen=True)
class Sizes:
    fanout_friends: tuple[int, ...] = (10, 100, 1000)
    # Users with the same friends take turns, so that no user changes status faster than
    # the service's flap coalescing and status rate limit allow (those would be measured).
    actors_per_size: int = 10
    fanout_idle: int = 2000
    mesh_users: int = 1000
    mesh_friends: int = 50
    conn_users: int = 5000
    conn_anchors: int = 100
    online_users: int = 100_000
    # Users of the capacity curves' connection levels (bench/capacity.py); none unless it runs.
    crowd_users: int = 0
    # The reconnect storm's users (bench/storm.py): the largest burst, friends each.
    storm_users: int = 5000
    storm_friends: int = 50


def actors_of(size: int, sizes: Sizes) -> list[str]:
    """The users who take turns changing status before the same `size` friends."""
    return [address("actor", f"{size}-{k}") for k in range(sizes.actors_per_size)]


def build(sizes: Sizes) -> Graph:
    """Plan the graph and write users, tokens and friendships to the database."""
    graph = Graph()
    biggest = max(sizes.fanout_friends)
    fan_friends = [address("fan-friend", i) for i in range(biggest)]
    actors = []
    for count in sizes.fanout_friends:
        for actor in actors_of(count, sizes):
            actors.append(actor)
            for friend in fan_friends[:count]:
                graph.befriend(actor, friend)
    idle = [address("idle", i) for i in range(sizes.fanout_idle)]
    graph.ring(idle, 5)
    mesh = [address("mesh", i) for i in range(sizes.mesh_users)]
    graph.ring(mesh, sizes.mesh_friends // 2)
    conn = [address("conn", i) for i in range(sizes.conn_users)]
    anchors = [address("anchor", i) for i in range(sizes.conn_anchors)]
    crowd = [address("crowd", i) for i in range(sizes.crowd_users)]
    storm = [address("storm", i) for i in range(sizes.storm_users)]
    graph.ring(conn, 5)
    graph.ring(crowd, 5)
    graph.ring(storm, sizes.storm_friends // 2)
    # And one anchor each, whose ONLINE is each subscription's first item.
    for i, user in enumerate([*conn, *crowd, *storm]):
        graph.befriend(user, anchors[i % len(anchors)])
    graph.groups = {
        "actors": actors,
        "fan-friends": fan_friends,
        "idle": idle,
        "mesh": mesh,
        "conn": conn,
        "anchors": anchors,
        "crowd": crowd,
        "storm": storm,
    }
    with transaction.atomic():
        for user in [*actors, *fan_friends, *idle, *mesh, *conn, *anchors, *crowd, *storm]:
            graph.tokens[user] = issue_token(user)
        Friendship.objects.bulk_create(
            (
                Friendship(
                    user_a_id=a, user_b_id=b, state=FriendshipState.ACCEPTED, requested_by_id=a
                )
                for a, b in sorted(graph.pairs())
            ),
            batch_size=2000,
        )
    return graph


async def seed_online(addresses: Iterable[str]) -> None:
    """Make `addresses` ONLINE through the presence store, as connected users of a seed process.

    As many at a time as the store's Redis pool has connections: more would only wait for
    one, and on a loaded machine past the pool's timeout ("No connection available").
    """

    from presence.events import Status
    from presence.store import keys, online

    remaining = iter(addresses)
    most = presence_settings().max_connections_per_user

    async def lane() -> None:
        for user in remaining:
            connection = keys.connection_id(SEED_PROCESS)
            await online.connect(user, connection, most, online.Device())
            await online.set_status(user, connection, Status.ONLINE)

    await asyncio.gather(*(lane() for _ in range(presence_settings().redis_max_connections)))
