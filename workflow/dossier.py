"""The AP dossier: what the AP's notification form asks about an incident, for one controller (an
affected school), in the form's own chapter order, each answer marked as recorded, derived (and
from what) or missing, so a handler or a responsible school can fill in the AP's online form.

``build`` is a pure function of the incident, the school's master data, the processor's data, the
recorded reasons for late AP notifications, the deadline periods and a moment; ``read`` gathers
those from the database. Labels come in the reader's language (Dutch by default); values stay
values (enum members' values, times in UTC): the API and the page put them in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from breachflow.workflow import register
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context
from breachflow.workflow.deadlines import DeadlineKind, Periods, Status, deadlines
from breachflow.workflow.disclosure import DataKind, cia, label
from breachflow.workflow.errors import FieldProblem, InvalidInput, NotFound
from breachflow.workflow.incident import AffectedSchool, ApKind, Incident
from breachflow.workflow.informing import high_risk
from breachflow.workflow.lifecycle import State
from breachflow.workflow.responsibility import Responsibility
from breachflow.workflow.schools import SchoolView
from breachflow.workflow.schools import get as get_school


class Mark(StrEnum):
    """Where an answer comes from."""

    recorded = "recorded"  # entered by a handler (or an admin, for master data)
    derived = "derived"  # worked out from other answers; ``derived_from`` says which
    missing = "missing"  # still to collect


class NotificationKind(StrEnum):
    """What the next notification to the AP is, for this controller."""

    new = "new"  # complete: nothing is still to collect
    preliminary = "preliminary"  # new, while answers are still missing
    final = "final"
    supplement = "supplement"
    withdrawal = "withdrawal"


SEVERITY_ORDER = ("negligible", "limited", "considerable", "very_large")

# chapter keys in the order of the AP's form, with their titles
CHAPTERS = {
    "notification": ("Soort melding", "Kind of notification"),
    "controller": ("Verwerkingsverantwoordelijke (de school)", "Controller (the school)"),
    "processor": ("Andere betrokken organisatie: de verwerker", "Other organisation involved: the processor"),
    "other_parties": ("Andere betrokken partijen", "Other parties involved"),
    "international": ("Internationale aspecten", "International aspects"),
    "timeline": ("Tijdlijn", "Timeline"),
    "nature": ("Aard van het datalek", "Nature of the breach"),
    "personal_data": ("Persoonsgegevens", "Personal data"),
    "people": ("Betrokkenen", "People affected"),
    "prior_measures": ("Maatregelen vooraf (versleuteling)", "Measures taken beforehand (encryption)"),
    "consequences": ("Gevolgen en ernst", "Consequences and severity"),
    "follow_up": ("Vervolg", "Follow-up"),
}

# questions that are no disclosure field of their own (those use ``disclosure.label``)
QUESTIONS = {
    "notification.kind": ("soort melding die nu volgt", "kind of notification to make now"),
    "notification.earlier": ("eerdere meldingen bij de AP (meldnummers)", "earlier notifications to the AP (references)"),
    "controller.name": ("naam", "name"),
    "controller.address": ("adres", "address"),
    "controller.kvk_number": ("KvK-nummer", "KvK number (Chamber of Commerce)"),
    "controller.sector": ("sector", "sector"),
    "controller.dpo_registration": ("registratienummer van de functionaris gegevensbescherming bij de AP",
                                    "registration number of the data protection officer at the AP"),
    "controller.contact_person": ("contactpersoon voor de AP", "contact person for the AP"),
    "processor.name": ("naam", "name"),
    "processor.address": ("adres", "address"),
    "processor.kvk_number": ("KvK-nummer", "KvK number (Chamber of Commerce)"),
    "processor.dpo_registration": ("registratienummer van de functionaris gegevensbescherming bij de AP",
                                   "registration number of the data protection officer at the AP"),
    "timeline.notified_at": ("gemeld bij de AP op", "notified to the AP at"),
    "timeline.delay_reason": ("reden van de vertraging (later dan 72 uur)", "reason for the delay (later than 72 hours)"),
    "nature.cia": ("gevolgen voor vertrouwelijkheid, integriteit en beschikbaarheid",
                   "consequences for confidentiality, integrity and availability"),
    "people.count": ("aantal betrokkenen (minimaal – maximaal)", "number of people affected (minimum – maximum)"),
    "consequences.people": ("gevolgen voor de betrokkenen", "consequences for the people affected"),
    "follow_up.high_risk": ("waarom het datalek waarschijnlijk een hoog risico geeft voor de betrokkenen (AVG art. 34)",
                            "why the breach is likely a high risk to the people affected (GDPR art. 34)"),
    "follow_up.school_people_informed": ("betrokkenen geïnformeerd, zoals de school vastlegde",
                                         "people affected informed, as the school recorded it"),
}

# the words of ``derived_from``, for what is no disclosure field
SOURCES = {
    "ap_notifications": ("de vastgelegde meldingen bij de AP", "the recorded notifications to the AP"),
    "state": ("de status van het incident", "the incident's state"),
    "deadline": ("de termijn voor de melding bij de AP", "the deadline of the AP notification"),
    "school_count": ("het aantal betrokkenen bij deze school", "the number affected at this school"),
    "still_to_collect": ("wat nog te verzamelen is", "what is still to collect"),
    "school_record": ("wat de school vastlegde over het informeren van de betrokkenen",
                      "what the school recorded about informing the people affected"),
}


@dataclass(frozen=True)
class Processor:
    """The processor as the AP's form names it (from the settings; unset parts are missing)."""

    name: str | None = None
    address: str | None = None
    kvk_number: str | None = None
    dpo_registration: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Processor:
        return cls(settings.processor_name, settings.processor_address, settings.processor_kvk,
                   settings.processor_dpo_registration)


