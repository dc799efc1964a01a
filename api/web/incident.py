"""The incident page (``/incidents/{reference}``) and the handler's report form (``/incidents/new``).

Handlers, managers and school users read it; a school sees only its own part, as the API shows it
(``api.views``), and a foreign incident is the same 404 as a missing one. Handlers act on it: the
triggers the lifecycle allows, each with a form for exactly the fields it still needs, and forms
to edit fields, add a note, log a contact, record an AP notification, send an update, and record
and settle the follow-up actions of the evaluation. A school
acknowledges the notices sent to it. A refused command shows the page again (409/422) with the
problems beside the fields and everything typed kept.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import AfterValidator

from breachflow.api import schemas, views
from breachflow.api.deps import brief, command, read
from breachflow.api.errors import status_of
from breachflow.api.render import Words
from breachflow.api.routes.incidents import seen_by
from breachflow.api.timeline_text import said
from breachflow.api.web import forms, informing
from breachflow.api.web.auth import VisitorDep, posted, redirect, set_cookies, signed_in
from breachflow.api.web.forms import checked
from breachflow.api.web.render import page
from breachflow.api.web.words import reader
from breachflow.notifications import outbox
from breachflow.workflow import actions, diagram, lifecycle, queries, schools, service, visibility
from breachflow.workflow.accounts import Account, Role
from breachflow.workflow.context import Context
from breachflow.workflow.disclosure import Disclosure, Source
from breachflow.workflow.errors import BreachflowError, FieldProblem, InvalidInput
from breachflow.workflow.incident import ApKind, ContactChannel, Incident
from breachflow.workflow.queries import Entry
from breachflow.workflow.sessions import Session
from breachflow.workflow.timeline import EventKind
from breachflow.workflow.validation import no_nul

router = APIRouter(include_in_schema=False)
Reader = Annotated[Session, Depends(signed_in(Role.handler, Role.manager, Role.school))]
Handler = Annotated[Session, Depends(signed_in(Role.handler))]
SchoolUser = Annotated[Session, Depends(signed_in(Role.school))]
Reference = Annotated[str, Path(max_length=30), AfterValidator(no_nul)]
Cursor = Annotated[str | None, Query(max_length=200)]

# seed 6c: what must be shared about every incident, I–VI, grouped as in workflow/disclosure.py
CHECKLIST = (
    ("I", ("Kenmerken", "Characteristics"), ("discovered_at", "discovery_method", "breach_started_at",
                                              "breach_ended_at", "reporter_name", "reporter_contact", "summary",
                                              "security_aspect", "nature_how", "nature_actions", "affected_systems")),
    ("II", ("Oorzaak", "Cause"), ("cause_category", "cause_description")),
    ("III", ("Maatregelen", "Measures"), ("measures",)),
    ("IV", ("Wie gevolgen kan ondervinden", "Who may suffer consequences"), ("affected_groups",)),
    ("V", ("Omvang", "Size"), ("group_size_min", "group_size_max", "records_count")),
    ("VI", ("Soort gegevens", "Kinds of data"), ("data_kinds", "data_kinds_other", "data_unreadable",
                                                  "data_unreadable_how")),
)
DECISIONS = frozenset({"dismissal_reason", "reopen_reason"})  # given with their trigger only
EDITED = tuple(n for n in Disclosure.model_fields if n not in DECISIONS)
REPORTED = ("discovered_at", "summary", "discovery_method", "reporter_name", "reporter_contact", "nature_how",
            "nature_actions", "affected_systems")
ASKED_TOGETHER = {"group_size_min": ("group_size_min", "group_size_max")}  # the guard names one of a pair
FINAL_GUARDS = (lifecycle.Trigger.evaluated, lifecycle.Trigger.ap_notified)  # what completes the checklist
SCHOOL_ROWS = 4  # empty rows for schools on the report and edit forms


@dataclass
class Refused:
    """A refused form: which one, why, and what was typed."""

    form: str
    status: int
    message: str
    problems: list[FieldProblem]
    raw: dict[str, list[str]] = field(default_factory=dict)


def _trigger_fields(trigger: lifecycle.Trigger, missing: list[FieldProblem]) -> list[str]:
    """The disclosure fields ``trigger``'s form asks for: those its guard finds missing, and those a
    refusal of what was typed named (an answer can make another field needed); a reopening always
    asks its reason."""
    names = [n for p in missing for n in ASKED_TOGETHER.get(p.field, (p.field,)) if n in Disclosure.model_fields]
    if trigger is lifecycle.Trigger.reopen:
        names.append("reopen_reason")
    return list(dict.fromkeys(names))


def _checklist(out: Any, incident: Incident, school: bool, w: Words) -> list[dict[str, Any]]:
    required = {p.field for t in FINAL_GUARDS for p in lifecycle.missing(incident, t)}
    sections = []
    for numeral, title, names in CHECKLIST:
        rows = []
        for name in names:
            if school and name in visibility.HIDDEN_FROM_SCHOOLS:
                continue
            value = getattr(out.disclosure, name)
            status = "complete" if value not in (None, []) else ("missing" if name in required else "empty")
            rows.append({"name": name, "label": w.label(name), "value": w.field(name, value), "status": status})
        sections.append({"numeral": numeral, "title": w(*title), "rows": rows})
    return sections


def _timeline(account: Account, entries: list[Entry], acknowledged_at: datetime | None,
              w: Words, delivered: dict[str, outbox.Delivery]) -> list[dict[str, Any]]:
    items = []
    for shown in views.timeline_out(account, entries):
        payload = shown.details if shown.details is not None or not views.is_school(account) else {}
        entry = Entry(shown.seq, shown.at, shown.actor, shown.kind, shown.from_state, shown.to_state, payload,
                      shown.hash)
        headline, lines = said(entry, w)
        messages = (payload or {}).get("messages") if shown.kind in (EventKind.notices_queued,
                                                                     EventKind.notices_sent) else None
        details = []
        for i, line in enumerate(lines):
            delivery = None
            if messages and shown.kind == EventKind.notices_queued and i < len(messages):
                delivery = delivered.get(messages[i].get("message_id"))
            details.append({"text": line, "delivery": delivery})
        unacknowledged = (views.is_school(account) and shown.kind == EventKind.notices_sent
                          and (acknowledged_at is None or acknowledged_at < shown.at))
        items.append({"seq": shown.seq, "at": shown.at, "actor": shown.actor, "kind": shown.kind,
                      "headline": headline, "details": details, "acknowledge": unacknowledged})
    return items


def _gather(ctx: Context, account: Account, reference: str, cursor: str | None) -> dict[str, Any]:
    """Everything the page reads: the incident (if ``account`` may see it), a page of its timeline,
    its notices' delivery and, for handlers, the schools to choose from."""
    incident = seen_by(account, queries.get(ctx, reference))
    timeline = queries.timeline_page(ctx, reference, cursor=cursor, newest_first=True)
    queued = [m.get("message_id") for e in timeline.items if e.kind == EventKind.notices_queued and e.payload
              for m in e.payload.get("messages") or ()]
    choices = schools.page(ctx, limit=200).items if account.role is Role.handler else []
    return {"incident": incident, "timeline": timeline, "delivered": outbox.deliveries(ctx, queued),
            "schools": choices}


