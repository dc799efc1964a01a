"""How a drafted revision spells breachflow's column types: as the database types they are, so
a revision never imports the models (which change after it was written)."""

from __future__ import annotations

from typing import Any, Literal

from sqlmodel.sql.sqltypes import AutoString

from breachflow.workflow.models import UTCDateTime


def render_item(kind: str, item: Any, _autogen_context: Any) -> str | Literal[False]:
    """``sa.DateTime(timezone=True)`` for UTC times, ``sa.String()`` for SQLModel's strings."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(item, AutoString):
        return f"sa.String({item.length})" if item.length else "sa.String()"
    return False