@dataclass(frozen=True)
class Answer:
    """One answer of the form: ``key`` (chapter.question), its label, its value and its mark."""

    key: str
    label: str
    value: Any
    mark: Mark
    derived_from: str | None = None  # in words, when derived


@dataclass(frozen=True)
class Chapter:
    key: str
    title: str
    answers: list[Answer]


@dataclass(frozen=True)
class Dossier:
    """The AP dossier of one incident for one controller (``brin``; ``None`` without any school)."""

    reference: str
    state: str
    brin: str | None
    school_name: str | None
    responsibility: Responsibility
    language: str
    chapters: list[Chapter] = field(default_factory=list)

    @property
    def still_to_collect(self) -> list[Answer]:
        """Every missing answer, in the form's order."""
        return [a for c in self.chapters for a in c.answers if a.mark is Mark.missing]


class _Writer:
    """Collects the answers of one chapter in one language."""

    def __init__(self, chapter: str, language: str) -> None:
        self.chapter, self.language = chapter, language
        self.answers: list[Answer] = []

    def words(self, pair: tuple[str, str]) -> str:
        return pair[1] if self.language == "en" else pair[0]

    def _label(self, name: str) -> str:
        key = f"{self.chapter}.{name}"
        return self.words(QUESTIONS[key]) if key in QUESTIONS else label(name, self.language)

    def _sources(self, sources: tuple[str, ...]) -> str:
        return ", ".join(self.words(SOURCES[s]) if s in SOURCES else label(s, self.language) for s in sources)

    def given(self, name: str, value: Any) -> None:
        """Recorded when ``value`` is given (an empty list counts: "none"), else missing."""
        self.answers.append(Answer(f"{self.chapter}.{name}", self._label(name), value,
                                   Mark.missing if value is None else Mark.recorded))

    def missing(self, name: str) -> None:
        self.given(name, None)

    def derived(self, name: str, value: Any, *sources: str) -> None:
        self.answers.append(Answer(f"{self.chapter}.{name}", self._label(name), value, Mark.derived,
                                   self._sources(sources)))


@dataclass(frozen=True)
class _Given:
    """What a dossier is built from."""

    incident: Incident
    school: SchoolView | None
    affected: AffectedSchool | None  # the school as affected by the incident (its count)
    processor: Processor
    delays: list[register.ApDelay]
    periods: Periods
    now: datetime


def build(incident: Incident, school: SchoolView | None, processor: Processor, *, delays: list[register.ApDelay],
          periods: Periods, now: datetime, language: str = "nl") -> Dossier:
    """The AP dossier of ``incident`` for ``school`` (one of its affected schools, or ``None``).

    ``delays``: the incident's AP notifications recorded late with their reasons (``register.histories``).
    """
    affected = next((s for s in incident.schools if school is not None and s.school_id == school.id), None)
    given = _Given(incident, school, affected, processor, delays, periods, now)
    chapters = []
    for key, fill in _FILLERS:
        writer = _Writer(key, language)
        fill(writer, given)
        chapters.append(Chapter(key, writer.words(CHAPTERS[key]), writer.answers))
    incomplete = any(a.mark is Mark.missing for c in chapters for a in c.answers)
    writer = _Writer("notification", language)
    _notification(writer, given, incomplete)  # the kind depends on whether the rest is complete
    chapters.insert(0, Chapter("notification", writer.words(CHAPTERS["notification"]), writer.answers))
    return Dossier(incident.reference, incident.state, school.brin if school else None,
                   school.name if school else None, incident.responsibility, language, chapters)