def _context(request: Request, account: Account, found: dict[str, Any], refused: Refused | None) -> dict[str, Any]:
    ctx: Context = request.app.state.ctx
    incident: Incident = found["incident"]
    language = request.state.visitor.language
    w = reader(language)
    out = views.incident_out(account, incident, datetime.now(UTC), ctx.periods)
    school, handler = views.is_school(account), account.role is Role.handler
    own = [s for s in incident.schools if s.school_id == account.school_id]
    triggers = []
    if handler:
        for trigger, missing in lifecycle.available(incident).items():
            mine = refused if refused and refused.form == f"trigger-{trigger.value}" else None
            names = _trigger_fields(trigger, missing + (mine.problems if mine else []))
            triggers.append({
                "trigger": trigger.value, "word": w.word(trigger), "missing": missing, "fields": names,
                "destination": w.word(lifecycle.destination(incident, trigger)) if not missing else None,
                "others": [p for p in missing if p.field not in names],
                "controls": [forms.control(n, ctx.settings.affected_systems) for n in names],
                "values": forms.shown(incident.disclosure, [n for n in names if n not in DECISIONS])})
    state = lifecycle.State(incident.state)
    steps = ", ".join(f"{w.word(t)} → {w.word(lifecycle.destination(incident, t))}"
                      for t, m in lifecycle.available(incident).items() if not m) or "—"
    picture = diagram.svg(state, words=w.word, title=w(
        f"Levenscyclus van het incident; huidige stand: {w.word(state)}",
        f"Incident lifecycle; current state: {w.word(state)}"),
        description=w(f"Stappen die nu kunnen: {steps}", f"Steps possible now: {steps}"))
    return {
        "path": f"/incidents/{incident.reference}",  # where the language switch comes back to, after a refusal too
        "out": out, "incident": incident, "w": w, "handler": handler, "school": school,
        "confirmed": incident.state not in lifecycle.NOT_YET_CONFIRMED,  # the AP and schools hear of breaches only
        "picture": Markup(picture),  # noqa: S704 diagram.svg escapes every text it is given
        "state_word": w.word(state), "checklist": _checklist(out, incident, school, w),
        "triggers": triggers,
        "timeline": _timeline(account, found["timeline"].items, own[0].acknowledged_at if own else None, w,
                              found["delivered"]),
        "next_cursor": found["timeline"].next_cursor, "refused": refused,
        "edited": [forms.control(n, ctx.settings.affected_systems) for n in EDITED],
        "edit_values": forms.shown(incident.disclosure, EDITED),
        "severities": forms.SEVERITIES, "choices": found["schools"], "school_rows": range(SCHOOL_ROWS),
        "ap_kinds": list(ApKind), "channels": list(ContactChannel),
        "people": informing.section(incident, own[0] if own else None, language, ctx.settings),
        "people_problems": {p.field: p.problem for p in refused.problems} if refused and refused.form == "people" else {},
        "people_typed": {k: v[0] for k, v in refused.raw.items() if v} if refused and refused.form == "people" else {},
        "adding_actions": incident.state in actions.ADDING_STATES,
    }


