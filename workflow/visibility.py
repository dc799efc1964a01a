"""What a school may see of an incident, one rule for every reader: the API's and the pages' views
(``api/views.py``) and a school's data-subject requests (``workflow/subjects.py``).

A school sees an incident only while it is among its affected schools and retention has not
destroyed its part; of the affected schools only
itself; not the reporter's details; and of the timeline only the kinds of event that concern
schools, those about one school only when they are about it, with only what it may read of each.
"""

from __future__ import annotations

from typing import Any

from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.incident import AffectedSchool, Incident
from breachflow.workflow.timeline import EventKind

HIDDEN_FROM_SCHOOLS = frozenset({"reporter_name", "reporter_contact"})
SCHOOL_EVENT_KINDS = frozenset({EventKind.reported, EventKind.transition, EventKind.contact, EventKind.ap_notification,
                                EventKind.acknowledged, EventKind.notices_sent})
OWN_EVENT_KINDS = frozenset({EventKind.contact, EventKind.acknowledged, EventKind.ap_notification,
                             EventKind.notices_sent})  # a school sees these only when they concern it
MESSAGE_FACTS = ("kind", "attempt", "message_id", "school")  # what a school reads of a notice sent to it


def affects(incident: Incident, school_id: int | None) -> bool:
    """Whether school ``school_id`` is among ``incident``'s affected schools with its part kept (it may
    know the incident exists)."""
    return bool(own_schools(incident, school_id))


def own_schools(incident: Incident, school_id: int | None) -> list[AffectedSchool]:
    """Of ``incident``'s affected schools, the one a school sees: itself, unless retention destroyed its part."""
    return [s for s in incident.schools if s.school_id == school_id and s.destroyed_at is None]


def disclosure_for_school(disclosure: Disclosure) -> Disclosure:
    """The disclosure fields as a school reads them: without the reporter's details."""
    return disclosure.model_copy(update=dict.fromkeys(HIDDEN_FROM_SCHOOLS))


def _details(kind: str, payload: dict[str, Any], brin: str) -> dict[str, Any] | None:
    if kind == EventKind.transition:
        return {"trigger": payload.get("trigger")}
    if kind in (EventKind.contact, EventKind.acknowledged) and payload.get("school") == brin:
        return payload
    if kind == EventKind.ap_notification and brin in payload.get("schools", []):
        return {k: payload.get(k) for k in ("kind", "ap_reference", "notified_at")}
    if kind == EventKind.notices_sent:
        own = [{k: m.get(k) for k in MESSAGE_FACTS} for m in payload.get("messages") or () if m.get("school") == brin]
        return {"messages": own} if own else None
    return None


def event_for_school(kind: str, payload: dict[str, Any] | None, brin: str) -> tuple[bool, dict[str, Any] | None]:
    """Whether school ``brin`` sees a timeline event of ``kind``, and what it reads of its ``payload``."""
    if kind not in SCHOOL_EVENT_KINDS:
        return False, None
    details = _details(kind, payload or {}, brin)
    if kind in OWN_EVENT_KINDS and details is None:
        return False, None  # about another school
    return True, details
