"""Tables (SQLModel). Queryable facts are plain columns; personal data is sealed bytes.

The incident's plain disclosure columns carry the same names as the fields of
``workflow.disclosure.Disclosure``; its personal fields live sealed in ``incident.personal``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, String, Table, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; breachflow stores aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


def sealed_column(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(LargeBinary, nullable=nullable))


class DataKey(SQLModel, table=True):
    """A data key, wrapped by the master key; ``wrapped`` is NULL once destroyed."""

    __tablename__ = "data_key"
    id: int | None = Field(default=None, primary_key=True)
    wrapped: bytes | None = sealed_column()
    created_at: datetime = utc_column(nullable=False)
    destroyed_at: datetime | None = utc_column()


class School(SQLModel, table=True):
    """A school (a controller). ``contacts`` holds its sealed email addresses; its master data for the
    AP's form (address, KvK number, sector, its DPO's registration number) is plain, its contact
    person for the AP (a name, phone and email: personal data) sealed in ``contact_person``."""

    __tablename__ = "school"
    id: int | None = Field(default=None, primary_key=True)
    brin: str = Field(sa_column=Column(String(8), unique=True, nullable=False))
    name: str
    language: str = "nl"
    contract_ends_on: date | None = None
    data_key_id: int = Field(foreign_key="data_key.id")
    contacts: bytes | None = sealed_column()
    created_at: datetime = utc_column(nullable=False)
    address: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    kvk_number: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))
    sector: str | None = Field(default=None, sa_column=Column(String(30), nullable=True))
    dpo_registration: str | None = Field(default=None, sa_column=Column(String(30), nullable=True))
    contact_person: bytes | None = sealed_column()


class IncidentRow(SQLModel, table=True):
    """An incident of the breach register."""

    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_state_discovered", "state", "discovered_at"),)
    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(sa_column=Column(String(20), unique=True, nullable=False))
    state: str = Field(index=True)
    version: int = 1
    source: str
    reported_at: datetime = utc_column(nullable=False)
    reported_by: str
    updated_at: datetime = utc_column(nullable=False)
    data_key_id: int = Field(foreign_key="data_key.id")
    event_count: int = 0
    head_hash: str = Field(sa_column=Column(String(64), nullable=False))
    personal: bytes | None = sealed_column()
    confirmed_at: datetime | None = utc_column()  # first confirmed as a breach; never cleared, reopened or not
    clock_moved_at: datetime | None = utc_column()  # last correction of discovered_at or a known cause
    clock_moved_by: str | None = None
    # plain disclosure facts (same names as workflow.disclosure.Disclosure)
    discovered_at: datetime | None = utc_column(index=True)
    breach_started_at: datetime | None = utc_column()
    breach_ended_at: datetime | None = utc_column()
    nature_actions: list[str] | None = _json()
    affected_systems: list[str] | None = _json()
    cause_category: str | None = Field(default=None, index=True)
    group_size_min: int | None = None
    group_size_max: int | None = None
    records_count: int | None = None
    data_kinds: list[str] | None = _json()
    special_categories: list[str] | None = _json()
    data_unreadable: bool | None = None
    subjects_informed: bool | None = None
    subjects_informed_count: int | None = None
    fix_tested: bool | None = None
    data_lost_or_altered: bool | None = None
    backup_checked: bool | None = None
    fix_applied: bool | None = None
    system_verified: bool | None = None
    other_eu_countries: list[str] | None = _json()
    severity: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))


class AffectedSchoolRow(SQLModel, table=True):
    """A school affected by an incident, with its own count and notice state."""

    __tablename__ = "affected_school"
    __table_args__ = (UniqueConstraint("incident_id", "school_id"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    affected_count: int | None = None
    informed_at: datetime | None = utc_column()
    informed_via: str | None = None
    told_to_notify_ap_at: datetime | None = utc_column()
    acknowledged_at: datetime | None = utc_column()
    # informing the people affected (GDPR art. 34), as the school recorded it; NULL: not recorded
    people_informed: bool | None = None
    people_informed_at: datetime | None = utc_column()  # when they were told (only when informed)
    people_informed_via: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    people_informed_count: int | None = None
    people_informed_note: bytes | None = sealed_column()  # how, or why not: sealed with the school's key
    people_informed_recorded_at: datetime | None = utc_column()
    destroyed_at: datetime | None = utc_column()  # retention: this school's part of the incident destroyed


class ApNotificationRow(SQLModel, table=True):
    """A notification to the AP (preliminary, final, supplement or withdrawal)."""

    __tablename__ = "ap_notification"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    kind: str
    ap_reference: str
    notified_at: datetime = utc_column(nullable=False)
    school_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    recorded_at: datetime = utc_column(nullable=False)
    recorded_by: str
    delay_reason: bytes | None = sealed_column()


class TimelineEvent(SQLModel, table=True):
    """An append-only event; ``hash`` chains it to the previous event of its incident."""

    __tablename__ = "timeline_event"
    __table_args__ = (UniqueConstraint("incident_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id")
    seq: int
    at: datetime = utc_column(nullable=False)
    actor: str
    kind: str
    from_state: str | None = None
    to_state: str | None = None
    payload: bytes | None = sealed_column()
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))


class DeadlineRow(SQLModel, table=True):
    """One clock of an incident as ``workflow.deadlines`` computes it, kept by the command that
    changes what drives it (``workflow.clocks``), so lists and the scanner query it by index.

    ``school_id`` is NULL for the processor's AP clock. ``is_open``: neither met nor settled.
    ``next_look_at``: when the reminder scanner should next look at it (NULL once it is not open).
    """

    __tablename__ = "deadline"
    __table_args__ = (
        Index("ix_deadline_open_due", "is_open", "due_at", "id"),
        Index("ix_deadline_incident", "incident_id", "is_open", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id")
    kind: str = Field(sa_column=Column(String(20), nullable=False))
    school_id: int | None = Field(default=None, foreign_key="school.id")
    due_at: datetime = utc_column(nullable=False)
    met_at: datetime | None = utc_column()
    outcome: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    is_open: bool
    next_look_at: datetime | None = utc_column(index=True)
    action_id: int | None = Field(default=None, foreign_key="follow_up_action.id")  # kind ``follow_up`` only


class ClockBasis(SQLModel, table=True):
    """The periods the ``deadline`` rows were computed with; other periods recompute them all."""

    __tablename__ = "clock_basis"
    id: int = Field(default=1, primary_key=True)
    periods: str = Field(sa_column=Column(String(200), nullable=False))
    computed_at: datetime = utc_column(nullable=False)


class FollowUpAction(SQLModel, table=True):
    """An action that came out of an incident's evaluation: what (sealed), who, when, and whether
    ``closed`` must wait for it (``blocking``). ``status``: ``open``, ``done`` or ``dropped``."""

    __tablename__ = "follow_up_action"
    __table_args__ = (UniqueConstraint("incident_id", "number"), Index("ix_follow_up_open_due", "status", "due_at"))
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id")
    number: int  # 1, 2, … within its incident
    description: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # sealed with the incident's key
    owner: str = Field(sa_column=Column(String(80), nullable=False))
    due_at: datetime = utc_column(nullable=False)
    blocking: bool = False
    status: str = Field(default="open", sa_column=Column(String(10), nullable=False))
    created_at: datetime = utc_column(nullable=False)
    created_by: str = Field(sa_column=Column(String(80), nullable=False))
    settled_at: datetime | None = utc_column()
    settled_by: str | None = Field(default=None, sa_column=Column(String(80), nullable=True))


class RetentionEntry(SQLModel, table=True):
    """One destruction by the retention job (seed section 4): what was destroyed, of which school and
    incident, under which data key, when and by whom. It names no person."""

    __tablename__ = "retention_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(nullable=False, index=True)
    actor: str = Field(sa_column=Column(String(80), nullable=False))
    what: str = Field(sa_column=Column(String(30), nullable=False))
    school_id: int | None = Field(default=None, foreign_key="school.id")
    brin: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    reference: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    data_key_id: int | None = Field(default=None, foreign_key="data_key.id")
    contract_ended_on: date | None = None
    detail: dict[str, Any] | None = _json()


class UserAccount(SQLModel, table=True):
    """A person or system that uses the API; a ``school`` user is bound to one school."""

    __tablename__ = "user_account"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(80), unique=True, nullable=False))
    role: str
    school_id: int | None = Field(default=None, foreign_key="school.id")
    email: str | None = None
    created_at: datetime = utc_column(nullable=False)
    password_hash: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    language: str = Field(default="nl", sa_column=Column(String(2), nullable=False, server_default="nl"))


class WebSession(SQLModel, table=True):
    """A signed-in browser: only the SHA-256 of its cookie is stored. It ends when signed out,
    at ``expires_at``, or when unused for the idle period (``last_seen_at``)."""

    __tablename__ = "web_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    user_id: int = Field(foreign_key="user_account.id", index=True)
    created_at: datetime = utc_column(nullable=False)
    last_seen_at: datetime = utc_column(nullable=False)
    expires_at: datetime = utc_column(nullable=False)
    ended_at: datetime | None = utc_column()


class ApiToken(SQLModel, table=True):
    """An API token; only its SHA-256 is stored. Revoked or expired tokens stop working."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    label: str | None = None
    created_at: datetime = utc_column(nullable=False)
    expires_at: datetime | None = utc_column()
    revoked_at: datetime | None = utc_column()


