"""The WebSocket endpoint: hands binary frames to a dcl-rpc session, and closes the
connection when the client session says so. It decides nothing itself."""

import asyncio
import logging
import time
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from presence import events, observability, signed_auth
from presence.admission import SET_UP, FrameBudget, origin_allowed
from presence.conf import presence_settings
from presence.delivery.sessions import ClientSession
from presence.errors import ServiceError, TooManyRequests
from presence.procedures import friendships_service, social_service_v2
from presence.procedures.errors import error_member
from presence.rpc.server import Limits, RpcServerSession
from presence_project.shutdown import CLOSE_SERVICE_RESTART

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4001
CLOSE_ORIGIN_NOT_ALLOWED = 4003
CLOSE_AUTHENTICATION_TIMEOUT = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4029
CLOSE_BY_OPERATOR = 4000
CLOSE_BAD_DEVICE = 4400

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
    # Held from a message's dispatch to the next; a close from elsewhere waits for it.
    turn: asyncio.Lock
    # A close that another process asked for (revocation, an operator's disconnect).
    ending: asyncio.Future[None] | None = None
    # Why the connection ends, for its log line: set by whichever side closes it first.
    close_reason: str | None = None
    opened_at: float = 0.0

    # Without it: every frame hops to a worker thread for Django's stale-connection clean-up.
    async def dispatch(self, message: dict[str, Any]) -> None:
        """Handle a message without Channels' per-message database clean-up, which is a hop
        to a worker thread for every frame; nothing here touches the database directly:
        every query runs through database_sync_to_async, which cleans up around itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    # Without it: Channels gives each connection a layer channel and a task per message.
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve the connection like Channels' AsyncConsumer, without a channel of its own
        (presence.delivery.process_channel serves its user's groups) and without a task per
        message; release its presence however it ends, crashes included."""
        self.scope = scope
        self.base_send = send
        self.turn = asyncio.Lock()
        try:
            while True:
                message = await receive()
                async with self.turn:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            await self._release()

    async def connect(self) -> None:
        origin = dict(self.scope.get("headers", [])).get(b"origin", b"").decode("latin-1")
        if not origin_allowed(
            origin,
            presence_settings().allowed_origins,
            presence_settings().allow_missing_origin,
        ):
            detail = f"origin {origin} is not allowed"
            observability.refused(observability.ORIGIN, detail)
            await self.accept()
            await self.close(code=CLOSE_ORIGIN_NOT_ALLOWED, reason=detail)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            device_kind = events.device_kind((query.get("device") or [None])[0])
        except ValueError as exc:
            observability.refused(observability.BAD_DEVICE, str(exc))
            await self.accept()
            await self.close(code=CLOSE_BAD_DEVICE, reason=str(exc))
            return
        self.budget = FrameBudget(
            presence_settings().frames_per_second, presence_settings().frame_burst
        )
        self.session = session = ClientSession(
            on_revoked=self._revoked,
            on_disconnected=partial(self._close_soon, CLOSE_BY_OPERATOR),
            on_restart=partial(self._close_soon, CLOSE_SERVICE_RESTART),
            # The server accepts more connections as earlier ones sign in (or close).
            on_signed_in=self.scope.get("extensions", {}).get(SET_UP),
            device_kind=device_kind,
        )
        # Log records of this task and of the calls it starts name the connection.
        observability.current_connection.set(session)
        self.opened_at = time.monotonic()
        observability.connection_opened()
        limits = Limits(
            max_ports=presence_settings().max_ports,
            max_concurrent_requests=presence_settings().max_concurrent_requests,
        )
        self.rpc = RpcServerSession(
            self._send_frame,
            _MODULES,
            limits,
            context=session,
            observe=partial(observability.call_ended, error_of=error_member),
            active=session.active,
        )
        await self.accept()
        token = (query.get("access_token") or [None])[0]
        if token:
            try:
                await session.authenticate(token, observability.URL_TOKEN)
            except ServiceError as exc:
                await self._refuse(exc)
                return
        await self.rpc.open()
        self.auth_deadline = asyncio.get_running_loop().call_later(
            presence_settings().auth_timeout_seconds,
            lambda: asyncio.ensure_future(self._close_if_anonymous()),
        )

    async def _close_if_anonymous(self) -> None:
        # In turn: a sign-in frame being handled when the deadline passes finishes first.
        async with self.turn:
            if self.session is not None and self.session.address is None:
                detail = f"authenticate within {presence_settings().auth_timeout_seconds} s"
                observability.refused(observability.AUTH_TIMEOUT, detail)
                await self._close_and_release(CLOSE_AUTHENTICATION_TIMEOUT, detail)

    async def _send_frame(self, data: bytes) -> None:
        await self.send(bytes_data=data)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Oversized frames never get here: presence_project.server has daphne close them.
        if self.session is None:
            return
        if not self.budget.spend():
            # At DEBUG: a client over its budget may send thousands of frames a second.
            observability.refused(
                observability.FRAME_BUDGET, "too many frames: slow down", logging.DEBUG
            )
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
        self.close_reason = self.close_reason or f"closed by the server ({code}): {reason}"
        await self.close(code=code, reason=reason)
        await self._release()

    def _revoked(self) -> None:
        self.ending = asyncio.ensure_future(
            self._close_in_turn(CLOSE_UNAUTHORIZED, "access revoked")
        )

    def _close_soon(self, code: int, reason: str) -> None:
        self.ending = asyncio.ensure_future(self._close_in_turn(code, reason))

    async def _close_in_turn(self, code: int, reason: str) -> None:
        async with self.turn:
            if self.session is not None:
                await self._close_and_release(code, reason)

    async def disconnect(self, code: int) -> None:
        self.close_reason = self.close_reason or f"closed by the client ({code})"
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
        observability.connection_closed(
            self.close_reason or "the server stopped serving it",
            time.monotonic() - self.opened_at,
        )
