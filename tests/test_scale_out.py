"""Scale-out on PostgreSQL: two API processes (``serve --no-worker``) and two workers on one database.

Everything is driven through both APIs at once: every report is sent to both with one
``Idempotency-Key``, every trigger is fired at both, and a platform-wide incident fills the outbox
for both workers to compete over, while both workers' deadline scanners run every half second.
Afterwards: each report stored once, each trigger applied once, every chain valid, every message
accepted by the SMTP server exactly once, nothing dead, each due reminder sent once, and no
process holding more connections than its pool settings allow.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
import sqlalchemy as sa
from cli_process import Running, breachflow
from conftest import CONFIRM, add_school, reported
from notify_support import settings_env
from reading import whole_timeline
from smtp_server import free_port

from breachflow.notifications import reminders
from breachflow.notifications.models import outbox_t
from breachflow.workflow import accounts, queries
from breachflow.workflow.deadlines import deadlines
from breachflow.workflow.models import incident_t
from breachflow.workflow.timeline import EventKind

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # real processes (see the marker in pyproject.toml)

SCHOOLS = 50  # the platform-wide incident affects every one (the most one request may name)
REPORTS = 30
LATE = 6  # incidents whose deadlines are due before the workers start: reminders for both scanners to race over
POOL_SIZE, MAX_OVERFLOW = 2, 1  # each process holds 3 connections at most
APPLICATION = "scale-out-"  # libpq names each process's connections with PGAPPNAME, for counting them
TRIGGERS = [("begin_triage", {}), ("confirm", {"fields": CONFIRM})]


@dataclass
class Cluster:
    urls: list[str]  # the two APIs
    token: str  # the handler's
    late: list[str]  # incidents with reminders due
    processes: list[Running]
    environment: dict[str, str]  # the BREACHFLOW_* variables every process runs with


@pytest.fixture
def cluster(needs_postgres, ctx, settings, smtp, tmp_path):
    """Two APIs and two workers, all on the test's database and sending to ``smtp``; a handler
    (with its token) and a manager, both with email addresses for reminders."""
    environment = settings_env(settings) | {
        "BREACHFLOW_SMTP_HOST": "127.0.0.1", "BREACHFLOW_SMTP_PORT": str(smtp.port),
        "BREACHFLOW_DISPATCH_POLL_SECONDS": "0.2", "BREACHFLOW_DISPATCH_BATCH": "8",
        "BREACHFLOW_REMINDER_SCAN_SECONDS": "0.5",
        "BREACHFLOW_DATABASE_POOL_SIZE": str(POOL_SIZE), "BREACHFLOW_DATABASE_MAX_OVERFLOW": str(MAX_OVERFLOW),
    }
    ports = [free_port(), free_port()]
    processes = []
    try:
        for n, port in enumerate(ports):  # started at once, on an installation without users yet
            processes.append(Running(tmp_path / f"api-{n}", "serve", "--no-worker", "--port", str(port),
                                     **environment, PGAPPNAME=f"{APPLICATION}api-{n}"))
        for process, port in zip(processes, ports, strict=True):
            process.wait_until_ready(port)
        accounts.add_user(ctx, username="hanna", role="handler", email="hanna@processor.example.nl")
        accounts.add_user(ctx, username="mia", role="manager", email="mia@processor.example.nl")
        token = accounts.create_token(ctx, username="hanna").secret
        for n in range(SCHOOLS):
            add_school(ctx, brin=f"{n:02d}ZZ", name=f"School {n}")
        late = [reported(ctx, brins=(f"{n:02d}ZZ",), discovered_hours_ago=71) for n in range(LATE)]
        for n in range(2):
            processes.append(Running(tmp_path / f"worker-{n}", "worker", **environment,
                                     PGAPPNAME=f"{APPLICATION}worker-{n}"))
        for process in processes[2:]:
            process.wait_until_ready()
        yield Cluster([f"http://127.0.0.1:{port}" for port in ports], token, late, processes, environment)
    finally:
        for process in processes:
            process.stop()


async def at_both(apis: list[httpx2.AsyncClient], path: str, json: dict, **headers: str) -> list[httpx2.Response]:
    """The same request to both APIs at once."""
    return list(await asyncio.gather(*(api.post(path, json=json, headers=headers) for api in apis)))


async def drive(urls: list[str], token: str) -> tuple[list[list[httpx2.Response]], dict[str, list[list[httpx2.Response]]]]:
    """Reports, then each trigger on every incident, each sent to both APIs at once."""
    auth = {"Authorization": f"Bearer {token}"}
    apis = [httpx2.AsyncClient(base_url=url, headers=auth, timeout=30) for url in urls]
    try:
        discovered = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        reports = [{"schools": {f"{n % SCHOOLS:02d}ZZ": 25}, "fields": {"summary": f"Report {n}",
                                                                        "discovered_at": discovered}}
                   for n in range(REPORTS)]
        reports.append({"schools": {f"{n:02d}ZZ": 25 for n in range(SCHOOLS)},
                        "fields": {"summary": "Every parent could read every message", "discovered_at": discovered}})
        answers = await asyncio.gather(*(at_both(apis, "/api/v1/incidents", body, **{"Idempotency-Key": f"r{n}"})
                                         for n, body in enumerate(reports)))
        references = [pair[0].json()["reference"] for pair in answers if pair[0].status_code == 201]
        fired = {}
        for trigger, body in TRIGGERS:
            fired[trigger] = await asyncio.gather(*(at_both(apis, f"/api/v1/incidents/{ref}/triggers/{trigger}", body)
                                                    for ref in references))
        return answers, fired
    finally:
        for api in apis:
            await api.aclose()


class ConnectionCount:
    """The most connections each of the cluster's processes held at once, sampled while entered."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.most, self._done = engine, Counter(), threading.Event()
        self._sampler = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        query = sa.text("SELECT application_name, count(*) FROM pg_stat_activity "
                        "WHERE starts_with(application_name, :prefix) GROUP BY application_name")
        with self.engine.connect() as conn:
            while not self._done.wait(0.02):
                for name, count in conn.execute(query, {"prefix": APPLICATION}):
                    self.most[name] = max(self.most[name], count)
                conn.rollback()

    def __enter__(self) -> ConnectionCount:
        self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._sampler.join()