class IdempotencyKey(SQLModel, table=True):
    """A report made with an ``Idempotency-Key``: a retry returns the same incident."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("user_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id")
    key: str = Field(sa_column=Column(String(255), nullable=False))
    request_hash: str = Field(sa_column=Column(String(64), nullable=False))
    incident_id: int = Field(foreign_key="incident.id")
    created_at: datetime = utc_column(nullable=False)


class ReferenceCounter(SQLModel, table=True):
    """The last reference number handed out per year (``DL-<year>-<number>``)."""

    __tablename__ = "reference_counter"
    year: int = Field(primary_key=True)
    last: int = 0


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of ``model``."""
    return model.__table__  # type: ignore[attr-defined]  # SQLModel does not declare the attribute it sets


incident_t = table_of(IncidentRow)
school_t = table_of(School)
affected_t = table_of(AffectedSchoolRow)
ap_t = table_of(ApNotificationRow)
event_t = table_of(TimelineEvent)
data_key_t = table_of(DataKey)
counter_t = table_of(ReferenceCounter)
deadline_t = table_of(DeadlineRow)
clock_basis_t = table_of(ClockBasis)
user_t = table_of(UserAccount)
token_t = table_of(ApiToken)
session_t = table_of(WebSession)
action_t = table_of(FollowUpAction)
retention_t = table_of(RetentionEntry)
idempotency_t = table_of(IdempotencyKey)
