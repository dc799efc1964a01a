"""Tables only notifications use: the outbox, reminders already queued, what each school was told, and
the heartbeats of running workers.

``workflow`` never reads them; notifications writes them through the connection of the command
that calls for a notice, so a notice commits with its change or not at all.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from breachflow.workflow.models import sealed_column, table_of, utc_column


class OutboxStatus(StrEnum):
    """Where a message stands: ``pending`` → ``sending`` (claimed) → ``accepted`` (by the server,
    not yet on the timeline) → ``sent``; or back to ``pending`` to retry; or ``dead``."""

    pending = "pending"
    sending = "sending"
    accepted = "accepted"
    sent = "sent"
    dead = "dead"


class OutboxMessage(SQLModel, table=True):
    """A rendered message waiting for dispatch."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),
                      # a school's messages about an incident in order (``outbox.claim``: none overtakes another)
                      Index("ix_outbox_school_order", "incident_id", "school_id", "id"))
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    school_id: int | None = Field(default=None, foreign_key="school.id")
    data_key_id: int | None = Field(default=None, foreign_key="data_key.id")  # what seals it
    kind: str
    message_id: str = Field(sa_column=Column(String(255), unique=True, nullable=False))
    recipients: bytes | None = sealed_column()  # JSON list, sealed with the key ``data_key_id``
    sealed: bytes | None = sealed_column()  # the serialised MIME message, sealed likewise
    status: str = OutboxStatus.pending.value
    attempts: int = 0
    next_attempt_at: datetime = utc_column(nullable=False)
    claimed_until: datetime | None = utc_column()
    last_error: str | None = None  # never an address: those go to the sealed timeline
    created_at: datetime = utc_column(nullable=False)
    sent_at: datetime | None = utc_column()
    # recipients whose mail bounced after the server accepted it (JSON list, sealed like ``recipients``)
    bounced: bytes | None = sealed_column()
    bounced_at: datetime | None = utc_column()  # the latest bounce read for it


class Reminder(SQLModel, table=True):
    """A deadline reminder already queued: never twice for one deadline and offset."""

    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("incident_id", "deadline", "school_id", "offset_label"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id")
    deadline: str
    school_id: int = 0  # 0: the deadline is not a school's
    offset_label: str
    created_at: datetime = utc_column(nullable=False)


class NoticeSnapshot(SQLModel, table=True):
    """What the last notice to a school about an incident said (sealed), so an update says what changed."""

    __tablename__ = "notice_snapshot"
    incident_id: int = Field(foreign_key="incident.id", primary_key=True)
    school_id: int = Field(foreign_key="school.id", primary_key=True)
    facts: bytes | None = sealed_column()
    data_key_id: int | None = Field(default=None, foreign_key="data_key.id")  # what seals ``facts``
    # the Message-ID of the school's first notice about the incident: later ones refer to it (threading)
    thread_id: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    updated_at: datetime = utc_column(nullable=False)


class WorkerHeartbeat(SQLModel, table=True):
    """A running worker process (``host:pid``): one row each, beaten at every deadline scan, removed
    when it stops; rows silent longer than ``worker_stale_seconds`` are cleaned by the next beat."""

    __tablename__ = "worker_heartbeat"
    worker: str = Field(sa_column=Column(String(255), primary_key=True))
    started_at: datetime = utc_column(nullable=False)
    beat_at: datetime = utc_column(nullable=False)


outbox_t = table_of(OutboxMessage)
reminder_t = table_of(Reminder)
snapshot_t = table_of(NoticeSnapshot)
heartbeat_t = table_of(WorkerHeartbeat)
