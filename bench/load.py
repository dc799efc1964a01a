"""Benchmark: a mixed workload against two API processes and one worker on PostgreSQL, for a
bounded time, then a check that nothing was lost.

``--clients`` concurrent keep-alive clients spread their requests over two ``breachflow serve
--no-worker`` processes, as a proxy would: handlers report incidents, update them and fire their
next trigger (sent to both processes at once: one applies it, the other answers 409, the only
error expected), managers read timelines, schools list their incidents. One ``breachflow worker``
sends the notices to aiosmtpd (another process, writing a maildir). Afterwards every accepted
report, update and trigger must be on its incident's timeline once, every chain must verify and
replay, and every queued notice must have reached the server once, none dead.

    python bench/load.py [--seconds 20] [--clients 8] [--database-url URL] [--json]

Without ``--database-url`` it creates a database on ``--server`` and drops it afterwards; a given
database must hold no breachflow tables, and is left without them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mailbox
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from cli_process import Running  # noqa: E402
from notify import CONFIRM  # noqa: E402
from notify_support import settings_env  # noqa: E402
from support import free_port, wait_for_port  # noqa: E402

from breachflow.notifications.models import outbox_t  # noqa: E402
from breachflow.workflow import accounts, audit, db, keystore, pages, queries, schema, schools  # noqa: E402
from breachflow.workflow.config import Settings  # noqa: E402
from breachflow.workflow.context import Context, initialise  # noqa: E402
from breachflow.workflow.timeline import EventKind  # noqa: E402

# each state's next trigger and its fields; confirm, contained and remediated queue notices
NEXT = {
    "reported": ("begin_triage", {}),
    "triage": ("confirm", {"fields": CONFIRM}),
    "containment": ("contained", {"fields": {"measures": "Berichtenmodule uitgeschakeld"}}),
    "remediation": ("remediated", {"fields": {
        "cause_category": "system_technical", "cause_description": "Update 4.2 liet een controle weg",
        "fix_description": "Controle hersteld, regressietest toegevoegd", "fix_tested": True,
        "data_lost_or_altered": False}}),
}
SCHOOL_USERS = 10


@dataclass
class Owned:
    """An incident a client reported: it alone updates it and fires its triggers."""

    reference: str
    version: int
    state: str


@dataclass
class Load:
    """The clients' shared view: two APIs, tokens, and what was accepted."""

    apis: list[httpx2.AsyncClient]
    handler: str
    manager: str
    school_tokens: list[str]
    brins: list[str]
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    intended_conflicts: int = 0
    updates: Counter = field(default_factory=Counter)  # reference → accepted updates
    triggers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # reference → accepted
    references: list[str] = field(default_factory=list)
    _turn: int = 0

    def api(self) -> httpx2.AsyncClient:
        """The next API process, round robin."""
        self._turn += 1
        return self.apis[self._turn % len(self.apis)]

    async def request(self, kind: str, api: httpx2.AsyncClient, method: str, path: str, token: str,
                      expect: int | None, **options) -> httpx2.Response | None:
        """One timed request; anything but ``expect`` (if given) is an error."""
        headers = {"Authorization": f"Bearer {token}"} | options.pop("headers", {})
        started = time.perf_counter()
        try:
            response = await api.request(method, path, headers=headers, **options)
        except httpx2.HTTPError as exc:
            self.errors.append(f"{kind} {method} {path}: {exc!r}")
            return None
        self.latencies[kind].append(time.perf_counter() - started)
        if expect is not None and response.status_code != expect:
            self.errors.append(f"{kind} {method} {path}: {response.status_code} {response.text[:200]}")
            return None
        return response


