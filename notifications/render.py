"""Messages from templates: one template per kind and language in ``templates/email/<lang>/``
(package data of ``breachflow.templates``, read through ``importlib.resources``),
with blocks ``subject``, ``text`` and ``html``; rendered in a sandbox, the HTML block escaped.

A subject is one line (``notifications.mime.one_line``); ``notifications.mime`` writes the message itself.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from breachflow.notifications.mime import one_line
from breachflow.templates import loader


class MessageKind(StrEnum):
    initial = "initial"
    update = "update"
    school_responsible = "school_responsible"
    closing = "closing"
    reminder = "reminder"
    bounce = "bounce"  # to handlers and managers: a notice to a school bounced


@cache
def _environment(html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=loader("email"), autoescape=html, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def _block(html: bool, kind: MessageKind, language: str, block: str, variables: dict[str, Any]) -> str:
    environment = _environment(html)
    template = environment.get_template(f"{language}/{kind.value}.j2")
    parts = environment.get_template(f"{language}/_parts.j2").module
    return "".join(template.blocks[block](template.new_context(variables | {"parts": parts}))).strip()


def render(kind: MessageKind, language: str, variables: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, plain text and HTML of a message."""
    subject = one_line(_block(False, kind, language, "subject", variables))
    return (subject, _block(False, kind, language, "text", variables) + "\n",
            _block(True, kind, language, "html", variables) + "\n")
