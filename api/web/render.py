"""Pages as HTML: one Jinja2 environment over ``templates/pages``, Dutch by default, English per user.

Words in templates come in both languages side by side: ``{{ _("Incidenten", "Incidents") }}``
picks the visitor's. Times are shown in Europe/Amsterdam (``local`` filter); nothing else is
converted on the way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, StrictUndefined, pass_context
from jinja2.runtime import Context as TemplateContext

from breachflow.templates import loader
from breachflow.workflow.deadlines import local

LANGUAGES = ("nl", "en")


def in_language(language: str, nl: str, en: str) -> str:
    """``en`` for an English reader, else ``nl`` (the default)."""
    return en if language == "en" else nl


@pass_context
def _words(context: TemplateContext, nl: str, en: str) -> str:
    return in_language(context["lang"], nl, en)


def amsterdam(moment: datetime | None, with_zone: bool = False) -> str:
    """A stored UTC time as people read it: ``28-11-2026 10:00`` in Amsterdam time."""
    if moment is None:
        return "—"
    shown = local(moment)
    return f"{shown:%d-%m-%Y %H:%M}" + (f" {shown:%Z}" if with_zone else "")


environment = Environment(loader=loader("pages"), autoescape=True, undefined=StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)
environment.globals["_"] = _words
environment.filters["local"] = amsterdam


def page(request: Request, template: str, context: dict[str, Any], status: int = 200,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    """``template`` rendered for the request's visitor (``request.state.visitor``, set by ``web.auth``)."""
    visitor = request.state.visitor
    values = {"lang": visitor.language, "visitor": visitor, "csrf": visitor.form_token, "path": request.url.path,
              **context}
    return HTMLResponse(environment.get_template(template).render(values), status_code=status, headers=headers)
