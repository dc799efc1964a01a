"""The timeline in words, one way for every reader: what each event did and field changes old → new,
in Dutch or English (``render.Words``), every time in Amsterdam time, never a Python repr.

``said`` gives an event's headline and detail lines (the incident page shows them); ``entry_text``
writes them for a person at a terminal, in English with codes as typed (``render.CLI``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from breachflow.api.render import CLI, Words
from breachflow.workflow.disclosure import TEXT_FIELDS
from breachflow.workflow.queries import Entry
from breachflow.workflow.timeline import EventKind

INDENT = " " * 6
MESSAGES = {"initial": ("eerste melding", "first notice"), "update": ("update", "update"),
            "school_responsible": ("melding dat de school zelf de AP moet informeren",
                                   "notice that the school must notify the AP itself"),
            "closing": ("afsluitende melding", "closing notice"), "reminder": ("herinnering", "reminder"),
            "bounce": ("waarschuwing: melding teruggekomen", "warning: notice bounced")}
Said = tuple[str, list[str]]


def said(entry: Entry, w: Words) -> Said:
    """What ``entry`` did (its headline) and one line per change or message, in ``w``'s words."""
    if entry.payload is None:
        if entry.kind == EventKind.retention_destroyed:  # its own key is gone: it said what _retention says
            return _retention(entry, {"incident_key": True}, w)
        return f"{w.word(entry.kind)} " + w("[persoonsgegevens vernietigd]", "[personal data destroyed]"), []
    return SAYS.get(entry.kind, _other)(entry, entry.payload, w)


def entry_text(entry: Entry) -> str:
    """One event for a terminal: its number, time and actor, what happened, then one line per change."""
    head = f"{entry.seq:>3}  {CLI.time(entry.at)}  {entry.actor}  "
    headline, details = said(entry, CLI)
    return "\n".join([head + headline, *(INDENT + line for line in details)])


def field_value(name: str, value: Any, w: Words) -> str:
    """A disclosure field's value as the timeline stores it (JSON), in words; free text quoted."""
    shown = w.field(name, value)
    return f'"{shown}"' if name in TEXT_FIELDS and shown != "—" else shown


def _time(text: str | None, w: Words) -> str:
    return w.time(datetime.fromisoformat(text)) if text else "—"


def _changes(payload: dict[str, Any], w: Words) -> list[str]:
    lines = [f"{w.label(name)}: {field_value(name, old, w)} → {field_value(name, new, w)}"
             for name, (old, new) in (payload.get("changes") or {}).items()]
    for brin, (old, new) in (payload.get("schools") or {}).items():
        if old == "affected":
            lines.append(w(f"school {brin} verwijderd", f"school {brin} removed"))
        elif old is None:
            lines.append(w(f"school {brin} toegevoegd, {_count(new, w)}", f"school {brin} added, {_count(new, w)}"))
        else:
            lines.append(f"school {brin}: {_count(old, w)} → {_count(new, w)}")
    return lines


def _count(count: int | None, w: Words) -> str:
    return w("aantal betrokkenen onbekend", "number affected unknown") if count is None else w(
        f"{count} betrokkenen", f"{count} affected")


def _because(payload: dict[str, Any], w: Words) -> str:
    return w(f" (reden: {payload['reason']})", f" (reason: {payload['reason']})") if payload.get("reason") else ""


