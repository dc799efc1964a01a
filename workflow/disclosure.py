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


class SpecialCategory(StrEnum):
    """Special categories of personal data (GDPR art. 9) and criminal data (art. 10)."""

    racial_or_ethnic_origin = "racial_or_ethnic_origin"
    political_opinions = "political_opinions"
    religious_or_philosophical_beliefs = "religious_or_philosophical_beliefs"
    trade_union_membership = "trade_union_membership"
    genetic = "genetic"
    biometric = "biometric"
    health = "health"
    sex_life_or_orientation = "sex_life_or_orientation"
    criminal = "criminal"


class Country(StrEnum):
    """The other countries of the EU and the EEA (ISO 3166-1 alpha-2), where the GDPR applies too."""

    AT = "AT"
    BE = "BE"
    BG = "BG"
    CY = "CY"
    CZ = "CZ"
    DE = "DE"
    DK = "DK"
    EE = "EE"
    ES = "ES"
    FI = "FI"
    FR = "FR"
    GR = "GR"
    HR = "HR"
    HU = "HU"
    IE = "IE"
    IS = "IS"
    IT = "IT"
    LI = "LI"
    LT = "LT"
    LU = "LU"
    LV = "LV"
    MT = "MT"
    NO = "NO"
    PL = "PL"
    PT = "PT"
    RO = "RO"
    SE = "SE"
    SI = "SI"
    SK = "SK"


class DataKind(StrEnum):
    """Kinds of personal data affected (seed 6c-VI)."""

    special_categories = "special_categories"
    citizen_service_number = "citizen_service_number"
    access_identification = "access_identification"
    financial = "financial"
    learning_performance = "learning_performance"
    contact = "contact"
    other = "other"


def personal(description: str, *, nl: str, **kwargs: Any) -> Any:
    """A field that holds personal data or free text: stored encrypted. ``nl``: its Dutch label."""
    return Field(default=None, description=description, json_schema_extra={"personal": True, "nl": nl}, **kwargs)


