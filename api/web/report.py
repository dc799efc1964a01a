"""The public report form (``/report``): a third party, without signing in, reports a possible
breach (name, contact, what happened and, if it likes, which school); it is registered as a
``reported`` incident (``workflow.intake.public_report``) and its reference is shown.

Each client address may report ``reports_per_hour`` times an hour (per process; ``api.throttle``);
the next gets 429 with ``Retry-After``. Nothing about any other incident is shown.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from breachflow.api.deps import client_address, command
from breachflow.api.web.auth import VisitorDep, posted, redirect, set_cookies
from breachflow.api.web.render import page
from breachflow.workflow import intake
from breachflow.workflow.errors import FieldProblem, InvalidInput

router = APIRouter(include_in_schema=False)
FIELDS = ("name", "contact", "what", "school")
REFERENCE = re.compile(r"^DL-\d{4}-\d{1,9}$")


def _form(request: Request, typed: dict[str, str], problems: list[FieldProblem], status: int = 200,
          wait: int | None = None) -> Response:
    return set_cookies(request, page(request, "report.html.j2", {
        "typed": typed, "problems": {p.field: p.problem for p in problems}, "wait": wait,
        "lengths": {"name": intake.NAME_LENGTH, "contact": intake.CONTACT_LENGTH, "what": intake.WHAT_LENGTH,
                    "school": intake.SCHOOL_LENGTH},
    }, status=status, headers={"Retry-After": str(wait)} if wait else None))


@router.get("/report")
async def report_form(request: Request, seen: VisitorDep) -> Response:
    return _form(request, dict.fromkeys(FIELDS, ""), [])


@router.post("/report")
async def report(request: Request, seen: VisitorDep) -> Response:
    form = await posted(request, seen)
    typed = dict.fromkeys(FIELDS, "") | {name: str(value) for name, value in form.items() if name in FIELDS}
    limit, client = request.app.state.public_reports, client_address(request)
    wait = limit.retry_after(client)
    if wait is not None:
        return _form(request, typed, [], status=429, wait=wait)
    try:
        incident = await command(request, intake.public_report, request.app.state.ctx, **typed)
    except InvalidInput as exc:
        return _form(request, typed, exc.fields, status=422)
    limit.add(client)
    return redirect(request, f"/report/thanks?reference={incident.reference}")


@router.get("/report/thanks")
async def thanks(request: Request, seen: VisitorDep, reference: str = "") -> Response:
    """The reference just given, shown back (nothing is looked up: the page tells nothing of any incident)."""
    return set_cookies(request, page(request, "report_thanks.html.j2", {
        "reference": reference if REFERENCE.match(reference) else None}))
