"""A server stream whose items are pushed as they come, coalesced while the client is busy.

Producers `offer` items under a key. While the client has not asked for the next item,
items wait, the latest per key (so a client that stops acking costs at most one item per
key, whatever the churn); with `max_pending`, the oldest key goes beyond it. Once the client
has asked and items wait, up to `per_item` of them are rendered (the renderer is bound when
the stream opens) and sent at once, from whichever comes second, the client's ack or the
offer: no task waits for either.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from google.protobuf.message import Message

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

# Sends one item of the stream: its sequence number and its encoded message.
SendItem = Callable[[int, bytes], Awaitable[None]]


class Feed(Generic[K, T]):
    def __init__(
        self,
        render: Callable[[list[T]], bytes],
        per_item: int | None = None,
        max_pending: int | None = None,
        pending: dict[K, T] | None = None,
        finished: bool = False,
    ) -> None:
        self._render = render
        self._per_item = per_item
        self._max_pending = max_pending
        self._pending: dict[K, T] = dict(pending or {})
        self.peak_backlog = 0
        # The last sequence sent, and whether the client asked for the one after it.
        self.sequence = 0
        self._asked = False
        self._finished = finished
        self._send: SendItem | None = None
        self._done: asyncio.Future[None] | None = None
        self._on_close: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    def of_one(cls, item: Message) -> "Feed[int, Message]":
        """A stream of `item` alone: a subscription that failed to open says why in it."""
        return Feed(lambda items: items[0].SerializeToString(), pending={0: item}, finished=True)

    @property
    def backlog(self) -> int:
        return len(self._pending)

    # --- The producer's side ------------------------------------------------------------

    async def offer(self, key: K, item: T) -> None:
        """Send `item` now if the client asked, else keep it in place of `key`'s last one."""
        self._pending.pop(key, None)
        self._pending[key] = item
        if self._max_pending is not None and len(self._pending) > self._max_pending:
            del self._pending[next(iter(self._pending))]
        self.peak_backlog = max(self.peak_backlog, len(self._pending))
        await self._push()

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await `callback` when the stream closes, however it ends."""
        self._on_close.append(callback)

    # --- The server's side --------------------------------------------------------------

    def start(self, send: SendItem) -> None:
        """Send items through `send` from now on, as the client asks for them."""
        self._send = send
        self._done = asyncio.get_running_loop().create_future()

    async def finished(self) -> None:
        """Return once the feed is finished and every item went out."""
        assert self._done is not None, "a feed finishes once started"
        await self._done

    async def ack(self, sequence: int) -> bool:
        """The client asks for the item after `sequence`; False if it had asked already."""
        if self._asked:
            return False
        if sequence == self.sequence:
            self._asked = True
            await self._push()
        return True

    async def close(self) -> None:
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            await callback()

    async def _push(self) -> None:
        if not self._asked or self._send is None or self._done is None or self._done.done():
            return
        if not self._pending:
            if self._finished:
                self._done.set_result(None)
            return
        batch = self._take()
        try:
            item = self._render(batch)
        except Exception as exc:
            self._done.set_exception(exc)
            return
        self._asked = False
        self.sequence += 1
        await self._send(self.sequence, item)

    def _take(self) -> list[T]:
        """The oldest waiting items, at most `per_item` of them (all by default)."""
        if self._per_item is None or self._per_item >= len(self._pending):
            batch = list(self._pending.values())
            self._pending.clear()
            return batch
        return [self._pending.pop(key) for key in list(self._pending)[: self._per_item]]
