"""Incidents, timelines and deadlines as JSON-ready dicts and as text for people.

Times are stored in UTC and shown in Europe/Amsterdam.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from breachflow.api import schemas, views
from breachflow.notifications.texts import VALUES
from breachflow.workflow import lifecycle
from breachflow.workflow.accounts import Account, Role
from breachflow.workflow.deadlines import Periods, Status, local
from breachflow.workflow.disclosure import TEXT_FIELDS, TIME_FIELDS, AffectedGroup, label
from breachflow.workflow.incident import Incident
from breachflow.workflow.informing import high_risk
from breachflow.workflow.queries import Entry


def when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{local(moment):%Y-%m-%d %H:%M %Z}"


# The command line is an operator's tool: it sees what a handler sees.
OPERATOR = Account(0, "cli", Role.handler)


def incident_json(incident: Incident, periods: Periods, now: datetime | None = None) -> dict[str, Any]:
    """Everything about an incident, for ``--json``: the API's view plus the triggers."""
    data = views.incident_out(OPERATOR, incident, now or datetime.now(UTC), periods).model_dump(mode="json")
    data["triggers"] = [t.model_dump(mode="json") for t in views.triggers_out(incident)]
    return data


def entry_json(entry: Entry) -> dict[str, Any]:
    return views.timeline_out(OPERATOR, [entry])[0].model_dump(mode="json")


@dataclass(frozen=True)
class Words:
    """How values are put into words for one reader, never as Python reprs: ``language`` (nl or en);
    ``codes`` keeps states, triggers and other enum values as the identifiers an operator types (the
    command line) instead of their words; ``time`` writes a UTC time in Amsterdam time."""

    language: str = "en"
    codes: bool = False
    time: Callable[[datetime | None], str] = when

    def __call__(self, nl: str, en: str) -> str:
        """``nl`` or ``en``, as this reader reads."""
        return nl if self.language == "nl" else en

    def word(self, code: Any) -> str:
        """An enum value (a state, trigger, kind…) in words, or as its code for an operator."""
        code = getattr(code, "value", code)
        if code is None:
            return "—"
        return str(code) if self.codes else VALUES[self.language].get(code, str(code))

    def label(self, field: str) -> str:
        """A disclosure field's label."""
        return label(field, self.language)

    def value(self, value: Any) -> str:
        """A value in words: times in Amsterdam time, yes or no, lists joined, enums in words."""
        if value is None:
            return "—"
        if isinstance(value, bool):
            return VALUES[self.language][value]
        if isinstance(value, datetime):
            return self.time(value)
        if isinstance(value, list):
            return ", ".join(self.value(v) for v in value) or "—"
        if isinstance(value, AffectedGroup):
            return f"{self.word(value.group)} ({self.word(value.severity)}): {value.consequences}"
        return self.word(value) if hasattr(value, "value") else str(value)

    def field(self, name: str, value: Any) -> str:
        """A disclosure field's value, typed or as the timeline stores it (JSON), in words: free text
        as written, every other string a code put into words."""
        if value is None or value == []:
            return "—"
        if name in TEXT_FIELDS:
            return str(value)
        if name in TIME_FIELDS and isinstance(value, str):
            return self.time(datetime.fromisoformat(value))
        if name == "affected_groups":
            return "; ".join(self.value(AffectedGroup.model_validate(g)) for g in value)
        if isinstance(value, list):
            return ", ".join(self.word(v) for v in value)
        return self.word(value) if isinstance(value, str) else self.value(value)


CLI = Words("en", codes=True)  # the command line: English, codes as typed


