"""A register filled through the service layer, and every row of a database as JSON and back.

``fill`` walks real incidents through the lifecycle, with notices sent, pending, acknowledged and bounced,
reminders, follow-up actions (one done, one open after the closing), an AP notification, a dismissal and a
reopening, users, tokens and an idempotent report, a school's master data and the AP dossier's fields, and a
school whose data retention destroyed.
``dump`` and ``load`` read and write the rows of whatever schema a database has (reflected, so they
work at any revision). ``python tests/migration_support.py`` writes the snapshot of the newest
revision: a database filled at that revision, kept in ``tests/migration_data/<revision>.json`` with
the (test-only) keys it was sealed under, so later revisions are tested by upgrading from it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from conftest import (
    AP_DOSSIER,
    AP_FORM,
    CONFIRM,
    CONTAIN,
    EVALUATE,
    MASTER_DATA,
    REMEDIATE,
    RESTORE,
    VERIFY,
    add_school,
    reported,
)
from sqlalchemy import Connection, Engine

from breachflow.notifications import bounced, bounces, heartbeat, reminders
from breachflow.notifications.dispatcher import Dispatcher
from breachflow.notifications.mailer import mailer_for
from breachflow.notifications.models import outbox_t
from breachflow.notifications.worker import notifications_context
from breachflow.workflow import accounts, actions, db, files, keystore, retention, schema, schools, service, sessions
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context, initialise
from breachflow.workflow.models import incident_t, school_t
from breachflow.workflow.service import Idempotency

SNAPSHOTS = Path(__file__).parent / "migration_data"


def fill(ctx: Context) -> list[str]:
    """Fill the register through the service layer; the references of the incidents made."""
    ctx = notifications_context(ctx)
    add_school(ctx, "12AB", "De Regenboog")
    add_school(ctx, "34CD", "Het Kompas")
    schools.update(ctx, brin="12AB", changes=MASTER_DATA)  # the master data the AP dossier reads
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@processor.example.nl")
    accounts.add_user(ctx, username="regenboog", role="school", school="12AB")
    accounts.create_token(ctx, username="hanna", label="laptop", expires_in=timedelta(days=90))
    sessions.set_password(ctx, username="hanna", password="a password for the pages")
    sessions.sign_in(ctx, username="hanna", password="a password for the pages")
    hanna = accounts.list_users(ctx)[0]

    closed = reported(ctx, brins=("12AB", "34CD"))
    fire = lambda trigger, **fields: service.fire(ctx, reference=closed, trigger=trigger, actor="hanna", fields=fields)
    fire("begin_triage")
    fire("confirm", **CONFIRM)
    _dispatch(ctx)  # the first notices, sent: the schools count as informed
    _bounce(ctx, closed, "34CD")  # ... until the one to 34CD bounces (it is informed by phone below)
    service.acknowledge(ctx, reference=closed, actor="regenboog", brin="12AB", comment="Received")
    service.record_people_informed(ctx, reference=closed, actor="regenboog", brin="12AB", informed=True,
                                   at=datetime.now(UTC), via="letter", count=3, note="A letter to the parents")
    fire("contained", **CONTAIN)
    fire("remediated", **(REMEDIATE | {"data_lost_or_altered": True}))
    fire("restored", **RESTORE)
    fire("verified", **VERIFY)
    service.log_contact(ctx, reference=closed, actor="hanna", brin="34CD", channel="phone", summary="Director called")
    due = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    service.fire(ctx, reference=closed, trigger="evaluated", actor="hanna", fields=EVALUATE, actions=[
        {"description": "Extend the release checklist", "owner": "hanna", "due": due, "blocking": True},
        {"description": "Review every class page", "owner": "hanna", "due": due}])  # follow-up actions, deadlines
    actions.settle(ctx, reference=closed, actor="hanna", number=1, status="done", note="Item 14")
    service.record_ap_notification(ctx, reference=closed, actor="hanna", kind="final", ap_reference="AP-2026-1234")
    fire("ap_notified", **AP_FORM, **AP_DOSSIER)  # its closing notices stay pending in the outbox; action 2 open

    open_ = reported(ctx, brins=("34CD",))
    service.fire(ctx, reference=open_, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=open_, trigger="confirm", actor="hanna", fields=CONFIRM)
    service.add_note(ctx, reference=open_, actor="hanna", text="Waiting for the supplier's log files")
    reminders.scan(ctx, datetime.now(UTC) + timedelta(hours=23))  # reminders of its deadlines, queued

    again = service.report(ctx, actor="hanna", source="school", schools={"12AB": 3},
                           fields={"summary": "A mail to the wrong parents", "discovered_at": datetime.now(UTC)},
                           idempotency=Idempotency(hanna.id, "report-1", "0" * 64))
    service.fire(ctx, reference=again.reference, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=again.reference, trigger="dismiss", actor="hanna",
                 fields={"dismissal_reason": "Sent to the school's own test account"})
    service.reopen(ctx, reference=again.reference, actor="hanna", reason="A parent forwarded it after all")
    gone = _retained(ctx)
    now = datetime.now(UTC)
    heartbeat.beat(ctx, heartbeat.Worker("worker-host:4242", now), now)  # a worker that was running
    return [closed, open_, again.reference, gone]


def _bounce(ctx: Context, reference: str, brin: str) -> None:
    """A hard bounce of the first notice to ``brin``: a dead letter with ``outbox.bounced`` set, the
    school no longer informed, the handlers' bounce message queued."""
    with ctx.engine.connect() as conn:
        message_id = conn.execute(sa.select(outbox_t.c.message_id).join(school_t, school_t.c.id == outbox_t.c.school_id)
                                  .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
                                  .where(school_t.c.brin == brin, incident_t.c.reference == reference)).scalar_one()
    failure = bounces.Failure(f"directie@{brin.lower()}.example.nl", "5.1.1", hard=True)
    bounced.record(ctx, bounces.Bounce((message_id,), None, (failure,), "<bounce-1@mx.example.nl>"),
                   reminders.staff_addresses(ctx), datetime.now(UTC))


