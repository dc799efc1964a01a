"""The seam through which outer layers add to a command's transaction.

``workflow`` imports neither ``notifications`` nor ``api``. A ``Notifier`` given to the
``Context`` is called by the unit of work (``workflow.unit``) inside every command's transaction
with what the command said happened: it decides from those events whether anyone must hear of
it, may write rows through the same connection (the outbox), and returns timeline events of its
own, so the change, its notices and their events commit together or not at all. It also opens,
for a school's data-subject request (``workflow.subjects``), the notices it wrote to that school;
retention asks it, inside the same kind of transaction, to forget what its notices said (``forget``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

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


@dataclass(frozen=True)
class HeldNotice:
    """A notice to a school as breachflow holds it, opened with the key that seals it: ``texts`` maps
    where each part sits (``recipients[0]``, ``subject``, ``body``) to its value."""

    incident_id: int
    message_id: str
    texts: dict[str, Any]


class Notifier(Protocol):
    def after_change(self, conn: Connection, change: Change) -> list[Event]:
        """Write what the change calls for through ``conn``; return its timeline events."""

    def notices_to(self, conn: Connection, school_id: int, incident_ids: list[int]) -> list[HeldNotice]:
        """The notices to school ``school_id`` about ``incident_ids``, opened, oldest first; those whose
        key retention destroyed are left out (nothing of them can be read)."""

    def forget(self, conn: Connection, incident_id: int, school_id: int | None) -> int:
        """Destroy, through ``conn``, the sealed content of the notices about ``incident_id`` (to
        ``school_id``, or all of them when ``None``) and of what the last notice told that school;
        none still to send is sent. Return how many notices held sealed content."""
