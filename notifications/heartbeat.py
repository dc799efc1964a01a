"""The worker's heartbeat in the database, so readiness can tell from any process or machine that a
worker runs: one ``worker_heartbeat`` row per worker process, beaten at every deadline scan."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.notifications.models import heartbeat_t
from breachflow.workflow.context import Context
from breachflow.workflow.db import write_transaction


@dataclass(frozen=True)
class Worker:
    """This worker process: ``host:pid`` and when it started."""

    id: str
    started_at: datetime

    @classmethod
    def here(cls, now: datetime) -> Worker:
        return cls(f"{socket.gethostname()[:200]}:{os.getpid()}", now)


def beat(ctx: Context, worker: Worker, now: datetime) -> None:
    """Record that ``worker`` is alive at ``now``; remove the rows of workers silent too long."""
    with write_transaction(ctx.engine) as conn:
        mine = heartbeat_t.c.worker == worker.id
        if conn.execute(sa.update(heartbeat_t).where(mine).values(beat_at=now)).rowcount == 0:
            conn.execute(sa.insert(heartbeat_t).values(worker=worker.id, started_at=worker.started_at, beat_at=now))
        silent = now - timedelta(seconds=ctx.settings.worker_stale_seconds)
        conn.execute(sa.delete(heartbeat_t).where(heartbeat_t.c.beat_at < silent))


def forget(ctx: Context, worker: Worker) -> None:
    """Remove ``worker``'s row: it stopped."""
    with write_transaction(ctx.engine) as conn:
        conn.execute(sa.delete(heartbeat_t).where(heartbeat_t.c.worker == worker.id))


def last_beats(conn: Connection) -> list[datetime]:
    """When each worker with a row last beat, newest first."""
    return list(conn.execute(sa.select(heartbeat_t.c.beat_at).order_by(heartbeat_t.c.beat_at.desc())).scalars())