async def _show(request: Request, account: Account, reference: str, refused: Refused | None = None,
                cursor: str | None = None) -> Response:
    found = await read(request, _gather, request.app.state.ctx, account, reference, cursor)
    return set_cookies(request, page(request, "incident.html.j2", _context(request, account, found, refused),
                                     status=refused.status if refused else 200))


@router.get("/incidents/new")
async def report_form(request: Request, session: Handler) -> Response:
    return await _report_page(request, None)


async def _report_page(request: Request, refused: Refused | None) -> Response:
    ctx: Context = request.app.state.ctx
    choices = await read(request, lambda: schools.page(ctx, limit=200).items)
    raw = refused.raw if refused else {"key": [secrets.token_urlsafe(16)]}
    return set_cookies(request, page(request, "incident_new.html.j2", {
        "w": reader(request.state.visitor.language), "fields": [forms.control(n, ctx.settings.affected_systems)
                                                                 for n in REPORTED],
        "values": raw, "refused": refused, "sources": list(Source), "choices": choices,
        "school_rows": range(SCHOOL_ROWS), "severities": forms.SEVERITIES,
    }, status=refused.status if refused else 200))


def _counts(raw: dict[str, list[str]]) -> dict[str, int | None]:
    """Schools and their counts from the repeated ``school``/``count`` rows of a form."""
    counts: dict[str, int | None] = {}
    problems = []
    for brin, count in zip(raw.get("school", []), raw.get("count", []), strict=False):
        brin, count = brin.strip().upper(), count.strip()
        if not brin:
            continue
        counts[brin] = forms.whole_number(count)
        if count and counts[brin] is None:
            problems.append(FieldProblem(f"schools.{brin}", "count must be a whole number, 0 or more"))
    if problems:
        raise InvalidInput("invalid input", problems)
    return counts


@router.post("/incidents/new")
async def report(request: Request, seen: VisitorDep, session: Handler) -> Response:
    form = await posted(request, seen)
    raw = forms.multi(form)
    ctx: Context = request.app.state.ctx
    try:
        fields = forms.parse(raw, Disclosure(), ctx.settings.affected_systems)
        key = (raw.get("key") or [""])[0][:64]
        digest = hashlib.sha256(repr(sorted((k, v) for k, v in raw.items() if k not in ("csrf", "key"))).encode())
        incident = await command(request, service.report, ctx, actor=session.account.username,
                                 source=(raw.get("source") or [""])[0], fields=fields, schools=_counts(raw),
                                 idempotency=service.Idempotency(session.account.id, key, digest.hexdigest())
                                 if key else None)
    except BreachflowError as exc:
        if status_of(exc) not in (409, 422):
            raise
        return await _report_page(request, Refused("report", status_of(exc), exc.message, exc.fields, raw))
    return redirect(request, f"/incidents/{incident.reference}")


