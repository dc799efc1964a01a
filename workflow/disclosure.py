"""The disclosure fields of an incident (seed 6c, I–VI, plus what the AP's form asks).

``Disclosure`` holds every field a handler edits. Fields marked ``personal`` are free text or
carry people's details: storage encrypts them; every other field is a queryable fact stored plain.
All fields are optional here; the guards in ``workflow.guards`` say when each becomes required.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class Source(StrEnum):
    """Who reported the incident (seed 6a)."""

    school = "school"
    third_party = "third_party"
    monitoring = "monitoring"


class Action(StrEnum):
    """What happened to personal data (seed 6c-I)."""

    read = "read"
    copied = "copied"
    altered = "altered"
    deleted = "deleted"
    stolen = "stolen"


class CauseCategory(StrEnum):
    """The cause, from which responsibility is derived (seed 6d)."""

    unknown = "unknown"
    system_technical = "system_technical"
    processor_internal = "processor_internal"
    user_error_admin = "user_error_admin"
    user_error_employee = "user_error_employee"
    negligence_parent = "negligence_parent"


class Group(StrEnum):
    """Groups of people who may suffer consequences (seed 6c-IV)."""

    pupils = "pupils"
    parents = "parents"
    staff = "staff"
    other = "other"


class Severity(StrEnum):
    """The AP's four levels of consequences for the people affected."""

    negligible = "negligible"
    limited = "limited"
    considerable = "considerable"
    very_large = "very_large"


class DataKind(StrEnum):
    """Kinds of personal data affected (seed 6c-VI)."""

    special_categories = "special_categories"
    citizen_service_number = "citizen_service_number"
    access_identification = "access_identification"
    financial = "financial"
    learning_performance = "learning_performance"
    contact = "contact"
    other = "other"


def personal(description: str, **kwargs: Any) -> Any:
    """A field that holds personal data or free text: stored encrypted."""
    return Field(default=None, description=description, json_schema_extra={"personal": True}, **kwargs)


def fact(description: str, **kwargs: Any) -> Any:
    """A queryable fact: stored plain."""
    return Field(default=None, description=description, **kwargs)


class AffectedGroup(BaseModel):
    """One group of people affected, with the consequences for them (seed 6c-IV)."""

    model_config = ConfigDict(extra="forbid")

    group: Group
    consequences: str = Field(min_length=1, description="what this group may suffer")
    severity: Severity


class Disclosure(BaseModel):
    """Every field a handler fills in about an incident."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # I. characteristics
    discovered_at: AwareDatetime | None = fact("date and time the breach was discovered")
    discovery_method: str | None = personal("how the breach was discovered")
    breach_started_at: AwareDatetime | None = fact("when the breach possibly started")
    breach_ended_at: AwareDatetime | None = fact("when the breach possibly ended")
    reporter_name: str | None = personal("who reported it")
    reporter_contact: str | None = personal("the reporter's email address or phone number")
    summary: str | None = personal("summary of the incident")
    security_aspect: str | None = personal("which part of security it concerns")
    nature_how: str | None = personal("how it happened")
    nature_actions: list[Action] | None = fact("what happened to the data (read, copied, altered, deleted, stolen)")
    affected_systems: list[str] | None = fact("which of the processor's systems are affected")
    # II. cause
    cause_category: CauseCategory | None = fact("category of the cause")
    cause_description: str | None = personal("the cause, described")
    # III. measures
    measures: str | None = personal("measures taken to prevent (further) damage")
    # IV. who may suffer consequences
    affected_groups: list[AffectedGroup] | None = personal("groups affected and consequences")
    # V. size
    group_size_min: int | None = fact("number of people affected (lower bound)", ge=0)
    group_size_max: int | None = fact("number of people affected (upper bound)", ge=0)
    records_count: int | None = fact("number of records affected", ge=0)
    # VI. kinds of data
    data_kinds: list[DataKind] | None = fact("kinds of personal data affected")
    data_kinds_other: str | None = personal("the other kinds of data, described")
    data_unreadable: bool | None = fact("was the data encrypted or otherwise unreadable")
    data_unreadable_how: str | None = personal("how the data was made unreadable")
    # informing data subjects (GDPR art. 34)
    subjects_informed: bool | None = fact("have the people affected been informed")
    subjects_informed_count: int | None = fact("how many people were informed", ge=0)
    subjects_informed_how: str | None = personal("how the people affected were informed")
    subjects_not_informed_reason: str | None = personal("why the people were not informed")
    # remediation, restore, verification, evaluation (seed 6a)
    fix_description: str | None = personal("the fix for the cause")
    fix_tested: bool | None = fact("the fix was tested thoroughly")
    data_lost_or_altered: bool | None = fact("was data lost or altered")
    backup_description: str | None = personal("which backup was restored")
    backup_checked: bool | None = fact("the backup was checked for correctness")
    fix_applied: bool | None = fact("the fix was applied")
    system_verified: bool | None = fact("the system was verified to work")
    evaluation: str | None = personal("evaluation of how the incident was handled")
    # decisions
    dismissal_reason: str | None = personal("why the report is not a breach")
    reopen_reason: str | None = personal("why the incident is reopened")

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("nature_actions", "data_kinds", "affected_systems")
    @classmethod
    def _unique_sorted(cls, value: list[Any] | None) -> list[Any] | None:
        return None if value is None else sorted(set(value))

    @field_validator("discovered_at", "breach_started_at", "breach_ended_at")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    @field_validator("group_size_max")
    @classmethod
    def _range(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("group_size_min")
        if value is not None and low is not None and value < low:
            raise ValueError(f"must not be below group_size_min ({low})")
        return value

    @field_validator("breach_ended_at")
    @classmethod
    def _ends_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("breach_started_at")
        if value is not None and start is not None and value < start:
            raise ValueError("must not be before breach_started_at")
        return value


PERSONAL_FIELDS: frozenset[str] = frozenset(
    name
    for name, info in Disclosure.model_fields.items()
    if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("personal")
)
FACT_FIELDS: tuple[str, ...] = tuple(n for n in Disclosure.model_fields if n not in PERSONAL_FIELDS)


def label(field: str) -> str:
    """The words a handler reads for a field."""
    info = Disclosure.model_fields.get(field)
    return info.description if info is not None and info.description else field.replace("_", " ")


def cia(actions: list[Action] | None) -> dict[str, bool]:
    """The AP's confidentiality / integrity / availability answer, derived from the actions."""
    acted = set(actions or ())
    return {
        "confidentiality": bool(acted & {Action.read, Action.copied, Action.stolen}),
        "integrity": Action.altered in acted,
        "availability": bool(acted & {Action.deleted, Action.stolen}),
    }
