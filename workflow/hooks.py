"""The seam through which outer layers add to a command's transaction.

``workflow`` imports neither ``notifications`` nor ``api``. A ``Notifier`` given to the
``Context`` is called by the unit of work (``workflow.unit``) inside every command's transaction
with what the command said happened: it decides from those events whether anyone must hear of
it, may write rows through the same connection (the outbox), and returns timeline events of its
own, so the change, its notices and their events commit together or not at all. Retention asks it,
inside the same kind of transaction, to forget what its notices said (``forget``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection

from breachflow.workflow.incident import Incident
from breachflow.workflow.timeline import Event


class Change(Protocol):
    """What a command did to an incident, as the notifier sees it (a finishing unit of work)."""

    events: list[Event]
    data_key: bytes
    data_key_id: int
    actor: str
    now: datetime

    @property
    def before(self) -> Incident: ...

    @property
    def after(self) -> Incident: ...


class Notifier(Protocol):
    def after_change(self, conn: Connection, change: Change) -> list[Event]:
        """Write what the change calls for through ``conn``; return its timeline events."""

    def forget(self, conn: Connection, incident_id: int, school_id: int | None) -> int:
        """Destroy, through ``conn``, the sealed content of the notices about ``incident_id`` (to
        ``school_id``, or all of them when ``None``) and of what the last notice told that school;
        none still to send is sent. Return how many notices held sealed content."""
