"""Benchmark: whether reads and the deadline scanner grow with the register.

One SQLite installation grows from nothing to 1,000 and then to 50,000 incidents, a third of them
in progress, spread over 300 schools. At each size it measures, on a ``breachflow serve``-alike
uvicorn process, the server's CPU per request (user + system time from /proc, over at least
``--seconds`` of requests, three rounds interleaved, median) for:

- the first page of incidents, and of ``?deadline=overdue``;
- the deadlines list, for a handler and for a school user;
- one page of the register;

and, in this process, the CPU of one reminder-scanner pass that finds nothing to send (after a
pass that caught up on every reminder due). Each figure is reported as ``t50000 / t1000`` in a
field ending in ``_ratio``; the target is ≤ 1.5 for each.

The incidents are loaded through breachflow's own service layer (the code that seals and chains),
with SQLite's ``synchronous=OFF`` on the loading connection only: a power cut during a benchmark
costs nothing, and the load takes minutes instead of an hour. The measured server runs with
breachflow's settings (``synchronous=FULL``).

    python bench/scale.py [--sizes 1000 50000] [--seconds 1.0] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import event

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from support import free_port, wait_for_port  # noqa: E402

from breachflow.notifications import reminders  # noqa: E402
from breachflow.workflow import accounts, db, schools, service  # noqa: E402
from breachflow.workflow.config import Settings  # noqa: E402
from breachflow.workflow.context import Context, initialise  # noqa: E402

SCHOOLS = 300
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET = 1.5
ROUNDS = 3
CONFIRM = {"summary": "Class lists visible to other parents", "nature_how": "A permission check was missing",
           "nature_actions": ["read"], "affected_systems": ["parent_portal"], "cause_category": "unknown"}
CLOSE_STEPS = [
    ("contained", {"measures": "Page switched off"}),
    ("remediated", {"cause_category": "system_technical", "cause_description": "A release dropped the check",
                    "fix_description": "Check restored, regression test added", "fix_tested": True,
                    "data_lost_or_altered": False}),
    ("verified", {"fix_applied": True, "system_verified": True}),
]
EVALUATE = {"evaluation": "Found by monitoring", "group_size_min": 20, "group_size_max": 30, "records_count": 25,
            "affected_groups": [{"group": "pupils", "consequences": "Names seen", "severity": "limited"}],
            "data_kinds": ["contact"]}
AP_FORM = {"data_unreadable": False, "subjects_informed": False,
           "subjects_not_informed_reason": "Low risk: names only, seen by parents of classmates"}


def brin(n: int) -> str:
    return f"{n % 100:02d}A{'ABCDEFGHIJ'[n // 100]}"


def loading_context(settings: Settings) -> Context:
    """A context whose SQLite connections do not wait for the disk (loading only)."""
    engine = db.new_engine(settings.resolved_database_url)

    @event.listens_for(engine, "connect")
    def _fast(dbapi_connection, _record) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    return Context.open(settings, engine)


def _fire(ctx: Context, ref: str, trigger: str, fields: dict | None = None) -> None:
    service.fire(ctx, reference=ref, trigger=trigger, actor="loader", fields=fields)


def load(ctx: Context, start: int, stop: int, now: datetime) -> None:
    """Incidents ``start``..``stop``: of every six, two in progress, three dismissed, one closed."""
    for n in range(start, stop):
        school = brin(n % SCHOOLS)
        discovered = now - timedelta(hours=(n * 7919) % (24 * 20) + 1)
        ref = service.report(ctx, actor="loader", source="monitoring", schools={school: 25},
                             fields={"discovered_at": discovered, "summary": f"Report {n}"}).reference
        fire = functools.partial(_fire, ctx, ref)
        kind = n % 6
        if kind == 0:
            continue  # in progress: reported
        fire("begin_triage")
        if kind in (2, 3, 4):
            fire("dismiss", {"dismissal_reason": "Not personal data"})
            continue
        fire("confirm", CONFIRM)
        if kind == 1:
            continue  # in progress: confirmed
        for trigger, fields in CLOSE_STEPS:
            fire(trigger, fields)
        service.log_contact(ctx, reference=ref, actor="loader", brin=school, channel="phone", summary="Informed")
        fire("evaluated", EVALUATE)
        late = datetime.now(UTC) - discovered > timedelta(hours=ctx.settings.ap_notice_hours)
        service.record_ap_notification(ctx, reference=ref, actor="loader", kind="final", ap_reference=f"AP-{n}",
                                       delay_reason="Found late" if late else None)
        fire("ap_notified", AP_FORM)
        if (n + 1) % 2000 == 0:
            print(f"  loaded {n + 1} incidents", file=sys.stderr)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def server_cpu(client: httpx.Client, pid: int, path: str, token: str, seconds: float) -> float:
    """The server's CPU seconds per request for ``path``, over at least ``seconds`` of requests."""
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(path, headers=headers).status_code == 200  # warm
    before, started, count = cpu_seconds(pid), time.perf_counter(), 0
    while count < 10 or time.perf_counter() - started < seconds:
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
        count += 1
    return (cpu_seconds(pid) - before) / count