def _reported(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    if not p.get("reference"):  # a school reads that it was reported, not how
        return w("gemeld", "reported"), []
    source = w.word(p.get("source"))
    return w(f"gemeld als {p['reference']} (bron: {source})", f"reported as {p['reference']} (source: {source})"), \
        _changes(p, w)


def _updated(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    return w("bijgewerkt", "updated") + _because(p, w), _changes(p, w)


def _transition(e: Entry, p: dict[str, Any], w: Words) -> Said:
    return f"{w.word(p.get('trigger'))}: {w.word(e.from_state)} → {w.word(e.to_state)}" + _because(p, w), \
        _changes(p, w)


def _note(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    return w("notitie", "note") + f': "{p.get("text")}"', []


def _actions_recorded(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    lines = []
    for a in p.get("actions") or []:
        blocking = w(", blokkeert het afsluiten", ", blocks closing") if a.get("blocking") else ""
        due = _time(a.get("due_at"), w)
        lines.append(f'{a.get("number")}. "{a.get("description")}": '
                     + w(f"eigenaar {a.get('owner')}, uiterlijk {due}{blocking}",
                         f"owner {a.get('owner')}, due {due}{blocking}"))
    return w("vervolgacties vastgelegd", "follow-up actions recorded"), lines


def _action_settled(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    number, status = p.get("number"), w.word(p.get("status"))
    note = [w("toelichting", "note") + f': "{p["note"]}"'] if p.get("note") else []
    return w(f"vervolgactie {number}: {status}", f"follow-up action {number}: {status}"), note


def _contact(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    told = [w("verteld dat de school zelf de AP moet informeren", "told that the school must notify the AP itself")
            ] if p.get("told_must_notify_ap") else []
    school, channel, at, summary = p.get("school"), w.word(p.get("channel")), _time(p.get("at"), w), p.get("summary")
    return w(f'contact met {school} per {channel} op {at}: "{summary}"',
             f'contact with {school} by {channel} at {at}: "{summary}"'), told


def _ap_notification(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    late = ([w(f'te laat, omdat: "{p["delay_reason"]}"', f'late, because: "{p["delay_reason"]}"')]
            if p.get("delay_reason") else ([w("te laat", "late")] if p.get("late") else []))
    kind, at, schools = w.word(p.get("kind")), _time(p.get("notified_at"), w), ", ".join(p.get("schools") or []) or "—"
    return w(f"AP-melding ({kind}) {p.get('ap_reference')} op {at}, voor {schools}",
             f"AP notification ({kind}) {p.get('ap_reference')} at {at}, covering {schools}"), late


def _acknowledged(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    comment = f': "{p["comment"]}"' if p.get("comment") else ""
    return w(f"{p.get('school')} bevestigde de ontvangst van de melding{comment}",
             f"{p.get('school')} acknowledged the notice{comment}"), []


def _people_informed(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    school = p.get("school")
    if not p.get("informed"):
        return w(f"{school}: de betrokkenen zijn niet geïnformeerd", f"{school}: the people affected were not informed"), []
    at, via = _time(p.get("at"), w), w.word(p.get("via"))
    count = [w(f"{p['count']} betrokkenen geïnformeerd", f"{p['count']} people informed")] if p.get("count") is not None else []
    return w(f"{school} informeerde de betrokkenen op {at} ({via})",
             f"{school} informed the people affected at {at} ({via})"), count


def _notice_requested(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    message = f': "{p["message"]}"' if p.get("message") else ""
    return w("update aan de scholen gevraagd", "update notice requested") + message, []


def message_words(m: dict[str, Any], w: Words) -> str:
    """One message of a notices event: what kind of notice, to whom."""
    nl, en = MESSAGES.get(str(m.get("kind")), (str(m.get("kind")),) * 2)
    return w(f"{nl} aan {m['school']}" if m.get("school") else f"{nl} aan medewerkers",
             f"{en} to {m['school']}" if m.get("school") else f"{en} to staff")


def _messages(nl: str, en: str, line: Callable[[dict[str, Any], Words], str]) -> Callable[..., Said]:
    def words(_e: Entry, p: dict[str, Any], w: Words) -> Said:
        items = p.get("messages") or []
        return f"{w(nl, en)} ({len(items)})", [line(m, w) for m in items]
    return words


def _attempt(m: dict[str, Any], w: Words) -> str:
    return f"{message_words(m, w)}, " + w(f"poging {m.get('attempt')}", f"attempt {m.get('attempt')}")


def _refused(m: dict[str, Any], w: Words) -> str:
    return "".join(w(f"; {address} weigerde: {answer}", f"; {address} refused: {answer}")
                   for address, answer in (m.get("refused") or {}).items())


def _failed(m: dict[str, Any], w: Words) -> str:
    again = _time(m.get("next_attempt_at"), w)
    return f"{_attempt(m, w)}: {m.get('error')}; " + w(f"volgende poging {again}", f"next try {again}")


def _bounced(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    lines = [w(f"{f.get('address')}: {'blijvend' if f.get('hard') else 'tijdelijk'} ({f.get('status') or '?'})",
               f"{f.get('address')}: {'permanent' if f.get('hard') else 'temporary'} ({f.get('status') or '?'})")
             for f in p.get("failures") or []]
    if p.get("dead"):
        lines.append(w("niet bezorgd: geen adres heeft de melding ontvangen", "dead letter: no address received it"))
    if p.get("uninformed"):
        lines.append(w(f"{p.get('school')} geldt niet meer als geïnformeerd", f"{p.get('school')} no longer counts as informed"))
    if p.get("reminded") is not None:
        lines.append(w(f"{p['reminded']} behandelaar(s) en manager(s) gewaarschuwd",
                       f"{p['reminded']} handler(s) and manager(s) told"))
    return w(f"teruggekomen: {message_words(p, w)}", f"bounced: {message_words(p, w)}"), lines


def _requeued(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    n = len(p.get("messages") or [])
    return w(f"{n} niet bezorgde melding(en) opnieuw in de wachtrij", f"{n} dead letter(s) queued again"), []


def _reminder(e: Entry, p: dict[str, Any], w: Words) -> Said:
    school = w(f" van {p['school']}", f" of {p['school']}") if p.get("school") else ""
    moment = w("verlopen", "overdue") if p.get("offset") == "overdue" else w(
        f"{p.get('offset')} vooraf", f"{p.get('offset')} before")
    sent = (w(f"aan {p.get('recipients')} behandelaar(s) en manager(s)",
              f"to {p.get('recipients')} handler(s) and manager(s)") if e.kind == EventKind.reminder_queued
            else w("niet verstuurd: geen behandelaar of manager heeft een e-mailadres",
                   "not sent: no handler or manager has an email address"))
    deadline, due = w.word(p.get("deadline")), _time(p.get("due_at"), w)
    if p.get("action"):
        deadline = f"{deadline} {p['action']}"
    return w(f"herinnering, {moment}: termijn {deadline}{school} verloopt {due}, {sent}",
             f"reminder, {moment}: deadline {deadline}{school} due {due}, {sent}"), []


IDENTIFIERS = {"email": ("e-mailadres", "email address"), "name": ("naam", "name"),
               "pupil_number": ("leerlingnummer", "pupil number")}


def _asked(p: dict[str, Any], w: Words) -> str:
    identifier = p.get("identifier")
    nl, en = IDENTIFIERS.get(str(identifier), (identifier, identifier))
    return w(f"van {p.get('school')}, op {nl}", f"by {p.get('school')}, by {en}")


def _subject_exported(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    return w(f"inzageverzoek {_asked(p, w)}: {p.get('count')} vindplaats(en) meegegeven",
             f"access request {_asked(p, w)}: {p.get('count')} place(s) exported"), \
        [w(f"gevonden in {where}", f"found in {where}") for where in p.get("found") or ()]


def _subject_erased(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    erased = ", ".join(w.label(name) for name in p.get("erased") or ()) or w("niets", "nothing")
    return w(f"verwijderverzoek {_asked(p, w)}: gewist: {erased}", f"erasure request {_asked(p, w)}: erased: {erased}"), \
        [w(f"bewaard: {where}", f"kept: {where}") for where in p.get("kept") or ()]


def _retention(_e: Entry, p: dict[str, Any], w: Words) -> Said:
    if p.get("incident_key"):
        return w("bewaartermijn verstreken: de persoonsgegevens van dit incident zijn vernietigd (het register en "
                 "de tijdlijn blijven)", "retention period over: this incident's personal data destroyed (the "
                 "register entry and the timeline stay)"), []
    school, n = p.get("school"), p.get("notices", 0)
    note = [w("haar notitie over het informeren van de betrokkenen", "its note on informing the people affected")
            ] if p.get("people_informed_note") else []
    return w(f"bewaartermijn van {school} verstreken: het deel van {school} is vernietigd",
             f"retention period of {school} over: the part of {school} destroyed"), [
        w(f"{n} melding(en) aan {school} en wat die zeiden", f"{n} notice(s) to {school} and what they said"), *note]


def _other(e: Entry, p: dict[str, Any], w: Words) -> Said:
    return e.kind, [f"{key}: {w.value(value)}" for key, value in p.items() if value not in (None, {}, [], False)]


SAYS: dict[str, Callable[[Entry, dict[str, Any], Words], Said]] = {
    EventKind.reported: _reported,
    EventKind.updated: _updated,
    EventKind.transition: _transition,
    EventKind.note: _note,
    EventKind.contact: _contact,
    EventKind.ap_notification: _ap_notification,
    EventKind.acknowledged: _acknowledged,
    EventKind.notice_requested: _notice_requested,
    EventKind.people_informed: _people_informed,
    EventKind.notices_queued: _messages("meldingen klaargezet", "notices queued", message_words),
    EventKind.notices_sent: _messages("meldingen verzonden", "notices sent", lambda m, w: _attempt(m, w) + _refused(m, w)),
    EventKind.notices_failed: _messages("meldingen mislukt, worden opnieuw geprobeerd",
                                        "notices failed, to be tried again", _failed),
    EventKind.notices_dead: _messages("meldingen opgegeven (niet bezorgd)", "notices given up (dead letters)",
                                      lambda m, w: f"{_attempt(m, w)}: {m.get('error')}"),
    EventKind.notices_requeued: _requeued,
    EventKind.notice_bounced: _bounced,
    EventKind.reminder_queued: _reminder,
    EventKind.reminder_unsent: _reminder,
    EventKind.subject_exported: _subject_exported,
    EventKind.subject_erased: _subject_erased,
    EventKind.retention_destroyed: _retention,
    EventKind.actions_recorded: _actions_recorded,
    EventKind.action_settled: _action_settled,
}