def _retained(ctx: Context) -> str:
    """A school whose contract ended long ago, its incident and its account, destroyed by retention
    (``retention_log`` rows; a destroyed school key, incident key and affected part)."""
    schools.add(ctx, brin="56EF", name="De Vlinder", contacts=["directie@56ef.example.nl"],
                contract_ends_on=date.today() - timedelta(days=400))
    accounts.add_user(ctx, username="vlinder", role="school", school="56EF", email="ict@56ef.example.nl")
    gone = reported(ctx, brins=("56EF",))
    service.fire(ctx, reference=gone, trigger="begin_triage", actor="hanna")
    retention.apply(ctx, datetime.now(UTC), actor="hanna")
    return gone


def _dispatch(ctx: Context) -> None:
    async def run() -> None:
        await Dispatcher(ctx, mailer_for(ctx.settings)).drain()

    asyncio.run(run())


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, memoryview)):
        return {"b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _typed(column: sa.Column, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, sa.LargeBinary):
        return base64.b64decode(value["b64"])
    if isinstance(column.type, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(column.type, sa.Date):
        return date.fromisoformat(value)
    return value


def _tables(conn: Connection) -> list[sa.Table]:
    found = sa.MetaData()
    found.reflect(conn)
    return [t for t in found.sorted_tables if t.name != "alembic_version"]


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as JSON values, in primary-key order."""
    with engine.connect() as conn:
        return {table.name: [{k: _plain(v) for k, v in row._mapping.items()}
                             for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
                for table in _tables(conn)}


def load(engine: Engine, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Insert ``rows`` (as ``dump`` gave them) into a database with their tables, all or nothing."""
    with engine.begin() as conn:
        for table in _tables(conn):
            if rows.get(table.name):
                conn.execute(sa.insert(table), [{k: _typed(table.c[k], v) for k, v in row.items()}
                                                for row in rows[table.name]])
        if conn.dialect.name == "postgresql":  # the next id after the loaded ones
            for table in _tables(conn):
                if "id" in table.c and rows.get(table.name):
                    # the schema's own table names, not input
                    conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                                         f"(SELECT max(id) FROM {table.name}))"))


def upgrade_when_released(environment: dict[str, str], barrier, results) -> None:
    """In a process of its own: set up (and upgrade) the installation when the barrier opens (race tests)."""
    os.environ.update(environment)
    settings = Settings()
    barrier.wait(timeout=30)
    try:
        results.put(initialise(settings))
    except Exception as exc:  # noqa: BLE001  (the race test names what went wrong)
        results.put(f"{type(exc).__name__}: {exc}")


def installation_at(revision: str, data_dir: Path, *, recorded: bool = True) -> Path:
    """A data directory as a breachflow at ``revision`` left it: key files holding the snapshot's keys,
    and its database (the path returned) with that revision's tables and the snapshot's rows. Without
    ``recorded``, the database keeps no revision, as one made before migrations did not."""
    snapshot = json.loads((SNAPSHOTS / f"{revision}.json").read_text(encoding="utf-8"))
    settings = Settings(data_dir=data_dir)
    for secret in keystore.SECRETS:
        files.write_private(settings.secret_file(secret.setting), snapshot["keys"][secret.setting].encode() + b"\n",
                            replace=False)
    engine = db.new_engine(settings.resolved_database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(schema.config(conn), revision)
        load(engine, snapshot["rows"])
        if not recorded:
            with engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE alembic_version"))
    finally:
        engine.dispose()
    return Path(engine.url.database)


def snapshot_settings(snapshot: dict[str, Any], **settings: Any) -> Settings:
    """Settings with the keys the snapshot's rows were sealed and chained under."""
    return Settings(**snapshot["keys"], **settings)


def write_snapshot() -> Path:
    """Fill a database at the newest revision and keep its rows and keys as that revision's snapshot."""
    keys = {secret.setting: secret.generate().decode().strip() for secret in keystore.SECRETS}
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), **keys)
        initialise(settings)
        ctx = Context.open(settings)
        fill(ctx)
        snapshot = {"revision": schema.head(), "keys": keys, "rows": dump(ctx.engine)}
        ctx.engine.dispose()
    path = SNAPSHOTS / f"{schema.head()}.json"
    SNAPSHOTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write_snapshot()}", file=sys.stderr)