@router.get("/incidents/{reference}")
async def incident_page(request: Request, session: Reader, reference: Reference, cursor: Cursor = None) -> Response:
    return await _show(request, session.account, reference, cursor=cursor)


async def _act(request: Request, seen: Any, session: Session, reference: str, name: str, act: Any) -> Response:
    """Run a handler's form ``name``: ``act(raw form)`` calls the command; a refusal shows the page again."""
    raw = forms.multi(await posted(request, seen))
    try:
        await act(raw)
    except BreachflowError as exc:
        if status_of(exc) not in (409, 422):
            raise
        return await _show(request, session.account, reference,
                           Refused(name, status_of(exc), exc.message, exc.fields, raw))
    return redirect(request, f"/incidents/{reference}")


def _version(raw: dict[str, list[str]]) -> int | None:
    return forms.whole_number((raw.get("version") or [""])[0])


def _one(raw: dict[str, list[str]], name: str) -> str:
    return (raw.get(name) or [""])[0]


def _when(raw: dict[str, list[str]], name: str) -> datetime | None:
    """A ``datetime-local`` input read in Amsterdam time; blank is ``None`` (now)."""
    typed = forms.typed_time(_one(raw, name))
    if isinstance(typed, str):
        raise InvalidInput("invalid input", [FieldProblem(name, "give a date and time")])
    return typed


async def _current(request: Request, reference: str) -> Incident:
    return await brief(request, queries.get, request.app.state.ctx, reference)


@router.post("/incidents/{reference}/triggers/{trigger}")
async def fire(request: Request, seen: VisitorDep, session: Handler, reference: Reference,
               trigger: lifecycle.Trigger) -> Response:
    ctx: Context = request.app.state.ctx

    async def act(raw: dict[str, list[str]]) -> None:
        incident = await _current(request, reference)
        fields = forms.parse(raw, incident.disclosure, ctx.settings.affected_systems)
        if trigger is lifecycle.Trigger.reopen:  # a reopening always states its own reason
            fields["reopen_reason"] = _one(raw, "reopen_reason")
        await command(request, service.fire, ctx, reference=reference, trigger=trigger.value,
                      actor=session.account.username, fields=fields, expected_version=_version(raw))

    return await _act(request, seen, session, reference, f"trigger-{trigger.value}", act)


@router.post("/incidents/{reference}/edit")
async def edit(request: Request, seen: VisitorDep, session: Handler, reference: Reference) -> Response:
    ctx: Context = request.app.state.ctx

    async def act(raw: dict[str, list[str]]) -> None:
        incident = await _current(request, reference)
        fields = forms.parse(raw, incident.disclosure, ctx.settings.affected_systems)
        counts = _counts(raw)
        known = {s.brin: s.affected_count for s in incident.schools}
        counts = {b: c for b, c in counts.items() if b not in known or known[b] != c}
        await command(request, service.update, ctx, reference=reference, actor=session.account.username,
                      fields=fields, schools=counts, remove_schools=raw.get("remove", []),
                      reason=checked(schemas.FireIn, {"reason": _one(raw, "reason") or None}).reason,
                      expected_version=_version(raw))

    return await _act(request, seen, session, reference, "edit", act)


def _note(raw: dict[str, list[str]]) -> dict[str, Any]:
    return {"text": checked(schemas.NoteIn, {"text": _one(raw, "text")}).text}


def _contact(raw: dict[str, list[str]]) -> dict[str, Any]:
    given = checked(schemas.ContactIn, {"school": _one(raw, "school"), "channel": _one(raw, "channel"),
                                        "summary": _one(raw, "summary"), "told_must_notify_ap": _one(raw, "told") == forms.YES,
                                        "at": _when(raw, "at")})
    return {"brin": given.school, "channel": given.channel.value, "summary": given.summary,
            "told_must_notify_ap": given.told_must_notify_ap, "at": given.at}


