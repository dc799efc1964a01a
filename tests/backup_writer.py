"""A process that reports incidents and adds notes to them until told to stop (the backup tests'
concurrent writer); ``written`` counts the incidents whose commands committed."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from breachflow.workflow import service
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context


def write_until_stopped(environment: dict[str, str], stop, written) -> None:
    os.environ.update(environment)
    ctx = Context.open(Settings())
    while not stop.is_set():
        incident = service.report(ctx, actor="writer", source="monitoring", schools={"12AB": 1},
                                  fields={"summary": "Written during a backup", "discovered_at": datetime.now(UTC)})
        service.add_note(ctx, reference=incident.reference, actor="writer", text="A second event in its chain")
        with written.get_lock():
            written.value += 1
