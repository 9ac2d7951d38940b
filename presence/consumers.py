"""The WebSocket endpoint: hands binary frames to a dcl-rpc session and group messages to
the client session. It decides nothing itself."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from presence import friendships_service, signed_auth, social_service_v2
from presence.admission import FrameBudget, origin_allowed
from presence.errors import ServiceError, TooManyRequests
from presence.rpc.server import Limits, RpcServerSession
from presence.sessions import ClientSession, FriendshipNotice

logger = logging.getLogger(__name__)

Source = Callable[[], Awaitable[dict[str, Any]]]
Dispatch = Callable[[dict[str, Any]], Awaitable[None]]

CLOSE_UNAUTHORIZED = 4001
CLOSE_ORIGIN_NOT_ALLOWED = 4003
CLOSE_AUTHENTICATION_TIMEOUT = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4029

_MODULES = {
    friendships_service.MODULE_NAME: friendships_service.MODULE,
    social_service_v2.MODULE_NAME: social_service_v2.MODULE,
}


class RpcConsumer(AsyncWebsocketConsumer):
    session: ClientSession | None = None
    rpc: RpcServerSession
    budget: FrameBudget
    auth_deadline: asyncio.TimerHandle | None = None
    first_frame: bool = True

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Handle a message without Channels' per-message database clean-up.

        That clean-up is a hop to a worker thread for every frame and every friend's update,
        and it dominated the profile of fan-out. Nothing here touches the database directly:
        every query runs through database_sync_to_async, which cleans up around itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve the connection like Channels' AsyncConsumer, with a cheaper loop; release its
        presence however it ends, crashes included."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        try:
            await _dispatch_in_turn((receive, self.channel_receive), self.dispatch)
        except StopConsumer:
            pass
        finally:
            await self._release()

    async def connect(self) -> None:
        origin = dict(self.scope.get("headers", [])).get(b"origin", b"").decode("latin-1")
        if not origin_allowed(
            origin,
            settings.PRESENCE["ALLOWED_ORIGINS"],
            settings.PRESENCE["ALLOW_MISSING_ORIGIN"],
        ):
            await self.accept()
            await self.close(
                code=CLOSE_ORIGIN_NOT_ALLOWED, reason=f"origin {origin} is not allowed"
            )
            return
        self.budget = FrameBudget(
            settings.PRESENCE["FRAMES_PER_SECOND"], settings.PRESENCE["FRAME_BURST"]
        )
        self.session = session = ClientSession(self.channel_name)
        limits = Limits(
            max_ports=settings.PRESENCE["MAX_PORTS"],
            max_concurrent_requests=settings.PRESENCE["MAX_CONCURRENT_REQUESTS"],
        )
        self.rpc = RpcServerSession(self._send_frame, _MODULES, limits, context=session)
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("access_token") or [None])[0]
        if token:
            try:
                await session.authenticate(token)
            except ServiceError as exc:
                await self._refuse(exc)
                return
        await self.rpc.open()
        self.auth_deadline = asyncio.get_running_loop().call_later(
            settings.PRESENCE["AUTH_TIMEOUT_SECONDS"],
            lambda: asyncio.ensure_future(self._close_if_anonymous()),
        )

    async def _close_if_anonymous(self) -> None:
        if self.session is not None and self.session.address is None:
            await self._close_and_release(
                CLOSE_AUTHENTICATION_TIMEOUT,
                f"authenticate within {settings.PRESENCE['AUTH_TIMEOUT_SECONDS']} s",
            )

    async def _send_frame(self, data: bytes) -> None:
        # Straight to the server: every frame of a fan-out passes here.
        await self.base_send({"type": "websocket.send", "bytes": data})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Oversized frames never get here: presence_project.server has daphne close them.
        if self.session is None:
            return
        if not self.budget.spend():
            await self.rpc.refuse_frame(bytes_data or b"", "too many frames: slow down")
            return
        if self.first_frame:
            self.first_frame = False
            if signed_auth.is_sign_in_frame(text_data, bytes_data):
                frame = text_data if text_data is not None else bytes_data or b""
                await self._sign_in(self.session, frame)
                return
        if bytes_data is None:
            await self.rpc.reject_text_frame()
            return
        await self.rpc.handle_frame(bytes_data)

    async def _sign_in(self, session: ClientSession, frame: str | bytes) -> None:
        """The first frame is signed-fetch headers: bind the connection, or close it and serve
        nothing more."""
        try:
            await signed_auth.sign_in(session, frame)
        except ServiceError as exc:
            await self._refuse(exc)

    async def _refuse(self, exc: ServiceError) -> None:
        """Close a connection whose sign-in failed, with a code that says why."""
        too_many = isinstance(exc, TooManyRequests)
        await self._close_and_release(
            CLOSE_TOO_MANY_CONNECTIONS if too_many else CLOSE_UNAUTHORIZED, str(exc)
        )

    async def _close_and_release(self, code: int, reason: str) -> None:
        """Close, and serve nothing more: frames that crossed the close are dropped, as
        the closing socket refuses anything sent on it."""
        await self.close(code=code, reason=reason)
        await self._release()

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def _release(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        if self.auth_deadline is not None:
            self.auth_deadline.cancel()
        await self.rpc.close()
        try:
            await session.close()
        except Exception:
            logger.exception("cleaning up connection %s failed", session.connection_id)

    # Channel-layer messages, by their "type".

    async def friendship_event(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            await self.session.friendship_event(FriendshipNotice.from_message(message))

    async def session_revoked(self, message: dict[str, Any]) -> None:
        await self._close_and_release(CLOSE_UNAUTHORIZED, "access revoked")


async def _dispatch_in_turn(sources: tuple[Source, ...], dispatch: Dispatch) -> None:
    """Read every source in a task of its own and dispatch one message at a time.

    Channels' loop makes a task and an asyncio.wait for every message, which showed in the
    fan-out profile; here each source has one long-lived reader. Handlers still never run
    side by side, and a source is read again only once its message was handled. Returns or
    raises (StopConsumer included) when the first reader does.
    """
    turn = asyncio.Lock()

    async def read(source: Source) -> None:
        while True:
            message = await source()
            async with turn:
                await dispatch(message)

    readers = [asyncio.ensure_future(read(source)) for source in sources]
    try:
        done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
        for reader in done:
            reader.result()
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