async def report(load: Load, rng: random.Random, own: list[Owned]) -> None:
    body = {"schools": dict.fromkeys(rng.sample(load.brins, rng.randint(1, 3)), 25),
            "fields": {"summary": "Ouders zagen elkaars berichten",
                       "discovered_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}}
    response = await load.request("report", load.api(), "POST", "/api/v1/incidents", load.handler, 201, json=body,
                                  headers={"Idempotency-Key": str(uuid.uuid4())})
    if response is not None:
        incident = response.json()
        own.append(Owned(incident["reference"], incident["version"], incident["state"]))
        load.references.append(incident["reference"])


async def update(load: Load, rng: random.Random, own: list[Owned]) -> None:
    incident = rng.choice(own)
    body = {"version": incident.version, "fields": {"summary": f"Ouders zagen elkaars berichten ({uuid.uuid4().hex[:8]})"}}
    response = await load.request("update", load.api(), "PATCH", f"/api/v1/incidents/{incident.reference}",
                                  load.handler, 200, json=body)
    if response is not None:
        incident.version = response.json()["version"]
        load.updates[incident.reference] += 1


async def trigger(load: Load, rng: random.Random, own: list[Owned]) -> None:
    """The incident's next trigger, sent to both APIs at once: one 200 and one 409 expected."""
    incident = rng.choice([i for i in own if i.state in NEXT])
    name, body = NEXT[incident.state]
    path = f"/api/v1/incidents/{incident.reference}/triggers/{name}"
    answers = await asyncio.gather(*(load.request("trigger", api, "POST", path, load.handler, None, json=body)
                                     for api in load.apis))
    statuses = sorted((a.status_code, a.json().get("error", {}).get("code")) if a else (0, None) for a in answers)
    if statuses == [(200, None), (409, "trigger_not_allowed")]:
        load.intended_conflicts += 1
    else:
        load.errors.append(f"trigger {path}: {statuses}")
    for applied in (a.json() for a in answers if a is not None and a.status_code == 200):
        incident.version, incident.state = applied["version"], applied["state"]
        load.triggers[incident.reference].append(name)


async def timeline(load: Load, rng: random.Random, own: list[Owned]) -> None:
    reference = rng.choice(load.references)
    await load.request("timeline", load.api(), "GET", f"/api/v1/incidents/{reference}/timeline", load.manager, 200)


async def school_read(load: Load, rng: random.Random, own: list[Owned]) -> None:
    await load.request("school_read", load.api(), "GET", "/api/v1/incidents?limit=20",
                       rng.choice(load.school_tokens), 200)


ACTIONS = {report: 25, update: 20, trigger: 20, timeline: 20, school_read: 15}  # what a client does, by weight


async def client(load: Load, seed: int, until: float) -> None:
    """Requests one after another until ``until``; a client that owns nothing to act on reports."""
    rng, own = random.Random(seed), []  # noqa: S311 a reproducible load, not a secret
    actions, weights = list(ACTIONS), list(ACTIONS.values())
    while time.monotonic() < until:
        action = rng.choices(actions, weights)[0]
        if (action is update and not own) or (action is trigger and not any(i.state in NEXT for i in own)) or (
                action is timeline and not load.references):
            action = report
        await action(load, rng, own)


async def run_load(load: Load, clients: int, seconds: float) -> float:
    started = time.monotonic()
    await asyncio.gather(*(client(load, seed, started + seconds) for seed in range(clients)))
    return time.monotonic() - started


def prepare(settings: Settings, school_count: int) -> tuple[Context, dict[str, str], list[str], list[str]]:
    """An installation with ``school_count`` schools, a handler, a manager and school users; their tokens."""
    initialise(settings)
    ctx = Context.open(settings)
    brins = [f"{n // 26:02d}{chr(65 + n % 26)}B" for n in range(school_count)]
    for n, brin in enumerate(brins):
        schools.add(ctx, brin=brin, name=f"Basisschool {n}", contacts=[f"directie@school{n}.example.nl"])
    tokens = {}
    for name, role in (("hanna", "handler"), ("mia", "manager")):
        accounts.add_user(ctx, username=name, role=role)
        tokens[name] = accounts.create_token(ctx, username=name).secret
    school_tokens = []
    for brin in brins[:SCHOOL_USERS]:
        accounts.add_user(ctx, username=f"school-{brin.lower()}", role="school", school=brin)
        school_tokens.append(accounts.create_token(ctx, username=f"school-{brin.lower()}").secret)
    return ctx, tokens, school_tokens, brins


def drained(ctx: Context, maildir: Path, seconds: float) -> tuple[list[sa.Row], Counter]:
    """The outbox once nothing is left to send and the server holds as many messages; the
    Message-IDs the server received, counted."""
    deadline = time.monotonic() + seconds
    while True:
        with ctx.engine.connect() as conn:
            rows = conn.execute(sa.select(outbox_t.c.message_id, outbox_t.c.status)).all()
        received = Counter(message["Message-ID"] for message in mailbox.Maildir(maildir, create=False))
        if (all(r.status in ("sent", "dead") for r in rows) and received.total() >= len(rows)) or (
                time.monotonic() > deadline):
            return rows, received
        time.sleep(0.5)


def events_of(ctx: Context, reference: str) -> list:
    """Every event of an incident's timeline, read page by page."""
    page = queries.timeline_page(ctx, reference, limit=pages.MAX_LIMIT)
    events = page.items
    while page.next_cursor:
        page = queries.timeline_page(ctx, reference, limit=pages.MAX_LIMIT, cursor=page.next_cursor)
        events += page.items
    return events


def check(ctx: Context, load: Load, rows: list[sa.Row], received: Counter) -> dict:
    """What was lost or doubled: accepted requests missing from the timelines, broken chains, notices."""
    with ctx.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT reference FROM incident")).scalars())
    lost = {"reports": len(set(load.references) ^ stored), "updates": 0, "triggers": 0}
    for reference in load.references:
        events = events_of(ctx, reference)
        updated = sum(1 for e in events if e.kind == EventKind.updated)
        fired = [e.payload["trigger"] for e in events if e.kind == EventKind.transition]
        lost["updates"] += updated != load.updates[reference]
        lost["triggers"] += fired != load.triggers[reference]
    statuses = Counter(r.status for r in rows)
    queued = {r.message_id for r in rows}
    notices = {"queued": len(rows), "sent": statuses["sent"], "dead": statuses["dead"],
               "received": received.total(), "duplicates": sum(n - 1 for n in received.values()),
               "missing": len(queued - set(received)), "unknown": len(set(received) - queued)}
    chains_valid = audit.verify(ctx).intact
    ok = (not any(lost.values()) and chains_valid and not load.errors and notices["sent"] == len(rows)
          and not notices["duplicates"] and not notices["missing"] and not notices["unknown"])
    return {"lost": lost, "chains_valid": chains_valid, "notices": notices, "ok": ok}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def bench(url: str, seconds: float, clients: int, school_count: int) -> dict:
    keys = {"master_keys": Fernet.generate_key().decode(), "audit_key": keystore.AUDIT.generate().decode(),
            "checkpoint_key": keystore.CHECKPOINT.generate().decode()}
    with tempfile.TemporaryDirectory(prefix="breachflow-bench-load-") as tmp:
        directory, smtp_port = Path(tmp), free_port()
        maildir = directory / "maildir"
        capture = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
                                    "-c", "aiosmtpd.handlers.Mailbox", str(maildir)])
        processes: list[Running] = []
        try:
            wait_for_port(smtp_port, capture, "aiosmtpd")
            settings = Settings(data_dir=directory / "var", database_url=url, smtp_host="127.0.0.1",
                                smtp_port=smtp_port, **keys)
            ctx, tokens, school_tokens, brins = prepare(settings, school_count)
            environment = settings_env(settings)
            ports = [free_port(), free_port()]
            processes = [Running(directory / f"api-{n}", "serve", "--no-worker", "--port", str(port), **environment)
                         for n, port in enumerate(ports)]
            processes.append(Running(directory / "worker", "worker", **environment))
            for process, port in zip(processes, [*ports, None], strict=True):
                process.wait_until_ready(port)
            print(f"  {school_count} schools; 2 API processes and 1 worker on {db.where(ctx.engine)}; "
                  f"{clients} clients for {seconds:g} s", file=sys.stderr)
            load, elapsed = asyncio.run(drive(ports, tokens, school_tokens, brins, clients, seconds))
            rows, received = drained(ctx, maildir, seconds=120)
            checked = check(ctx, load, rows, received)
            crashed = [" ".join(p.argv) for p in processes if not p.running]
            ctx.engine.dispose()
        finally:
            for process in processes:
                process.stop()
            capture.terminate()
            capture.wait(timeout=30)
    requests = sum(len(v) for v in load.latencies.values())
    return {
        "seconds": round(elapsed, 1), "clients": clients, "api_processes": 2, "workers": 1, "schools": school_count,
        "requests": requests, "requests_per_s": round(requests / elapsed, 1),
        "kinds": {kind: {"count": len(v), "p50_ms": round(percentile(v, 0.5) * 1000, 1),
                         "p99_ms": round(percentile(v, 0.99) * 1000, 1)} for kind, v in sorted(load.latencies.items())},
        "intended_409": load.intended_conflicts, "errors": len(load.errors), "error_samples": load.errors[:5],
        "incidents": len(load.references), "crashed": crashed, **checked, "ok": checked["ok"] and not crashed,
    }


