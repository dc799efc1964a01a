"""The disclosure fields of an incident (seed 6c, I–VI, plus what the AP's form asks).

``Disclosure`` holds every field a handler edits. Fields marked ``personal`` are free text or
carry people's details: storage encrypts them; every other field is a queryable fact stored plain.
All fields are optional here; the guards in ``workflow.guards`` say when each becomes required.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from breachflow.workflow.validation import Count, Items, LongText, Moment, ShortText


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


TIME_FIELDS = ("discovered_at", "breach_started_at", "breach_ended_at")


class AffectedGroup(BaseModel):
    """One group of people affected, with the consequences for them (seed 6c-IV)."""

    model_config = ConfigDict(extra="forbid")

    group: Group
    consequences: LongText = Field(min_length=1, description="what this group may suffer")
    severity: Severity


class Disclosure(BaseModel):
    """Every field a handler fills in about an incident."""

    model_config = ConfigDict(extra="forbid")

    # I. characteristics
    discovered_at: Moment | None = fact("date and time the breach was discovered")
    discovery_method: LongText | None = personal("how the breach was discovered")
    breach_started_at: Moment | None = fact("when the breach possibly started")
    breach_ended_at: Moment | None = fact("when the breach possibly ended")
    reporter_name: ShortText | None = personal("who reported it")
    reporter_contact: ShortText | None = personal("the reporter's email address or phone number")
    summary: LongText | None = personal("summary of the incident")
    security_aspect: ShortText | None = personal("which part of security it concerns")
    nature_how: LongText | None = personal("how it happened")
    nature_actions: Items[Action] | None = fact("what happened to the data (read, copied, altered, deleted, stolen)")
    affected_systems: Items[ShortText] | None = fact("which of the processor's systems are affected")
    # II. cause
    cause_category: CauseCategory | None = fact("category of the cause")
    cause_description: LongText | None = personal("the cause, described")
    # III. measures
    measures: LongText | None = personal("measures taken to prevent (further) damage")
    # IV. who may suffer consequences
    affected_groups: Items[AffectedGroup] | None = personal("groups affected and consequences")
    # V. size
    group_size_min: Count | None = fact("number of people affected (lower bound)")
    group_size_max: Count | None = fact("number of people affected (upper bound)")
    records_count: Count | None = fact("number of records affected")
    # VI. kinds of data
    data_kinds: Items[DataKind] | None = fact("kinds of personal data affected")
    data_kinds_other: ShortText | None = personal("the other kinds of data, described")
    data_unreadable: StrictBool | None = fact("was the data encrypted or otherwise unreadable")
    data_unreadable_how: LongText | None = personal("how the data was made unreadable")
    # informing data subjects (GDPR art. 34)
    subjects_informed: StrictBool | None = fact("have the people affected been informed")
    subjects_informed_count: Count | None = fact("how many people were informed")
    subjects_informed_how: LongText | None = personal("how the people affected were informed")
    subjects_not_informed_reason: LongText | None = personal("why the people were not informed")
    # remediation, restore, verification, evaluation (seed 6a)
    fix_description: LongText | None = personal("the fix for the cause")
    fix_tested: StrictBool | None = fact("the fix was tested thoroughly")
    data_lost_or_altered: StrictBool | None = fact("was data lost or altered")
    backup_description: LongText | None = personal("which backup was restored")
    backup_checked: StrictBool | None = fact("the backup was checked for correctness")
    fix_applied: StrictBool | None = fact("the fix was applied")
    system_verified: StrictBool | None = fact("the system was verified to work")
    evaluation: LongText | None = personal("evaluation of how the incident was handled")
    # decisions
    dismissal_reason: LongText | None = personal("why the report is not a breach")
    reopen_reason: LongText | None = personal("why the incident is reopened")

    @field_validator("*")
    @classmethod
    def _blank_is_none(cls, value: object, info: ValidationInfo) -> object:
        if info.field_name in TEXT_FIELDS and value == "":  # texts arrive stripped (ShortText, LongText)
            return None  # a blank text clears the field; a blank time, number or list is refused
        return value

    @field_validator("nature_actions", "data_kinds", "affected_systems")
    @classmethod
    def _unique_sorted(cls, value: list[Any] | None) -> list[Any] | None:
        return None if value is None else sorted(set(value))

    @field_validator("group_size_max")
    @classmethod
    def _range(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("group_size_min")
        if value is not None and low is not None and value < low:
            raise ValueError(f"must not be below group_size_min ({low})")
        return value

    # Times in order: started ≤ discovered, ended ≥ started. The service validates the stored
    # fields merged with the new ones, so these compare the whole record, not just the request.
    @field_validator("breach_started_at")
    @classmethod
    def _starts_before_discovery(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        discovered = info.data.get("discovered_at")
        if value is not None and discovered is not None and value > discovered:
            raise ValueError(f"must not be after discovered_at ({discovered.isoformat()})")
        return value

    @field_validator("breach_ended_at")
    @classmethod
    def _ends_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("breach_started_at")
        if value is not None and start is not None and value < start:
            raise ValueError(f"must not be before breach_started_at ({start.isoformat()})")
        return value


PERSONAL_FIELDS: frozenset[str] = frozenset(
    name
    for name, info in Disclosure.model_fields.items()
    if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("personal")
)
FACT_FIELDS: tuple[str, ...] = tuple(n for n in Disclosure.model_fields if n not in PERSONAL_FIELDS)
TEXT_FIELDS: frozenset[str] = frozenset(
    name for name, info in Disclosure.model_fields.items()
    if any(arg is str or get_args(arg)[:1] == (str,) for arg in get_args(info.annotation))
)


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
