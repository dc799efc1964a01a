"""Events per client address in a sliding window: failed authentications (to slow down token
and password guessing) and public reports (to keep a form from flooding the register).

Counted in this process's memory: each ``serve`` worker keeps its own count, and a restart
forgets it. Behind a reverse proxy every client has the proxy's address (run uvicorn with
``--proxy-headers`` there, or rate-limit at the proxy).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
TRACKED_CLIENTS = 10_000  # past this many, clients without recent events are forgotten


class SlidingWindow:
    """At most ``limit`` events (failed authentications, reports) per client in any ``window`` seconds."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._events: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._events.get(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        now = self.clock()
        times = self._recent(client, now)
        if len(times) < self.limit:
            return None
        return max(1, math.ceil(times[-self.limit] + self.window - now))

    def add(self, client: str) -> None:
        """Count an event of ``client``."""
        now = self.clock()
        if client not in self._events and len(self._events) >= TRACKED_CLIENTS:
            self._events = {c: t for c, t in self._events.items() if self._recent(c, now)}
        times = self._recent(client, now)
        times.append(now)
        self._events[client] = times
