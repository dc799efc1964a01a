"""The dispatcher: claim what is due, send it over reused connections, record the outcomes.

Each accepted message is marked ``accepted`` before its connection sends the next one, so a
killed dispatcher re-sends at most one message per connection. Those marks are group-committed:
what is accepted while a commit runs goes into the next one, since a commit per message would cap
sending near 1,000 messages a second. The rest of each outcome (timeline, schools informed) is
recorded per batch, in one transaction.

Stopping (``run``'s ``stop``): no further claim and no further send starts; sends in flight get
``shutdown_grace_seconds`` to finish, then they are cut off. Whatever was claimed and not sent is
given back to the outbox at once (``outbox.release``), what was sent is recorded as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime

import anyio
from prometheus_client import Counter

from breachflow.notifications import bounces, outbox
from breachflow.notifications.mailer import DeliveryError, Mailer
from breachflow.workflow.context import Context

log = logging.getLogger("breachflow.dispatcher")
# this process's deliveries, for /metrics (api.metrics) or 'breachflow worker --metrics-port'
SENT = Counter("breachflow_messages_sent", "Messages the mail server accepted, sent by this process", registry=None)
FAILED = Counter("breachflow_message_failures", "Failed deliveries by this process, by what follows (retry, dead)",
                 ["outcome"], registry=None)
FAILURE_OUTCOMES = ("retry", "dead")
for outcome in FAILURE_OUTCOMES:
    FAILED.labels(outcome)  # at 0 from the start: a rate needs a series before the first failure


class Acceptances:
    """Marks accepted messages in the outbox as they are accepted, in group commits."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._committing: asyncio.Task[None] | None = None

    async def accepted(self, message_id: int) -> None:
        """Return once the acceptance of outbox row ``message_id`` is committed."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((message_id, done))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit())
        await done

    async def _commit(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await anyio.to_thread.run_sync(outbox.accept, self.ctx, [i for i, _ in batch], datetime.now(UTC))
            except Exception:  # the batch's record marks them sent all the same
                log.exception("could not mark %d accepted message(s) at once", len(batch))
            for _, done in batch:
                if not done.done():
                    done.set_result(None)


class Dispatcher:
    """Sends the outbox through a ``Mailer``."""

    def __init__(self, ctx: Context, mailer: Mailer) -> None:
        self.ctx, self.mailer = ctx, mailer
        self.acceptances = Acceptances(ctx)
        # a message holds its place until its acceptance is committed: never more in flight than connections
        self._in_flight = asyncio.Semaphore(ctx.settings.smtp_connections)
        self._stopping = asyncio.Event()  # set: nothing more is claimed or starts sending
        self._sending: set[asyncio.Task] = set()  # sends in flight, cut off when the grace period ends
        self.released = 0  # claims given back unsent while stopping

    async def _send(self, item: outbox.Claimed) -> outbox.Outcome | None:
        """Send one message; ``None`` when it was not sent because the dispatcher is stopping."""
        async with self._in_flight:
            if self._stopping.is_set():
                return None
            if not item.recipients:  # every address it had was unusable (see ``notices``)
                return outbox.Outcome(item, error="no usable recipient address", permanent=True)
            send = asyncio.create_task(self.mailer.send(self._sender(item), item.recipients, item.message))
            self._sending.add(send)
            try:
                refused = await send
            except DeliveryError as exc:
                return outbox.Outcome(item, error=str(exc), permanent=exc.permanent, refused=exc.refused)
            except Exception as exc:  # a mailer's fault (a full disk, a bad row): this message's failure, not the batch's
                log.exception("sending outbox message %d failed", item.id)
                return outbox.Outcome(item, error=f"{type(exc).__name__}: {exc}")
            except asyncio.CancelledError:
                task = asyncio.current_task()  # never None: this runs in a task
                if task is not None and task.cancelling():  # this task is cancelled, not just its send
                    raise
                return None  # cut off after the grace period: the connection is closed, nothing accepted
            finally:
                self._sending.discard(send)
            await self.acceptances.accepted(item.id)
        return outbox.Outcome(item, refused=refused)

    def _sender(self, item: outbox.Claimed) -> str:
        """The envelope sender: with a bounce address, one naming the message (VERP), so its bounce is matched."""
        bounce_address = self.ctx.settings.bounce_address
        return bounces.return_path(bounce_address, item.message_id) if bounce_address else self.ctx.settings.sender[1]

    async def _send_in_order(self, items: list[outbox.Claimed]) -> list[outbox.Outcome | None]:
        return [await self._send(item) for item in items]

    async def run_once(self) -> dict[str, int]:
        """Send one batch of due messages; return how many were sent, retried and dead.

        Messages to one school about one incident go one after another, oldest first, so a
        school does not read the update before the first notice; the rest go concurrently.
        """
        if self._stopping.is_set():
            return {"sent": 0, "retry": 0, "dead": 0}
        now = datetime.now(UTC)
        claimed, known = await anyio.to_thread.run_sync(
            outbox.claim, self.ctx, self.ctx.settings.dispatch_batch, now)
        queues: dict[tuple, list[outbox.Claimed]] = defaultdict(list)
        for item in claimed:  # claimed oldest first
            queues[(item.incident_id, item.school_id, item.id if item.school_id is None else 0)].append(item)
        groups = list(queues.values())
        sent = await asyncio.gather(*(self._send_in_order(items) for items in groups))
        unsent = [item.id for items, outcomes in zip(groups, sent, strict=True)
                  for item, o in zip(items, outcomes, strict=True) if o is None]
        if unsent:
            await anyio.to_thread.run_sync(outbox.release, self.ctx, unsent)
            self.released += len(unsent)
        outcomes = known + [outcome for group in sent for outcome in group if outcome is not None]
        counts = await anyio.to_thread.run_sync(outbox.record, self.ctx, outcomes, datetime.now(UTC))
        SENT.inc(counts["sent"])
        for outcome in FAILURE_OUTCOMES:
            FAILED.labels(outcome).inc(counts[outcome])
        if counts["retry"] or counts["dead"]:
            log.warning("outbox: %(sent)d sent, %(retry)d to retry, %(dead)d dead", counts)
        return counts

    async def drain(self) -> dict[str, int]:
        """Send until nothing is due right now (or the dispatcher is stopping)."""
        total = {"sent": 0, "retry": 0, "dead": 0}
        while True:
            counts = await self.run_once()
            for key, value in counts.items():
                total[key] += value
            if not any(counts.values()) or self._stopping.is_set():
                return total

    async def run(self, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
        """Dispatch until ``stop`` is set, then stop as the module says; ``wake`` (set after a command
        queued mail) skips the wait."""
        wake = wake or asyncio.Event()
        stopping = asyncio.create_task(self._stop_when_set(stop))
        try:
            while not stop.is_set():
                try:
                    await self.drain()
                except Exception:  # a database or key hiccup must not end the worker; it is retried
                    log.exception("dispatch round failed; trying again")
                wake.clear()
                waits = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
                await asyncio.wait(waits, timeout=self.ctx.settings.dispatch_poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
                for task in waits:
                    task.cancel()
        finally:
            stopping.cancel()
            await self.mailer.close()

    async def _stop_when_set(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping.set()
        grace = self.ctx.settings.shutdown_grace_seconds
        if self._sending:
            log.info("stopping: %d send(s) in flight get %g s to finish", len(self._sending), grace)
        await asyncio.sleep(grace)
        if self._sending:
            log.warning("stopping: cut off %d send(s) after %g s; they go back to the outbox", len(self._sending), grace)
        for send in list(self._sending):
            send.cancel()
