"""Who may open a connection, and how fast a connection may talk."""

import fnmatch
import time

# The ASGI scope extension (from presence_project.server) a WebSocket's application calls
# once its connection is set up, signed in or closed: the server then accepts another.
SET_UP = "presence.set_up"


def origin_allowed(origin: str | None, allowed: list[str], allow_missing: bool) -> bool:
    """Match the Origin header against patterns like "https://*.example.org" or "*".

    Browsers always send Origin; native clients (the game, scripts) send none, which is
    allowed only when `allow_missing` says so.
    """
    if not origin:
        return allow_missing
    origin = origin.strip().lower()
    return any(fnmatch.fnmatchcase(origin, pattern.lower()) for pattern in allowed)


class FrameBudget:
    """A token bucket: `rate` frames per second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()

    def spend(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