async def drive(ports: list[int], tokens: dict[str, str], school_tokens: list[str], brins: list[str],
                clients: int, seconds: float) -> tuple[Load, float]:
    limits = httpx2.Limits(max_connections=2 * clients, max_keepalive_connections=2 * clients)
    apis = [httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) for port in ports]
    try:
        load = Load(apis, tokens["hanna"], tokens["mia"], school_tokens, brins)
        return load, await run_load(load, clients, seconds)
    finally:
        for api in apis:
            await api.aclose()


def scratch_database(server: str) -> str:
    """A new, empty database on ``server`` (dropped by ``drop_database``)."""
    name = f"breachflow_bench_{uuid.uuid4().hex[:8]}"
    with sa.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, url: str) -> None:
    name = make_url(url).database
    with sa.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--schools", type=int, default=40)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: a scratch one on --server)")
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="where the scratch database is created and dropped")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    url = args.database_url
    if url and schema.status(db.engine_for(url)).state != "empty":
        parser.error(f"{db.where(db.engine_for(url))} holds breachflow tables or a schema revision: give an empty "
                     "database")
    url = url or scratch_database(args.server)
    try:
        result = bench(url, args.seconds, args.clients, args.schools)
    finally:
        if args.database_url:
            engine = db.engine_for(url)
            SQLModel.metadata.drop_all(engine)
            with engine.begin() as conn:  # and Alembic's record, or the next run takes the database for current
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            engine.dispose()
        else:
            drop_database(args.server, url)

    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['requests']} requests in {result['seconds']} s from {args.clients} clients over 2 API "
              f"processes: {result['requests_per_s']}/s")
        for kind, figures in result["kinds"].items():
            print(f"  {kind:<12} {figures['count']:>6}  p50 {figures['p50_ms']:>7} ms  p99 {figures['p99_ms']:>7} ms")
        print(f"errors: {result['errors']} (intended 409s: {result['intended_409']}) {result['error_samples'] or ''}")
        n = result["notices"]
        print(f"notices: {n['queued']} queued, {n['sent']} sent, {n['dead']} dead; the server received "
              f"{n['received']}, {n['duplicates']} twice, {n['missing']} missing")
        print(f"lost: {result['lost']}; chains valid: {result['chains_valid']}; "
              f"crashed: {result['crashed'] or 'none'}; {'OK' if result['ok'] else 'FAILED'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
