"""The seam through which outer layers add to a command's transaction.

``workflow`` imports neither ``notifications`` nor ``api``. A ``Notifier`` given to the
``Context`` is called inside a command's transaction after the incident changed: it may write
rows through the same connection (the outbox) and returns the timeline events to append, so the
change, its notices and their events commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from workflow.incident import Incident

SCHOOLS_ADDED = "schools_added"  # ``Change.trigger`` when schools join a confirmed incident


@dataclass(frozen=True)
class Change:
    """What a command did to an incident."""

    before: Incident
    after: Incident
    trigger: str | None  # a lifecycle trigger, SCHOOLS_ADDED, or None: a handler asked for an update
    data_key: bytes
    actor: str
    now: datetime
    message: str | None = None  # the handler's own words for an update notice


@dataclass(frozen=True)
class Note:
    """A timeline event a hook wants appended to the incident's chain."""

    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


class Notifier(Protocol):
    def after_change(self, conn: Connection, change: Change) -> list[Note]:
        """Write what the change calls for through ``conn``; return its timeline events."""