def settled(ctx, smtp, seconds: float = 30) -> list[sa.Row]:
    """The outbox once nothing in it is left to send and the server holds as many messages as it."""
    deadline = time.monotonic() + seconds
    while True:
        with ctx.engine.connect() as conn:
            rows = conn.execute(sa.select(outbox_t.c.message_id, outbox_t.c.status, outbox_t.c.kind, incident_t.c.reference)
                                .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)).all()
        done = all(r.status in ("sent", "dead") for r in rows) and len(smtp.received) >= len(rows)
        if done or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def due_reminders(ctx, reference: str) -> int:
    """How many reminders are due for ``reference`` now: one per deadline with a label due."""
    incident, now = queries.get(ctx, reference), datetime.now(UTC)
    return sum(1 for d in deadlines(incident, ctx.periods)
               if reminders.due_labels(d, now, ctx.settings.reminder_offsets_hours))


def test_two_apis_and_two_workers_apply_each_command_once_and_send_each_message_once(cluster, ctx, smtp, tmp_path):
    expected_reminders = {ref: due_reminders(ctx, ref) for ref in cluster.late}
    assert all(expected_reminders.values())
    with ConnectionCount(ctx.engine) as connections:
        reports, fired = asyncio.run(drive(cluster.urls, cluster.token))
        rows = settled(ctx, smtp)

    # every report stored once: both APIs answered 201 with the one incident its key created
    assert [sorted(r.status_code for r in pair) for pair in reports] == [[201, 201]] * (REPORTS + 1)
    references = [pair[0].json()["reference"] for pair in reports]
    assert [pair[1].json()["reference"] for pair in reports] == references
    with ctx.engine.connect() as conn:
        stored = sorted(conn.execute(sa.select(incident_t.c.reference)).scalars())
    assert stored == sorted(references + cluster.late)

    # every trigger applied once: one API moved the incident, the other was refused
    for trigger, pairs in fired.items():
        outcomes = [sorted((r.status_code, r.json().get("error", {}).get("code")) for r in pair) for pair in pairs]
        assert outcomes == [[(200, None), (409, "trigger_not_allowed")]] * len(references), trigger
    for ref in references:
        transitions = [e.payload["trigger"] for e in whole_timeline(ctx, ref) if e.kind == EventKind.transition]
        assert transitions == [trigger for trigger, _ in TRIGGERS], ref

    # every message accepted by the server exactly once, none missing, none dead
    assert Counter(r.status for r in rows) == {"sent": len(rows)}
    received = Counter(m.message["Message-ID"] for m in smtp.received)
    assert [message_id for message_id, n in received.items() if n > 1] == []
    assert set(received) == {r.message_id for r in rows}
    platform = {r.message_id for r in rows if r.reference == references[-1]}
    assert sorted(to for m in smtp.received if m.message["Message-ID"] in platform for to in m.recipients) == sorted(
        f"directie@{n:02d}zz.example.nl" for n in range(SCHOOLS))
    # both scanners ran from the start: each due reminder once, however often they scanned
    assert Counter(r.reference for r in rows if r.kind == "reminder") == expected_reminders

    # the pool settings hold: no process held more connections than the README tells PostgreSQL to allow for
    assert sorted(connections.most) == sorted(f"{APPLICATION}{p}-{n}" for p in ("api", "worker") for n in range(2))
    assert max(connections.most.values()) <= POOL_SIZE + MAX_OVERFLOW, connections.most

    verified = breachflow(tmp_path, "audit", "verify", **cluster.environment)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for process in cluster.processes:
        assert process.running and "Traceback" not in process.output, process.output