def scanner_cpu(ctx: Context, seconds: float) -> float:
    """CPU seconds of one scanner pass that sends nothing (median of passes over ``seconds``)."""
    times, started = [], time.perf_counter()
    while len(times) < 5 or time.perf_counter() - started < seconds:
        before = time.process_time()
        if reminders.scan(ctx, datetime.now(UTC)):
            raise RuntimeError("a pass after the catch-up queued a reminder: the benchmark measures idle passes")
        times.append(time.process_time() - before)
    return statistics.median(times)


def measure(settings: Settings, tokens: dict[str, str], seconds: float) -> dict[str, float]:
    """Every cell at the register's current size, in seconds of CPU per request or pass."""
    port = free_port()
    env = os.environ | {"BREACHFLOW_DATA_DIR": str(settings.data_dir), "BREACHFLOW_IN_PROCESS_WORKER": "false",
                        "BREACHFLOW_LOG_LEVEL": "warning"}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "breachflow.api.main:app_from_environment",
                               "--factory", "--port", str(port), "--log-level", "warning", "--no-access-log"], env=env)
    cells = {
        "incidents_first_page": ("/api/v1/incidents", "handler"),
        "incidents_overdue": ("/api/v1/incidents?deadline=overdue", "handler"),
        "deadlines": ("/api/v1/deadlines", "handler"),
        "school_deadlines": ("/api/v1/deadlines", "school"),
        "register_page": ("/api/v1/register", "handler"),
    }
    rounds: dict[str, list[float]] = {name: [] for name in [*cells, "scanner_pass"]}
    try:
        wait_for_port(port, server, "breachflow")
        ctx = Context.open(settings)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for _ in range(ROUNDS):
                for name, (path, user) in cells.items():
                    rounds[name].append(server_cpu(client, server.pid, path, tokens[user], seconds))
                rounds["scanner_pass"].append(scanner_cpu(ctx, seconds))
        ctx.engine.dispose()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {name: statistics.median(values) for name, values in rounds.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1000, 50000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--seconds", type=float, default=1.0, help="least time of requests per cell and round")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="breachflow-bench-scale-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "var")
        initialise(settings)
        ctx = loading_context(settings)
        for n in range(SCHOOLS):
            schools.add(ctx, brin=brin(n), name=f"School {n}", contacts=[f"office@school{n}.example.nl"])
        accounts.add_user(ctx, username="handler", role="handler")
        accounts.add_user(ctx, username="school", role="school", school=brin(7))
        tokens = {user: accounts.create_token(ctx, username=user).secret for user in ("handler", "school")}
        loaded, now = 0, datetime.now(UTC)
        timings: dict[int, dict[str, float]] = {}
        for size in args.sizes:
            started = time.perf_counter()
            load(ctx, loaded, size, now)
            loaded = size
            loaded_in = time.perf_counter() - started
            started = time.perf_counter()
            caught_up = reminders.scan(ctx, datetime.now(UTC))  # the reminders due so far, as a worker would
            timings[size] = {"load_s": round(loaded_in, 1), "catch_up_scan_s": round(time.perf_counter() - started, 1),
                             "reminders_queued": caught_up}
            print(f"  {size} incidents: loaded in {loaded_in:.0f} s; catch-up scan queued {caught_up}",
                  file=sys.stderr)
            results[size] = measure(settings, tokens, args.seconds)
        ctx.engine.dispose()

    small, large = args.sizes
    summary: dict[str, object] = {
        f"{name}_ratio": round(results[large][name] / results[small][name], 2) for name in results[small]}
    summary |= {"target": TARGET, "sizes": args.sizes, "in_progress": "a third", "schools": SCHOOLS,
                "cpu_ms": {str(size): {name: round(1000 * value, 3) for name, value in cells.items()}
                           for size, cells in results.items()},
                "setup": {str(size): t for size, t in timings.items()}}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{'':24}{small:>10}{large:>10}   ratio (CPU ms per request or pass)")
    for name in results[small]:
        print(f"{name:24}{1000 * results[small][name]:>10.2f}{1000 * results[large][name]:>10.2f}"
              f"   {summary[name + '_ratio']:>5} {'ok' if summary[name + '_ratio'] <= TARGET else 'ABOVE TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
