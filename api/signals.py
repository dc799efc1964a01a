"""How ``serve`` and ``worker`` stop on SIGTERM or SIGINT: nothing more starts, what is in flight
finishes or goes back to the outbox (``notifications.dispatcher``), and the command exits 0 with one line."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
T = TypeVar("T")


class Stopped(Exception):
    """SIGTERM or SIGINT arrived; ``name`` says which."""

    def __init__(self, signum: int) -> None:
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


def _raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signum)


@contextmanager
def raising_stopped() -> Iterator[None]:
    """Within the block SIGTERM and SIGINT raise ``Stopped``: while starting up nothing is under way
    that could not be given up (a transaction rolls back). A server or event loop running inside may
    take the signals over: uvicorn does, and raises the signal again once it has shut down."""
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_until_stopped(main: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> tuple[str | None, T]:
    """Run ``main(stop)`` in a new event loop, where SIGTERM or SIGINT sets ``stop``; return the
    signal's name (``None`` if ``main`` ended by itself) and what ``main`` returned."""

    async def run() -> tuple[str | None, T]:
        stop = asyncio.Event()
        received: list[str] = []  # the names of the signals received
        loop = asyncio.get_running_loop()

        def stopping(signum: int) -> None:
            received.append(signal.Signals(signum).name)
            stop.set()

        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, stopping, signum)
        result = await main(stop)
        return (received[0] if received else None), result

    return asyncio.run(run())
