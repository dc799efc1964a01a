"""Benchmark: what retention costs the worker every day, and what destroying costs.

1. The daily check when nothing is due. Two SQLite installations, one with 100 and one with 5,000
   incidents over 20 schools (half of them with a contract that ends next year), are asked
   ``retention.plan`` in turn, ``--rounds`` times interleaved; each figure is the median. The check
   reads the schools, not the incidents: the target is ``t5000 / t100`` ≤ 1.5.
2. Destroying. On the large installation one school's contract ended long ago: ``retention.apply``
   destroys its part of each of its 250 incidents (and each incident's key: they are that school's
   alone). Each incident is one transaction with its lock, its timeline event and its log row, so the
   baseline is the cheapest command that does the same for one incident, a note
   (``service.add_note``), timed on the same installation just before. The figure is
   ``apply per incident / note per incident``.

Incidents are loaded through breachflow's own service layer with SQLite's ``synchronous=OFF`` on the
loading connection only (as bench/scale.py does); what is measured runs with breachflow's settings.

    python bench/retention.py [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scale import loading_context  # noqa: E402
from sqlalchemy import select  # noqa: E402

from breachflow.notifications.worker import notifications_context  # noqa: E402
from breachflow.workflow import retention, schools, service  # noqa: E402
from breachflow.workflow.config import Settings  # noqa: E402
from breachflow.workflow.context import Context, initialise  # noqa: E402
from breachflow.workflow.models import affected_t, incident_t, school_t  # noqa: E402

SIZES = (100, 5_000)
SCHOOLS = 20
TARGET = 1.5


def brin(n: int) -> str:
    return f"{n:02d}RT"


def fill(directory: Path, size: int, now: datetime) -> Settings:
    """An installation with ``size`` incidents, each affecting one of ``SCHOOLS`` schools."""
    settings = Settings(data_dir=directory / "var", in_process_worker=False)
    initialise(settings)
    ctx = loading_context(settings)
    next_year = date(now.year + 1, 6, 30)
    for n in range(SCHOOLS):
        schools.add(ctx, brin=brin(n), name=f"School {n}", contacts=[f"office@school{n}.example.nl"],
                    contract_ends_on=next_year if n % 2 else None)
    for n in range(size):
        service.report(ctx, actor="loader", source="monitoring", schools={brin(n % SCHOOLS): 25},
                       fields={"discovered_at": now - timedelta(days=1), "summary": f"Report {n}",
                               "reporter_name": f"Reporter {n}"})
        if (n + 1) % 1000 == 0:
            print(f"  loaded {n + 1} of {size} incidents", file=sys.stderr)
    ctx.engine.dispose()
    return settings


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the daily check")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="breachflow-bench-retention-") as tmp:
        contexts = {size: notifications_context(Context.open(fill(Path(tmp) / str(size), size, now)))
                    for size in SIZES}
        for ctx in contexts.values():
            if retention.plan(ctx, now):
                raise RuntimeError("nothing should be due yet")
        checks: dict[int, list[float]] = {size: [] for size in SIZES}
        for round_ in range(args.rounds):
            for size in SIZES if round_ % 2 == 0 else SIZES[::-1]:
                ctx = contexts[size]
                checks[size] += [timed(lambda ctx=ctx: retention.plan(ctx, now)) for _ in range(20)]

        ctx = contexts[SIZES[-1]]
        references = _references_of(ctx, brin(0))
        note_s = timed(lambda: [service.add_note(ctx, reference=ref, actor="bench", text="Looked at")
                                for ref in references]) / len(references)
        schools.update(ctx, brin=brin(0), changes={"contract_ends_on": date(now.year - 2, 1, 31)})
        due = retention.plan(ctx, now)
        apply_s = timed(lambda: retention.apply(ctx, now)) / len(references)
        if len(due) != 1 or len(due[0].parts) != len(references) or retention.plan(ctx, now):
            raise RuntimeError("retention did not destroy the school's parts")
        for c in contexts.values():
            c.engine.dispose()

    small, large = (1000 * statistics.median(checks[size]) for size in SIZES)
    summary = {"daily_check_ratio": round(large / small, 2), "t100_ms": round(small, 3), "t5000_ms": round(large, 3),
               "target": TARGET, "destroy_vs_note_ratio": round(apply_s / note_s, 2),
               "destroy_per_incident_ms": round(1000 * apply_s, 2), "note_per_incident_ms": round(1000 * note_s, 2),
               "incidents_destroyed": len(references)}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"daily retention check: {small:.3f} ms at {SIZES[0]}, {large:.3f} ms at {SIZES[1]} incidents; "
          f"ratio {summary['daily_check_ratio']} ({'ok' if summary['daily_check_ratio'] <= TARGET else 'ABOVE TARGET'}"
          f" ≤ {TARGET})")
    print(f"destroying a school's part: {1000 * apply_s:.2f} ms per incident, a note {1000 * note_s:.2f} ms; "
          f"ratio {summary['destroy_vs_note_ratio']} over {len(references)} incidents")
    return 0


def _references_of(ctx: Context, school: str) -> list[str]:
    """The references of the incidents affecting ``school``."""
    with ctx.engine.connect() as conn:
        return list(conn.execute(
            select(incident_t.c.reference).join(affected_t, affected_t.c.incident_id == incident_t.c.id)
            .join(school_t, school_t.c.id == affected_t.c.school_id).where(school_t.c.brin == school)
            .order_by(incident_t.c.id)).scalars())


if __name__ == "__main__":
    sys.exit(main())
