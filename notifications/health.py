"""Readiness: the database answers, a worker beat recently, the outbox moves.

What each check says is safe for anyone to read: no names, hosts, counts of the register or
error texts (those go to the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from breachflow.notifications import heartbeat, outbox
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction

log = logging.getLogger("breachflow.health")


@dataclass(frozen=True)
class Check:
    """One check of readiness: its name, whether it passed, and what it found."""

    name: str
    ok: bool
    detail: str


def readiness(ctx: Context, now: datetime) -> list[Check]:
    """Every check at ``now``; when the database cannot be read, that one alone."""
    try:
        with read_transaction(ctx.engine) as conn:
            beats = heartbeat.last_beats(conn)
            backlog = outbox.backlog(conn, now)
    except Exception as exc:  # noqa: BLE001  (whatever the cause, the answer is "not ready"; the log says why)
        log.warning("readiness: the database could not be read: %s: %s", type(exc).__name__, exc)
        return [Check("database", False, "the database could not be read")]
    return [Check("database", True, "answered"), _worker(ctx, beats, now), _outbox(ctx, backlog)]


def _worker(ctx: Context, beats: list[datetime], now: datetime) -> Check:
    limit = ctx.settings.worker_stale_seconds
    if beats and (silent := (now - beats[0]).total_seconds()) <= limit:
        return Check("worker", True, f"last beat {max(silent, 0):.0f} s ago")
    return Check("worker", False, f"no worker has beaten in the last {limit:g} s: run 'breachflow worker', "
                                  "or 'serve' with its worker")


def _outbox(ctx: Context, backlog: outbox.Backlog) -> Check:
    limit = ctx.settings.outbox_stuck_seconds
    problems = []
    if backlog.oldest_due_seconds > limit:
        problems.append(f"a message has been due for {backlog.oldest_due_seconds:.0f} s (limit {limit:g} s)")
    if backlog.expired_claims:
        problems.append(f"{backlog.expired_claims} message(s) held by a dispatcher past their lease")
    if problems:
        return Check("outbox", False, "; ".join(problems))
    return Check("outbox", True, f"no message due longer than {limit:g} s, no claim past its lease")