def _covering(incident: Incident, affected: AffectedSchool | None) -> list:
    """The AP notifications that cover this school (all of them when there is no school)."""
    return [n for n in incident.ap_notifications if affected is None or affected.school_id in n.school_ids]


def _notification(w: _Writer, g: _Given, incomplete: bool) -> None:
    """A new notification is preliminary while answers are missing (the AP takes it, to be completed
    by a final one); after a preliminary comes the final one, after a final a supplement; a breach
    dismissed after it was notified is withdrawn."""
    incident = g.incident
    covering = _covering(incident, g.affected)
    withdrawn = incident.withdrawn_references()
    in_force = [n for n in covering if n.kind is not ApKind.withdrawal and n.ap_reference not in withdrawn]
    sources: tuple[str, ...] = ("ap_notifications",)
    if in_force and incident.state == State.dismissed:
        kind, sources = NotificationKind.withdrawal, (*sources, "state")  # not a breach after all: take it back
    elif any(n.kind is ApKind.final for n in in_force):
        kind = NotificationKind.supplement
    elif in_force:
        kind = NotificationKind.final
    elif incomplete:
        kind, sources = NotificationKind.preliminary, (*sources, "still_to_collect")
    else:
        kind = NotificationKind.new
    w.derived("kind", kind.value, *sources)
    earlier = [{"kind": n.kind.value, "ap_reference": n.ap_reference, "notified_at": n.notified_at} for n in covering]
    if earlier:
        w.given("earlier", earlier)
    else:
        w.derived("earlier", [], "ap_notifications")


def _controller(w: _Writer, g: _Given) -> None:
    school = g.school
    w.given("name", school.name if school else None)
    for name in ("address", "kvk_number", "sector", "dpo_registration", "contact_person"):
        value = getattr(school, name) if school else None
        w.given(name, value.value if isinstance(value, StrEnum) else value)


def _processor(w: _Writer, g: _Given) -> None:
    for name in ("name", "address", "kvk_number", "dpo_registration"):
        w.given(name, getattr(g.processor, name))


def _other_parties(w: _Writer, g: _Given) -> None:
    d = g.incident.disclosure
    w.given("other_parties", d.other_parties)
    if d.other_parties is not None:
        w.given("other_parties_asked", d.other_parties_asked)


def _international(w: _Writer, g: _Given) -> None:
    d = g.incident.disclosure
    countries = [c.value for c in d.other_eu_countries] if d.other_eu_countries is not None else None
    w.given("other_eu_countries", countries)
    if countries == [] and d.other_supervisors is None:
        w.derived("other_supervisors", None, "other_eu_countries")  # no other country: no other supervisor
    else:
        w.given("other_supervisors", d.other_supervisors)


def _timeline(w: _Writer, g: _Given) -> None:
    incident, affected, periods = g.incident, g.affected, g.periods
    d = incident.disclosure
    for name in ("discovered_at", "breach_started_at", "breach_ended_at"):
        w.given(name, getattr(d, name))
    withdrawn = incident.withdrawn_references()
    notified = sorted(n.notified_at for n in _covering(incident, affected)
                      if n.kind in (ApKind.preliminary, ApKind.final) and n.ap_reference not in withdrawn)
    if notified:
        w.given("notified_at", notified[0])
    else:
        w.derived("notified_at", None, "ap_notifications")  # not notified yet
    reasons = [a.reason for a in g.delays if affected is None or affected.school_id in a.school_ids]
    if reasons:
        w.given("delay_reason", "; ".join(r for r in reasons if r) or None)
        return
    own = DeadlineKind.school_ap_notice if incident.responsibility is Responsibility.school else DeadlineKind.ap_notice
    clocks = [c for c in deadlines(incident, periods)
              if c.kind is own and (c.school_id is None or affected is None or c.school_id == affected.school_id)]
    if any(c.met_late or c.status(g.now, periods.due_soon) is Status.overdue for c in clocks):
        w.missing("delay_reason")
    else:
        w.derived("delay_reason", None, "deadline")  # within the deadline so far: no delay to explain


def _nature(w: _Writer, g: _Given) -> None:
    d = g.incident.disclosure
    w.given("summary", d.summary)
    w.given("nature_how", d.nature_how)
    w.given("cause_description", d.cause_description)
    actions = [a.value for a in d.nature_actions] if d.nature_actions is not None else None
    w.given("nature_actions", actions)
    if actions:
        w.derived("cia", cia(d.nature_actions), "nature_actions")
    else:
        w.missing("cia")