def fact(description: str, *, nl: str, **kwargs: Any) -> Any:
    """A queryable fact: stored plain. ``nl``: its Dutch label."""
    return Field(default=None, description=description, json_schema_extra={"nl": nl}, **kwargs)


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
    discovered_at: Moment | None = fact("date and time the breach was discovered", nl="datum en tijd waarop het datalek is ontdekt")
    discovery_method: LongText | None = personal("how the breach was discovered", nl="hoe het datalek is ontdekt")
    breach_started_at: Moment | None = fact("when the breach possibly started", nl="wanneer het datalek mogelijk is begonnen")
    breach_ended_at: Moment | None = fact("when the breach possibly ended", nl="wanneer het datalek mogelijk is geëindigd")
    reporter_name: ShortText | None = personal("who reported it", nl="wie het heeft gemeld")
    reporter_contact: ShortText | None = personal("the reporter's email address or phone number", nl="e-mailadres of telefoonnummer van de melder")
    summary: LongText | None = personal("summary of the incident", nl="samenvatting van het incident")
    security_aspect: ShortText | None = personal("which part of security it concerns", nl="welk aspect van beveiliging het betreft")
    nature_how: LongText | None = personal("how it happened", nl="hoe het is gebeurd")
    nature_actions: Items[Action] | None = fact("what happened to the data (read, copied, altered, deleted, stolen)", nl="wat er met de gegevens is gebeurd (ingezien, gekopieerd, gewijzigd, verwijderd, gestolen)")
    affected_systems: Items[ShortText] | None = fact("which of the processor's systems are affected", nl="welke systemen van de verwerker zijn getroffen")
    # II. cause
    cause_category: CauseCategory | None = fact("category of the cause", nl="categorie van de oorzaak")
    cause_description: LongText | None = personal("the cause, described", nl="de oorzaak, beschreven")
    # III. measures
    measures: LongText | None = personal("measures taken to prevent (further) damage", nl="maatregelen genomen om (verdere) schade te voorkomen")
    followup_measures: LongText | None = personal("measures still to follow, to limit the consequences and prevent a recurrence", nl="maatregelen die nog volgen om de gevolgen te beperken en herhaling te voorkomen")
    # other parties and other countries (the AP's form)
    other_parties: LongText | None = personal("other parties involved, e.g. the wrong recipient of misdirected data", nl="andere betrokken partijen, bijvoorbeeld de verkeerde ontvanger van gegevens")
    other_parties_asked: LongText | None = personal("what was asked of those parties (e.g. to delete the data)", nl="wat aan die partijen is gevraagd (bijvoorbeeld de gegevens te verwijderen)")
    other_eu_countries: Items[Country] | None = fact("other EU/EEA countries where people are affected (ISO codes such as BE, DE)", nl="andere EU/EER-landen waar betrokkenen wonen (ISO-landcodes zoals BE, DE)")
    other_supervisors: LongText | None = personal("other supervisory authorities informed, and when", nl="andere toezichthouders die zijn ingelicht, en wanneer")
    # IV. who may suffer consequences
    affected_groups: Items[AffectedGroup] | None = personal("groups affected and consequences", nl="getroffen groepen en de gevolgen voor hen")
    severity: Severity | None = fact("overall severity of the consequences for the people affected", nl="ernst van de gevolgen voor de betrokkenen, in het geheel")
    severity_explanation: LongText | None = personal("why the consequences are that severe", nl="toelichting op de ernst van de gevolgen")
    consequences_controller: LongText | None = personal("consequences for the school (the controller)", nl="gevolgen voor de school (de verwerkingsverantwoordelijke)")
    # V. size
    group_size_min: Count | None = fact("number of people affected (lower bound)", nl="aantal betrokkenen (ondergrens)")
    group_size_max: Count | None = fact("number of people affected (upper bound)", nl="aantal betrokkenen (bovengrens)")
    records_count: Count | None = fact("number of records affected", nl="aantal getroffen records")
    # VI. kinds of data
    data_kinds: Items[DataKind] | None = fact("kinds of personal data affected", nl="soorten getroffen persoonsgegevens")
    special_categories: Items[SpecialCategory] | None = fact("which special categories of personal data (GDPR art. 9) or criminal data (art. 10)", nl="welke bijzondere persoonsgegevens (AVG art. 9) of strafrechtelijke gegevens (art. 10)")
    data_kinds_other: ShortText | None = personal("the other kinds of data, described", nl="de andere soorten gegevens, beschreven")
    data_unreadable: StrictBool | None = fact("was the data encrypted or otherwise unreadable", nl="waren de gegevens versleuteld of anderszins onleesbaar")
    data_unreadable_how: LongText | None = personal("how the data was made unreadable", nl="hoe de gegevens onleesbaar waren gemaakt")
    # informing data subjects (GDPR art. 34)
    subjects_informed: StrictBool | None = fact("have the people affected been informed", nl="zijn de betrokkenen geïnformeerd")
    subjects_informed_count: Count | None = fact("how many people were informed", nl="hoeveel betrokkenen zijn geïnformeerd")
    subjects_informed_how: LongText | None = personal("how the people affected were informed", nl="hoe de betrokkenen zijn geïnformeerd")
    subjects_not_informed_reason: LongText | None = personal("why the people were not informed", nl="waarom de betrokkenen niet zijn geïnformeerd")
    # remediation, restore, verification, evaluation (seed 6a)
    fix_description: LongText | None = personal("the fix for the cause", nl="de oplossing voor de oorzaak")
    fix_tested: StrictBool | None = fact("the fix was tested thoroughly", nl="de oplossing is grondig getest")
    data_lost_or_altered: StrictBool | None = fact("was data lost or altered", nl="zijn gegevens verloren gegaan of gewijzigd")
    backup_description: LongText | None = personal("which backup was restored", nl="welke back-up is teruggezet")
    backup_checked: StrictBool | None = fact("the backup was checked for correctness", nl="de back-up is op juistheid gecontroleerd")
    fix_applied: StrictBool | None = fact("the fix was applied", nl="de oplossing is doorgevoerd")
    system_verified: StrictBool | None = fact("the system was verified to work", nl="het systeem werkt aantoonbaar weer")
    evaluation: LongText | None = personal("evaluation of how the incident was handled", nl="evaluatie van de afhandeling")
    # decisions
    dismissal_reason: LongText | None = personal("why the report is not a breach", nl="waarom de melding geen datalek is")
    reopen_reason: LongText | None = personal("why the incident is reopened", nl="waarom het incident wordt heropend")

    @field_validator("*")
    @classmethod
    def _blank_is_none(cls, value: object, info: ValidationInfo) -> object:
        if info.field_name in TEXT_FIELDS and value == "":  # texts arrive stripped (ShortText, LongText)
            return None  # a blank text clears the field; a blank time, number or list is refused
        return value

    @field_validator("other_eu_countries", mode="before")
    @classmethod
    def _country_codes_upper(cls, value: object) -> object:
        if isinstance(value, list):
            return [v.strip().upper() if isinstance(v, str) else v for v in value]
        return value

    @field_validator("nature_actions", "data_kinds", "affected_systems", "special_categories", "other_eu_countries")
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


def label(field: str, language: str = "en") -> str:
    """The words a person reads for a field, in ``language`` (``nl`` or ``en``)."""
    info = Disclosure.model_fields.get(field)
    if info is None or not info.description:
        return field.replace("_", " ")
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return str(extra["nl"]) if language == "nl" and "nl" in extra else info.description


def cia(actions: list[Action] | None) -> dict[str, bool]:
    """The AP's confidentiality / integrity / availability answer, derived from the actions."""
    acted = set(actions or ())
    return {
        "confidentiality": bool(acted & {Action.read, Action.copied, Action.stolen}),
        "integrity": Action.altered in acted,
        "availability": bool(acted & {Action.deleted, Action.stolen}),
    }
