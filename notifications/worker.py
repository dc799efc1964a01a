"""The worker: the dispatcher, the deadline scanner (which beats the worker's heartbeat), the
daily audit checkpoint, the daily retention run and, when a bounce mailbox is configured, the
bounce reader, in ``breachflow worker`` or inside ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import anyio

from breachflow.notifications import bouncebox, heartbeat, reminders
from breachflow.notifications.dispatcher import Dispatcher
from breachflow.notifications.mailer import Mailer
from breachflow.notifications.notices import NoticeWriter
from breachflow.workflow import checkpoints, retention
from breachflow.workflow.context import Context

log = logging.getLogger("breachflow.worker")


def notifications_context(ctx: Context) -> Context:
    """``ctx`` with notices: commands that call for one queue it in their transaction."""
    return ctx.with_notifier(NoticeWriter(ctx.settings, ctx.keys, ctx.periods, ctx.audit_key))


async def scan_forever(ctx: Context, stop: asyncio.Event, wake: asyncio.Event, worker: heartbeat.Worker) -> None:
    """Beat and scan the deadlines every ``reminder_scan_seconds``: a scan that hangs stops the heartbeat."""
    while not stop.is_set():
        try:
            await anyio.to_thread.run_sync(heartbeat.beat, ctx, worker, datetime.now(UTC))
            if await anyio.to_thread.run_sync(reminders.scan, ctx, datetime.now(UTC)):
                wake.set()
        except Exception:  # a failed scan is retried at the next interval
            log.exception("deadline scan failed; trying again")
        with contextlib.suppress(TimeoutError):  # the interval passed without a stop
            await asyncio.wait_for(stop.wait(), timeout=ctx.settings.reminder_scan_seconds)


async def checkpoint_forever(ctx: Context, stop: asyncio.Event) -> None:
    """Write a signed audit checkpoint whenever the newest one is older than the interval."""
    directory = ctx.settings.resolved_checkpoint_dir
    interval = timedelta(hours=ctx.settings.checkpoint_interval_hours)
    while not stop.is_set():
        try:
            latest = checkpoints.latest_at(directory) if directory.is_dir() else None
            if latest is None or datetime.now(UTC) - latest >= interval:
                path = await anyio.to_thread.run_sync(checkpoints.write, ctx, directory)
                log.info("wrote audit checkpoint %s", path)
        except Exception:  # retried at the next look
            log.exception("audit checkpoint failed; trying again")
        with contextlib.suppress(TimeoutError):  # the interval passed without a stop
            await asyncio.wait_for(stop.wait(), timeout=min(interval.total_seconds(), 3600))


def retain(ctx: Context, now: datetime) -> bool:
    """One retention run (``workflow.retention.apply``) at ``now``; a failure is logged, never raised:
    the next run tries again. Returns whether it ran to the end."""
    try:
        retention.apply(notifications_context(ctx), now)
    except Exception:  # retried at the next run
        log.exception("retention run failed; trying again in %g hours", ctx.settings.retention_hours)
        return False
    return True


async def retain_forever(ctx: Context, stop: asyncio.Event) -> None:
    """Run retention at start, then every ``retention_hours``."""
    while not stop.is_set():
        await anyio.to_thread.run_sync(retain, ctx, datetime.now(UTC))
        with contextlib.suppress(TimeoutError):  # the interval passed without a stop
            await asyncio.wait_for(stop.wait(), timeout=ctx.settings.retention_hours * 3600)


async def _abort_when_set(stop: asyncio.Event, reader: bouncebox.Reader) -> None:
    await stop.wait()
    reader.abort()


async def read_bounces_forever(ctx: Context, stop: asyncio.Event, wake: asyncio.Event) -> None:
    """Read the bounce mailbox every ``bounce_poll_seconds``; a failed pass is retried at the next.
    Stopping cuts a pass short, even one waiting for a slow IMAP server."""
    while not stop.is_set():
        reader = bouncebox.Reader(ctx)
        aborting = asyncio.create_task(_abort_when_set(stop, reader))
        try:
            done = await anyio.to_thread.run_sync(reader.read)
            if done.recorded:
                wake.set()  # a bounce message to the handlers is queued
        except Exception:  # the mailbox or the database is away: the next pass tries again
            if not stop.is_set():
                log.exception("reading the bounce mailbox failed; trying again")
        finally:
            aborting.cancel()
        with contextlib.suppress(TimeoutError):  # the interval passed without a stop
            await asyncio.wait_for(stop.wait(), timeout=ctx.settings.bounce_poll_seconds)


async def run_worker(ctx: Context, mailer: Mailer, stop: asyncio.Event | None = None,
                     wake: asyncio.Event | None = None) -> int:
    """Dispatch and scan until ``stop`` is set, then finish or give back what is in flight (see
    ``Dispatcher``) and remove this worker's heartbeat; return how many claimed messages went back
    to the outbox unsent."""
    stop = stop or asyncio.Event()
    wake = wake or asyncio.Event()
    worker = heartbeat.Worker.here(datetime.now(UTC))
    dispatcher = Dispatcher(ctx, mailer)
    try:
        tasks = [dispatcher.run(stop, wake), scan_forever(ctx, stop, wake, worker), checkpoint_forever(ctx, stop),
                 retain_forever(ctx, stop)]
        if bouncebox.configured(ctx.settings):
            tasks.append(read_bounces_forever(ctx, stop, wake))
        await asyncio.gather(*tasks)
    finally:
        try:
            await anyio.to_thread.run_sync(heartbeat.forget, ctx, worker)
        except Exception:  # its row goes stale and the next beat of another worker removes it
            log.exception("could not remove this worker's heartbeat")
    return dispatcher.released