def _personal_data(w: _Writer, g: _Given) -> None:
    d = g.incident.disclosure
    kinds = [k.value for k in d.data_kinds] if d.data_kinds is not None else None
    w.given("data_kinds", kinds)
    special = [c.value for c in d.special_categories] if d.special_categories else None
    if special:
        w.given("special_categories", special)
    elif kinds is not None and DataKind.special_categories.value not in kinds:
        w.derived("special_categories", [], "data_kinds")  # no special categories among the kinds
    else:
        w.missing("special_categories")
    if kinds is not None and DataKind.other.value in kinds:
        w.given("data_kinds_other", d.data_kinds_other)


def _people(w: _Writer, g: _Given) -> None:
    incident, affected = g.incident, g.affected
    d = incident.disclosure
    groups = [g.group.value for g in d.affected_groups] if d.affected_groups else None
    w.given("affected_groups", groups)
    several = len(incident.schools) > 1
    if several or (d.group_size_min is None and d.group_size_max is None):
        # with several schools the incident's range spans them all: this controller reports its own
        count = affected.affected_count if affected else None
        if count is None:
            w.missing("count")
        else:
            w.derived("count", {"min": count, "max": count}, "school_count")
    else:
        w.given("count", {"min": d.group_size_min, "max": d.group_size_max})
    w.given("records_count", d.records_count)


def _prior_measures(w: _Writer, g: _Given) -> None:
    d = g.incident.disclosure
    w.given("data_unreadable", d.data_unreadable)
    if d.data_unreadable is True:
        w.given("data_unreadable_how", d.data_unreadable_how)


def _consequences(w: _Writer, g: _Given) -> None:
    d = g.incident.disclosure
    if d.affected_groups:
        w.derived("people", [{"group": g.group.value, "consequences": g.consequences, "severity": g.severity.value}
                             for g in d.affected_groups], "affected_groups")
    else:
        w.missing("people")
    if d.severity is not None:
        w.given("severity", d.severity.value)
    elif d.affected_groups:
        worst = max((g.severity.value for g in d.affected_groups), key=SEVERITY_ORDER.index)
        w.derived("severity", worst, "affected_groups")  # the gravest of the groups' severities
    else:
        w.missing("severity")
    w.given("severity_explanation", d.severity_explanation)
    w.given("consequences_controller", d.consequences_controller)


def _follow_up(w: _Writer, g: _Given) -> None:
    d = g.incident.disclosure
    w.given("subjects_informed", d.subjects_informed)
    if d.subjects_informed is True:
        w.given("subjects_informed_count", d.subjects_informed_count)
        w.given("subjects_informed_how", d.subjects_informed_how)
    elif d.subjects_informed is False:
        w.given("subjects_not_informed_reason", d.subjects_not_informed_reason)
    w.derived("high_risk", [r.value for r in high_risk(d)], "severity", "data_kinds", "special_categories",
              "data_unreadable")
    people = g.affected.people if g.affected else None
    if people is not None:  # beside the processor's answer: what this school recorded (GDPR art. 34)
        w.derived("school_people_informed", {"informed": people.informed, "at": people.at,
                                             "via": people.via.value if people.via else None,
                                             "count": people.count, "note": people.note}, "school_record")
    w.given("measures", d.measures)
    w.given("followup_measures", d.followup_measures)


_FILLERS = (  # after the notification chapter, which is built last
    ("controller", _controller), ("processor", _processor),
    ("other_parties", _other_parties), ("international", _international), ("timeline", _timeline),
    ("nature", _nature), ("personal_data", _personal_data), ("people", _people),
    ("prior_measures", _prior_measures), ("consequences", _consequences), ("follow_up", _follow_up),
)


def school_of(incident: Incident, brin: str | None) -> AffectedSchool | None:
    """The affected school the dossier is for: ``brin``, or the only one; ``InvalidInput`` when
    several are affected and none is named; ``NotFound`` when ``brin`` is not affected."""
    if brin is not None:
        wanted = brin.strip().upper()
        for school in incident.schools:
            if school.brin == wanted:
                return school
        raise NotFound(f"school {wanted} is not affected by incident {incident.reference}")
    if len(incident.schools) > 1:
        raise InvalidInput("choose a school", [FieldProblem(
            "school", "several schools are affected, each a controller with its own notification: name one "
                      f"({', '.join(s.brin for s in incident.schools)})")])
    return incident.schools[0] if incident.schools else None


def read(ctx: Context, incident: Incident, affected: AffectedSchool | None, *, now: datetime,
         language: str = "nl") -> Dossier:
    """The dossier of ``incident`` (read already, and seen by the caller) for ``affected``."""
    school = get_school(ctx, affected.brin) if affected else None
    delays = register.histories(ctx, [incident.id])[incident.id].ap_delays
    return build(incident, school, Processor.from_settings(ctx.settings), delays=delays, periods=ctx.periods,
                 now=now, language=language)