def incident_text(incident: Incident, periods: Periods, now: datetime | None = None) -> str:
    """An incident for a person at a terminal: filled fields, schools, deadlines, next steps."""
    now = now or datetime.now(UTC)
    lines = [
        f"{incident.reference}  {incident.state}  (version {incident.version})",
        f"  responsibility: {incident.responsibility.value}",
        f"  reported:       {when(incident.reported_at)} ({incident.source})",
    ]
    if reasons := high_risk(incident.disclosure):
        lines.append(f"  high risk to the people affected (GDPR art. 34): {', '.join(reasons)}")
    for name, value in incident.disclosure:
        if value not in (None, []):
            lines.append(f"  {name}: {CLI.value(value)}")
    lines.append("  schools:")
    for s in incident.schools:
        informed = f"informed {when(s.informed_at)} via {s.informed_via}" if s.informed_at else "not informed"
        count = f"{s.affected_count} affected" if s.affected_count is not None else "count unknown"
        lines.append(f"    {s.brin} {s.name} ({count}); {informed}")
        if s.people is not None:  # the school's record of informing its people (GDPR art. 34)
            told = (f"informed {when(s.people.at)} via {s.people.via}" if s.people.informed else "not informed")
            lines.append(f"      people affected: {told}" + (f", {s.people.count}" if s.people.count is not None else "")
                         + (f" ({s.people.note})" if s.people.note else ""))
    for n in incident.ap_notifications:
        lines.append(f"  AP {n.kind.value}: {n.ap_reference} at {when(n.notified_at)}")
    for d in views.incident_deadlines_out(OPERATOR, incident, now, periods):
        lines.append("  deadline " + deadline_line(d))
    for a in incident.actions:
        settled = f" {when(a.settled_at)} by {a.settled_by}" if a.settled_at else ""
        lines.append(f"  action {a.number}{' (blocking)' if a.blocking else ''}: {a.description!r}, owner {a.owner}, "
                     f"due {when(a.due_at)} [{a.status.value}{settled}]")
    for trigger, missing in lifecycle.available(incident).items():
        if missing:
            lines.append(f"  {trigger}: needs " + "; ".join(m.problem for m in missing))
        else:
            lines.append(f"  {trigger}: ready → {lifecycle.destination(incident, trigger)}")
    return "\n".join(lines)


def deadline_line(d: schemas.DeadlineOut) -> str:
    """A deadline on one line: kind, school, due time, status, when met, how it was settled."""
    school = f" {d.school}" if d.school else f" {d.action} ({d.owner})" if d.action else ""
    met = ""
    if d.met_at:
        met = (" " if d.status == Status.met else ", met ") + when(d.met_at) + (" (late)" if d.met_late else "")
    settled = f": {d.outcome}" if d.status == Status.settled else ""
    moved = f" (clock moved {when(d.clock_moved_at)} by {d.clock_moved_by})" if d.clock_moved_at else ""
    return f"{d.kind}{school}: due {when(d.due_at)} [{d.status}{settled}{met}]{moved}"


def _with_reason(head: str, reason: str | None) -> str:
    return f"{head} ({reason})" if reason else head


def register_csv_row(entry: schemas.RegisterEntry) -> dict[str, Any]:
    """A register entry for the CSV export: reopenings and late AP notifications as text lists,
    each ``<Amsterdam time> (<reason>)``; deadlines as ``deadline_line`` writes them."""
    row = entry.model_dump(mode="json")
    row["reopenings"] = [_with_reason(when(r.at), r.reason) for r in entry.reopenings]
    row["ap_delays"] = [_with_reason(f"{when(a.notified_at)} {a.kind.value} {a.ap_reference}", a.delay_reason)
                        for a in entry.ap_delays]
    row["deadlines"] = [deadline_line(d) for d in entry.deadlines]
    return row


HISTORY_FIELDS = frozenset({"reopen_count", "reopenings", "dismissed_at", "dismissal_reason", "ap_delays"})


def history_lines(entry: schemas.RegisterEntry) -> list[str]:
    """The register's story of an incident for a terminal: dismissal, reopenings and late AP
    notifications with their reasons, oldest first."""
    told = [(r.at, _with_reason(f"reopened {when(r.at)} from {r.from_state}", r.reason)) for r in entry.reopenings]
    told += [(a.notified_at, _with_reason(f"AP {a.kind.value} {a.ap_reference} late, {when(a.notified_at)}",
                                          a.delay_reason)) for a in entry.ap_delays]
    if entry.dismissed_at is not None:
        told.append((entry.dismissed_at, _with_reason(f"dismissed {when(entry.dismissed_at)}", entry.dismissal_reason)))
    return [line for _, line in sorted(told, key=lambda pair: pair[0])]
