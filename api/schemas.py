"""Request and response models of the HTTP API. Responses are never table rows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from breachflow.api.errors import FieldProblemOut
from breachflow.workflow.actions import NewAction
from breachflow.workflow.disclosure import Disclosure, Source
from breachflow.workflow.incident import ApKind, ContactChannel, InformedVia
from breachflow.workflow.informing import RiskReason
from breachflow.workflow.schools import MasterData
from breachflow.workflow.validation import MAX_ITEMS, Count, Items, LongText, Moment, ShortText, plausible_date

Brin = Annotated[ShortText, Field(min_length=4, max_length=6, examples=["12AB"], description="BRIN code of the school")]
Counts = Annotated[dict[Brin, Count | None], Field(max_length=MAX_ITEMS)]
Email = Annotated[ShortText, Field(max_length=254)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests -------------------------------------------------------------------------------
# Every text, list and number is bounded and every time plausible (workflow.validation):
# tests/test_input_bounds.py walks the OpenAPI document to keep it so.


class ReportIn(Strict):
    source: Source = Field(Source.school, description="who reported it", examples=["school"])
    schools: Counts = Field(
        default_factory=dict, description="affected schools: BRIN code → number of people affected (or null)",
        examples=[{"12AB": 28}],
    )
    fields: Disclosure = Field(default_factory=Disclosure, description="disclosure fields known so far")


class UpdateIn(Strict):
    version: Count = Field(description="the version you last saw; a stale one gets 409")
    reason: ShortText | None = Field(None, description=(
        "why; required to correct the discovery time or a known cause of a confirmed incident"))
    fields: Disclosure = Field(default_factory=Disclosure, description="only the fields you send change")
    schools: Counts = Field(default_factory=dict, description="add or recount schools")
    remove_schools: Items[Brin] = Field(default_factory=list, description="BRIN codes not affected after all")


class FireIn(Strict):
    version: Count | None = Field(None, description="refuse if the incident is no longer at this version")
    reason: ShortText | None = Field(None, description=(
        "why; required to correct the discovery time or a known cause of a confirmed incident"))
    fields: Disclosure = Field(default_factory=Disclosure, description="saved together with the transition")
    actions: Items[NewAction] = Field(default_factory=list, description=(
        "with 'evaluated' only: the follow-up actions that came out of the evaluation"))


class ActionsIn(Strict):
    version: Count | None = Field(None, description="refuse if the incident is no longer at this version")
    actions: Items[NewAction] = Field(min_length=1, description="follow-up actions to record")


class SettleIn(Strict):
    version: Count | None = Field(None, description="refuse if the incident is no longer at this version")
    status: Literal["done", "dropped"] = Field(description="done or dropped")
    note: ShortText | None = Field(None, description="how it was done, or why it was dropped (on the timeline)")


class NoteIn(Strict):
    text: LongText = Field(min_length=1)


class ContactIn(Strict):
    school: Brin
    channel: ContactChannel
    summary: LongText = Field(min_length=1)
    told_must_notify_ap: StrictBool = Field(False, description="the school was told it must notify the AP itself")
    at: Moment | None = Field(None, description="when (default: now)")


class ApNotificationIn(Strict):
    kind: ApKind
    ap_reference: Annotated[ShortText, Field(max_length=100)] = Field(min_length=1, description="the AP's meldnummer")
    notified_at: Moment | None = Field(None, description="when it was submitted (default: now)")
    schools: Items[Brin] | None = Field(None, description="BRIN codes it covers (default: every affected school)")
    delay_reason: LongText | None = Field(None, description="required when late (GDPR 33(1))")


class NoticeIn(Strict):
    message: LongText | None = Field(None, description="your own words, above what changed")


class AcknowledgementIn(Strict):
    comment: LongText | None = None


class PeopleInformedIn(Strict):
    """Whether and how a school told the people affected (GDPR art. 34)."""

    school: Brin | None = Field(None, description="the school's BRIN code (a school user: its own, implied; "
                                                  "a handler recording on a school's behalf: required)")
    informed: StrictBool = Field(description="were the people affected informed")
    at: Moment | None = Field(None, description="when they were informed (required when informed)")
    via: InformedVia | None = Field(None, description="how they were informed (required when informed)")
    count: Count | None = Field(None, description="how many were informed (at most the school's affected count)")
    note: LongText | None = Field(None, description="how, in your own words; or why not (required when not informed)")


class SchoolIn(MasterData):
    brin: Brin
    name: Annotated[ShortText, Field(max_length=200)] = Field(min_length=1)
    contacts: Items[Email] = Field(min_length=1, description="email addresses of the school's contacts")
    language: Annotated[ShortText, Field(max_length=2)] = Field("nl", description="nl or en")
    contract_ends_on: Annotated[date, AfterValidator(plausible_date)] | None = None


class SchoolUpdateIn(MasterData):
    """Only the fields sent change; a master-data field sent as null is cleared."""

    name: Annotated[ShortText, Field(max_length=200)] | None = Field(None, min_length=1)
    contacts: Items[Email] | None = Field(None, min_length=1, description="email addresses of the school's contacts")
    language: Annotated[ShortText, Field(max_length=2)] | None = Field(None, description="nl or en")
    contract_ends_on: Annotated[date, AfterValidator(plausible_date)] | None = None


Identifier = Annotated[ShortText, Field(max_length=254)]


class SubjectIn(Strict):
    """One person, as the school recorded them: exactly one of ``email``, ``name``, ``pupil_number``."""

    email: Identifier | None = Field(None, description="an email address (matched as a whole token)")
    name: Identifier | None = Field(None, description="a name, at least 2 characters (matched as whole words)")
    pupil_number: Identifier | None = Field(None, description="a pupil number (matched as a whole token)")
    school: Brin | None = Field(None, description="the school that asks: a school user's own (may be left out); "
                                                  "a handler acting on a school's request names it")


# --- responses ------------------------------------------------------------------------------


class PeopleInformedOut(BaseModel):
    informed: bool
    at: datetime | None
    via: InformedVia | None
    count: int | None
    note: str | None = Field(description="how, or why not (null once retention destroyed the school's part)")
    recorded_at: datetime


class AffectedSchoolOut(BaseModel):
    brin: str
    name: str
    affected_count: int | None
    informed_at: datetime | None
    informed_via: str | None
    told_to_notify_ap_at: datetime | None
    acknowledged_at: datetime | None
    people_informed: PeopleInformedOut | None = Field(
        None, description="the school's record of informing the people affected (GDPR art. 34); null: not recorded")


class ApNotificationOut(BaseModel):
    kind: ApKind
    ap_reference: str
    notified_at: datetime
    schools: list[str]


class DeadlineOut(BaseModel):
    reference: str
    kind: str = Field(description="school_notice, ap_notice, school_ap_notice or follow_up")
    school: str | None
    action: int | None = Field(None, description="the follow-up action's number (kind follow_up)")
    owner: str | None = Field(None, description="the follow-up action's owner (kind follow_up)")
    due_at: datetime
    due_at_local: str = Field(description="due time in Europe/Amsterdam")
    status: str = Field(description="ok, due_soon, overdue, met, or settled (closed without being met)")
    met_at: datetime | None
    met_late: bool
    outcome: str | None = Field(None, description="once the incident is closed: met, met_late, school_told "
                                                  "(the school was told to notify the AP itself) or unmet; "
                                                  "dropped for a follow-up action dropped")
    clock_moved_at: datetime | None = Field(
        None, description="when a handler last corrected the discovery time or a known cause, moving the clocks")
    clock_moved_by: str | None = Field(None, description="who made that correction")


class ActionOut(BaseModel):
    number: int
    description: str
    owner: str
    due_at: datetime
    due_at_local: str = Field(description="due time in Europe/Amsterdam")
    blocking: bool = Field(description="the incident cannot be closed while it is open")
    status: str = Field(description="open, done or dropped")
    created_at: datetime | None
    created_by: str | None
    settled_at: datetime | None
    settled_by: str | None


class IncidentOut(BaseModel):
    reference: str = Field(examples=["DL-2026-00042"])
    state: str
    version: int
    source: str
    reported_at: datetime
    responsibility: str = Field(description="processor, school or unknown (derived from the cause)")
    disclosure: Disclosure
    impact: dict[str, bool] = Field(description="confidentiality / integrity / availability")
    schools: list[AffectedSchoolOut]
    ap_notifications: list[ApNotificationOut]
    deadlines: list[DeadlineOut]
    high_risk: list[RiskReason] = Field(default_factory=list, description=(
        "why the breach is likely a high risk to the people affected, so the schools must inform them "
        "(GDPR art. 34); empty: not"))
    actions: list[ActionOut] = Field(default_factory=list, description="follow-up actions of the evaluation")


class IncidentSummary(BaseModel):
    reference: str
    state: str
    version: int
    responsibility: str
    reported_at: datetime
    discovered_at: datetime | None
    summary: str | None
    schools: list[str]
    deadline_status: str | None = Field(description="the most urgent open deadline's status, or met/None")


class _Page(BaseModel):
    limit: int = Field(description="the most items a page holds (a page may hold fewer and still have a next)")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class _ReadPage(_Page):
    unreadable: list[str] = Field(default_factory=list,
                                  description="references of records that could not be read (damaged); left out")


class IncidentPage(_ReadPage):
    items: list[IncidentSummary]


class DeadlinePage(_Page):
    items: list[DeadlineOut]


class TriggerOut(BaseModel):
    trigger: str
    ready: bool
    destination: str | None = Field(description="where it leads now (null while fields are missing)")
    missing: list[FieldProblemOut]


class TimelineEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    kind: str
    from_state: str | None
    to_state: str | None
    details: dict[str, Any] | None = Field(description="null when not yours to see or destroyed")
    hash: str


class ReopeningOut(BaseModel):
    at: datetime
    from_state: str = Field(description="dismissed or closed")
    reason: str | None = Field(description="null once the incident's data key is destroyed")


class ApDelayOut(BaseModel):
    kind: ApKind
    ap_reference: str
    notified_at: datetime
    schools: list[str]
    delay_reason: str | None = Field(description="why it came late; null once the data key is destroyed")


class RegisterEntry(BaseModel):
    reference: str
    state: str
    source: str
    reported_at: datetime
    discovered_at: datetime | None
    summary: str | None
    responsibility: str
    cause_category: str | None
    nature_actions: list[str]
    data_kinds: list[str]
    group_size_min: int | None
    group_size_max: int | None
    records_count: int | None
    schools: list[str]
    ap_references: list[str]
    first_ap_notification_at: datetime | None
    reopen_count: int
    reopenings: list[ReopeningOut] = Field(description="every reopening, oldest first, with its reason")
    dismissed_at: datetime | None = Field(description="the latest dismissal")
    dismissal_reason: str | None = Field(description="the reason given at the latest dismissal")
    ap_delays: list[ApDelayOut] = Field(description="AP notifications recorded late, with the reason for the delay")
    deadlines: list[DeadlineOut] = Field(description="its clocks: open, met, or settled when it was closed")


class RegisterPage(_ReadPage):
    items: list[RegisterEntry]


class TimelinePage(_Page):
    items: list[TimelineEntryOut]


class StepOut(BaseModel):
    trigger: str
    sources: list[str]
    dest: str
    help: str
    when: str | None
    unless: str | None
    requires: list[FieldProblemOut] = Field(description="what the guard asks of an empty incident")


class WorkflowOut(BaseModel):
    states: list[str]
    initial: str
    final: list[str]
    steps: list[StepOut]


class SchoolOut(MasterData):
    brin: str
    name: str
    language: str
    contacts: list[str]
    contract_ends_on: date | None


class DossierAnswerOut(BaseModel):
    key: str = Field(description="chapter.question, e.g. controller.kvk_number")
    label: str = Field(description="the question, in the language asked for")
    value: Any = Field(description="the answer as data (null when missing)")
    text: str = Field(description="the answer in words, times in Amsterdam time")
    mark: str = Field(description="recorded, derived (see derived_from) or missing")
    derived_from: str | None = Field(None, description="what a derived answer was worked out from")


class DossierChapterOut(BaseModel):
    key: str
    title: str
    answers: list[DossierAnswerOut]


class DossierOut(BaseModel):
    reference: str
    state: str
    school: str | None = Field(description="BRIN code of the controller this dossier is for")
    school_name: str | None
    responsibility: str = Field(description="who notifies the AP: processor, school or unknown")
    language: str
    still_to_collect: list[DossierAnswerOut] = Field(description="every missing answer, in the form's order")
    chapters: list[DossierChapterOut] = Field(description="the AP's notification form, in its chapter order")


class SchoolPage(_Page):
    items: list[SchoolOut]


class Health(BaseModel):
    status: str
    database: str


class CheckOut(BaseModel):
    name: str = Field(description="database, worker or outbox")
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: str = Field(description="ready")
    checks: list[CheckOut]


class SubjectItemOut(BaseModel):
    reference: str | None = Field(description="the incident; null for the school's own record")
    where: str = Field(description="where it sits: incident.summary, timeline[7].payload.comment, "
                                   "notice <message-id> body, school.contacts[0], …")
    value: Any = Field(description="the whole value there, decrypted")


class SubjectExportOut(BaseModel):
    """What breachflow holds about one person that the school may see."""

    school: str
    identifier: str = Field(description="the kind of identifier asked with: email, name or pupil_number")
    items: list[SubjectItemOut]
    unreadable: list[str] = Field(description="incidents that could not be read (damaged records)")


class SubjectErasedOut(BaseModel):
    reference: str | None
    where: str


class SubjectKeptOut(BaseModel):
    reference: str | None
    where: str
    why: str = Field(description="the duty or reason that keeps it")


class SubjectErasureOut(BaseModel):
    """What an erasure removed, and what it kept and why."""

    school: str
    identifier: str
    erased: list[SubjectErasedOut]
    kept: list[SubjectKeptOut]
    unreadable: list[str]