def _ap_notification(raw: dict[str, list[str]]) -> dict[str, Any]:
    given = checked(schemas.ApNotificationIn, {
        "kind": _one(raw, "kind"), "ap_reference": _one(raw, "ap_reference"), "notified_at": _when(raw, "notified_at"),
        "schools": raw.get("schools") or None, "delay_reason": _one(raw, "delay_reason") or None})
    return {"kind": given.kind.value, "ap_reference": given.ap_reference, "notified_at": given.notified_at,
            "schools": given.schools, "delay_reason": given.delay_reason}


def _new_action(raw: dict[str, list[str]]) -> dict[str, Any]:
    given = checked(schemas.ActionsIn, {"actions": [{
        "description": _one(raw, "description"), "owner": _one(raw, "owner"), "due": _one(raw, "due"),
        "blocking": _one(raw, "blocking") == forms.YES}]})
    return {"actions": given.actions}


def _update_notice(raw: dict[str, list[str]]) -> dict[str, Any]:
    return {"message": checked(schemas.NoticeIn, {"message": _one(raw, "message") or None}).message}


class Record(StrEnum):
    """What a handler records on the page besides fields and steps, by the path it is posted to."""

    notes = "notes"
    contacts = "contacts"
    ap_notifications = "ap-notifications"
    notices = "notices"
    actions = "actions"


RECORDS: dict[Record, tuple[str, Callable[..., Incident], Callable[[dict[str, list[str]]], dict[str, Any]]]] = {
    Record.notes: ("note", service.add_note, _note),
    Record.contacts: ("contact", service.log_contact, _contact),
    Record.ap_notifications: ("ap", service.record_ap_notification, _ap_notification),
    Record.notices: ("notice", service.send_update, _update_notice),
    Record.actions: ("action", actions.add, _new_action),
}


@router.post("/incidents/{reference}/acknowledgements")
async def acknowledge(request: Request, seen: VisitorDep, session: SchoolUser, reference: Reference) -> Response:
    account = session.account

    async def act(raw: dict[str, list[str]]) -> None:
        seen_by(account, await _current(request, reference))  # a foreign incident: 404, as if missing
        await command(request, service.acknowledge, request.app.state.ctx, reference=reference,
                      actor=account.username, brin=account.school_brin,
                      comment=checked(schemas.AcknowledgementIn, {"comment": _one(raw, "comment") or None}).comment)

    return await _act(request, seen, session, reference, "acknowledge", act)



@router.post("/incidents/{reference}/people-informed")
async def people_informed(request: Request, seen: VisitorDep, reference: Reference,
                          session: Annotated[Session, Depends(signed_in(Role.handler, Role.school))]) -> Response:
    """A school records whether and how it informed the people affected (GDPR art. 34); a handler
    records it on a school's behalf, naming the school."""
    account = session.account

    async def act(raw: dict[str, list[str]]) -> None:
        seen_by(account, await _current(request, reference))  # a foreign incident: 404, as if missing
        brin = account.school_brin if views.is_school(account) else _one(raw, "school")
        await command(request, service.record_people_informed, request.app.state.ctx, reference=reference,
                      actor=account.username, brin=brin or "", **informing.parsed(raw))

    return await _act(request, seen, session, reference, "people", act)
@router.post("/incidents/{reference}/actions/{number}/settlement")
async def settle_action(request: Request, seen: VisitorDep, session: Handler, reference: Reference,
                        number: Annotated[int, Path(ge=1, le=10_000)]) -> Response:
    async def act(raw: dict[str, list[str]]) -> None:
        given = checked(schemas.SettleIn, {"status": _one(raw, "status"), "note": _one(raw, "note") or None})
        await command(request, actions.settle, request.app.state.ctx, reference=reference,
                      actor=session.account.username, number=number, status=given.status, note=given.note)

    return await _act(request, seen, session, reference, f"settle-{number}", act)


def _recorder(what: Record) -> Callable[..., Any]:
    name, run, arguments = RECORDS[what]

    async def record(request: Request, seen: VisitorDep, session: Handler, reference: Reference) -> Response:
        async def act(raw: dict[str, list[str]]) -> None:
            await command(request, run, request.app.state.ctx, reference=reference, actor=session.account.username,
                          **arguments(raw))

        return await _act(request, seen, session, reference, name, act)

    return record


for _what in Record:  # a path each: a note, a contact, a notification to the AP, an update, follow-up actions
    router.add_api_route(f"/incidents/{{reference}}/{_what.value}", _recorder(_what), methods=["POST"])
