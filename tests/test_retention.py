"""Retention (seed section 4): two months after a school's contract ends, its personal data is
destroyed — its part of every incident, the incident's own data once no school keeps a part, its
own key and its accounts' personal data — while the register entry, the deadlines and every chain
stay, and the parts of schools whose contract has not ended are kept."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import SCHOOL_A, SCHOOL_B, assert_error
from conftest import CONFIRM, evaluating, hours_ago
from fastapi.testclient import TestClient
from freezegun import freeze_time
from notify_support import drain, smtp_context, with_notices
from sqlmodel import SQLModel
from web_support import browser, installation

from breachflow.api import register_export
from breachflow.api.render import CLI
from breachflow.api.timeline_text import said
from breachflow.notifications import outbox, reminders, worker
from breachflow.notifications.models import outbox_t, snapshot_t
from breachflow.workflow import (
    accounts,
    actions,
    audit,
    crypto,
    links,
    queries,
    retention,
    schools,
    service,
    sessions,
    store,
)
from breachflow.workflow.errors import Conflict, DataDamaged, DataDestroyed, InvalidInput, SchoolDestroyed
from breachflow.workflow.models import (
    action_t,
    affected_t,
    data_key_t,
    deadline_t,
    event_t,
    incident_t,
    retention_t,
    user_t,
)
from breachflow.workflow.timeline import EventKind

NAME = "Xandra Quispelhorst"  # planted: nowhere after retention
KEPT_NAME = "Pieter Kwast"  # of the incident shared with a school whose contract did not end
ENDED, OTHER_ENDED, OPEN = "12AB", "34CD", "56EF"


# --- when a school is due ---------------------------------------------------------------------------


@pytest.mark.parametrize(("ends", "due"), [
    (date(2025, 12, 31), datetime(2026, 2, 28, 23, 0, tzinfo=UTC)),  # kept until 28 Feb: gone 1 Mar, Amsterdam winter
    (date(2026, 6, 30), datetime(2026, 8, 31, 22, 0, tzinfo=UTC)),  # a month's end: kept until 31 Aug, summer time
    (date(2026, 7, 30), datetime(2026, 9, 30, 22, 0, tzinfo=UTC)),  # kept until 30 Sep, gone 1 Oct…
    (date(2026, 7, 31), datetime(2026, 9, 30, 22, 0, tzinfo=UTC)),  # …as when it ended a day later
    (date(2026, 12, 28), datetime(2027, 2, 28, 23, 0, tzinfo=UTC)),  # kept until 28 Feb…
    (date(2026, 12, 30), datetime(2027, 2, 28, 23, 0, tzinfo=UTC)),  # …and 30 Dec too: clamped, never a day early
    (date(2027, 12, 30), datetime(2028, 2, 29, 23, 0, tzinfo=UTC)),  # kept until 29 Feb in a leap year
    (date(2026, 10, 31), datetime(2026, 12, 31, 23, 0, tzinfo=UTC)),  # kept until 31 Dec: gone 1 Jan of the next year
    (date(2026, 8, 15), datetime(2026, 10, 15, 22, 0, tzinfo=UTC)),  # kept until 15 Oct (still summer time)
])
def test_a_school_is_due_at_midnight_in_amsterdam_after_the_same_day_two_calendar_months_on(ends, due):
    assert retention.due_at(ends) == due


# --- the world: two schools whose contract ends, one whose contract does not ------------------------


def contract_end() -> date:
    return date.today() + timedelta(days=10)  # relative: the incidents are made before it


def add(ctx, brin: str, ends: date | None) -> schools.SchoolView:
    return schools.add(ctx, brin=brin, name=f"School {brin}", contacts=[f"directie@{brin.lower()}.example.nl"],
                       contract_ends_on=ends, master={"contact_person": {"name": f"Contact of {brin}",
                                                                         "email": f"fg@{brin.lower()}.example.nl"}})


def incident(ctx, brins: tuple[str, ...], name: str) -> str:
    """A confirmed incident of ``brins`` whose reporter and summary name ``name`` (its notices say it)."""
    reference = service.report(ctx, actor="handler", source="school", schools={b: 3 for b in brins},
                               fields={"discovered_at": hours_ago(2), "reporter_name": name,
                                       "reporter_contact": "0612345678"}).reference
    service.fire(ctx, reference=reference, trigger="begin_triage", actor="hanna")
    service.fire(ctx, reference=reference, trigger="confirm", actor="hanna",
                 fields=CONFIRM | {"summary": f"The report card of {name} was mailed to another parent"})
    return reference


@pytest.fixture
def world(ctx, smtp):
    """Schools 12AB and 34CD (contract ending) and 56EF (no contract end); an incident of 12AB alone,
    one shared by 12AB and 34CD (both naming NAME), one shared by 12AB and 56EF (naming KEPT_NAME);
    the first notices sent, an update to 12AB still pending; a school account of 12AB signed in."""
    mail = smtp_context(ctx, smtp.port)
    ends = contract_end()
    add(mail, ENDED, ends), add(mail, OTHER_ENDED, ends), add(mail, OPEN, None)
    alone = incident(mail, (ENDED,), NAME)
    shared = incident(mail, (ENDED, OTHER_ENDED), NAME)
    kept = incident(mail, (ENDED, OPEN), KEPT_NAME)
    drain(mail)
    sealed_with_the_incident_key(mail, kept, ENDED)  # as every notice was before migration 0006
    service.send_update(mail, reference=alone, actor="hanna", message=f"{NAME}'s parents were called")
    service.send_update(mail, reference=kept, actor="hanna", message="We are still looking into it")
    accounts.add_user(mail, username="regenboog", role="school", school=ENDED, email="ict@12ab.example.nl")
    sessions.set_password(mail, username="regenboog", password="a password for the pages")
    session = sessions.sign_in(mail, username="regenboog", password="a password for the pages")
    token = accounts.create_token(mail, username="regenboog").secret
    return {"ctx": mail, "alone": alone, "shared": shared, "kept": kept, "due": retention.due_at(ends),
            "session": session, "token": token}


def sealed_with_the_incident_key(ctx, reference: str, brin: str) -> None:
    """Seal the notices to ``brin`` about ``reference``, and what they said, with the incident's key."""
    school = schools.get(ctx, brin).id
    with ctx.engine.begin() as conn:
        incident_key_id = conn.execute(sa.select(incident_t.c.data_key_id)
                                       .where(incident_t.c.reference == reference)).scalar_one()
        wrapped = dict(conn.execute(sa.select(data_key_t.c.id, data_key_t.c.wrapped)).all())
        incident_key = ctx.keys.unwrap(wrapped[incident_key_id])
        for table, columns in ((outbox_t, ("recipients", "sealed")), (snapshot_t, ("facts",))):
            ours = (table.c.school_id == school) & (table.c.incident_id == sa.select(incident_t.c.id).where(
                incident_t.c.reference == reference).scalar_subquery())
            for row in conn.execute(sa.select(table).where(ours)).mappings().all():
                old = ctx.keys.unwrap(wrapped[row["data_key_id"]])
                values = {c: crypto.seal_bytes(incident_key, crypto.open_bytes(old, row[c])) for c in columns}
                key = table.c.id == row["id"] if "id" in table.c else ours
                conn.execute(sa.update(table).where(key).values(data_key_id=incident_key_id, **values))


# --- reading every value in the database with every key that is left -------------------------------


def _texts(plain: bytes) -> str:
    """A plaintext as words: JSON as stored, and a MIME message with its parts decoded."""
    texts = [plain.decode(errors="replace")]
    for part in message_from_bytes(plain, policy=policy.default).walk():
        if not part.is_multipart():
            try:
                texts.append(str(part.get_content()))
            except (LookupError, ValueError):  # not a message after all: its bytes are above
                continue
    return "\n".join(texts)


def everything_readable(ctx, tables: tuple[str, ...] | None = None) -> str:
    """Every plain value and every sealed value any data key not destroyed opens, of every table (or ``tables``)."""
    with ctx.engine.connect() as conn:
        keys = [ctx.keys.unwrap(w) for w in conn.execute(
            sa.select(data_key_t.c.wrapped).where(data_key_t.c.wrapped.is_not(None))).scalars()]
        found = []
        for table in SQLModel.metadata.sorted_tables:
            if tables is not None and table.name not in tables:
                continue
            sealed = [c.name for c in table.columns if isinstance(c.type, sa.LargeBinary)]
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    if column not in sealed:
                        found.append(json.dumps(value, default=str, ensure_ascii=False))
                        continue
                    for key in keys:
                        try:
                            found.append(_texts(crypto.open_bytes(key, value)))
                        except DataDamaged:
                            continue
    return "\n".join(found)


def frozen(at: datetime):
    return freeze_time(at.astimezone(UTC).replace(tzinfo=None))


# --- the rule ---------------------------------------------------------------------------------------


def test_one_second_before_it_is_due_nothing_is_destroyed(world):
    ctx = world["ctx"]
    with frozen(world["due"] - timedelta(seconds=1)):
        assert retention.plan(ctx, datetime.now(UTC)) == []
        assert retention.apply(ctx, datetime.now(UTC)) == []
    assert queries.get(ctx, world["alone"]).disclosure.reporter_name == NAME
    assert NAME in everything_readable(ctx)
    with ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(retention_t)).scalar_one() == 0


def test_one_second_after_it_is_due_the_name_is_nowhere_and_the_register_and_chains_remain(world, backend, settings):
    ctx = world["ctx"]
    assert NAME in everything_readable(ctx, ("outbox",))  # the walk finds it in the notices' bodies…
    assert NAME in everything_readable(ctx, ("notice_snapshot",))  # … in what they said …
    assert NAME in everything_readable(ctx, ("incident",))  # … and in the incident, when it is there
    with frozen(world["due"] + timedelta(seconds=1)):
        done = retention.apply(ctx, datetime.now(UTC))
    assert [s.brin for s in done] == [ENDED, OTHER_ENDED]

    assert NAME not in everything_readable(ctx)
    assert "Contact of 12AB" not in everything_readable(ctx)  # the school's contact person
    assert "directie@12ab.example.nl" not in everything_readable(ctx)  # its contacts
    if backend == "sqlite":
        path = Path(ctx.engine.url.database)
        with ctx.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                assert NAME.encode() not in file.read_bytes()

    for reference in (world["alone"], world["shared"]):
        with pytest.raises(DataDestroyed):
            queries.get(ctx, reference)
    register = {i.reference: i for i in queries.incident_page(ctx).items}
    assert set(register) == {world["alone"], world["shared"], world["kept"]}
    for reference in (world["alone"], world["shared"]):
        entry = register[reference]
        assert (entry.state, entry.disclosure.nature_actions, entry.disclosure.affected_systems) == (
            "containment", ["read"], ["parent_portal"])
        assert (entry.disclosure.summary, entry.disclosure.reporter_name) == (None, None)
        assert entry.confirmed_at is not None
        assert {s.brin: s.affected_count for s in entry.schools} == (
            {ENDED: 3} if reference == world["alone"] else {ENDED: 3, OTHER_ENDED: 3})
    report = audit.verify(ctx)
    assert report.intact, report.findings

    # the notices to the schools whose contract ended: dead or sent, and empty
    with ctx.engine.connect() as conn:
        to_ended = conn.execute(sa.select(outbox_t).where(outbox_t.c.school_id != _school_id(ctx, OPEN))).all()
        assert to_ended and all(r.sealed is None and r.recipients is None for r in to_ended)
        assert {r.status for r in to_ended} == {"sent", "dead"}  # the updates still pending went dead
        pending = conn.execute(sa.select(outbox_t.c.school_id).where(outbox_t.c.status == "pending")).scalars().all()
        assert pending == [_school_id(ctx, OPEN)]  # the kept school's update still goes


def test_the_school_whose_contract_did_not_end_keeps_its_part_of_the_shared_incident(world):
    ctx = world["ctx"]
    with frozen(world["due"] + timedelta(seconds=1)):
        retention.apply(ctx, datetime.now(UTC))
    kept = queries.get(ctx, world["kept"])  # its key is kept: the incident reads as before
    assert kept.disclosure.reporter_name == KEPT_NAME
    assert schools.get(ctx, OPEN).contacts == ["directie@56ef.example.nl"]
    assert schools.get(ctx, OPEN).contact_person["name"] == "Contact of 56EF"
    assert schools.get(ctx, ENDED).contacts == [] and schools.get(ctx, ENDED).contact_person is None
    notices = outbox.notices_to(ctx, _school_id(ctx, OPEN)).items
    assert len(notices) == 2 and all(n.subject and world["kept"] in n.subject for n in notices)
    assert all(n.subject is None for n in outbox.notices_to(ctx, _school_id(ctx, ENDED)).items)
    with ctx.engine.connect() as conn:
        parts = dict(conn.execute(sa.select(affected_t.c.school_id, affected_t.c.destroyed_at)
                                  .join(incident_t, incident_t.c.id == affected_t.c.incident_id)
                                  .where(incident_t.c.reference == world["kept"])).all())
        kept_snapshot = conn.execute(sa.select(snapshot_t.c.facts).where(
            snapshot_t.c.school_id == _school_id(ctx, OPEN))).scalar_one()
    assert parts[_school_id(ctx, OPEN)] is None and parts[_school_id(ctx, ENDED)] is not None
    assert kept_snapshot is not None
    said_words = [said(e, CLI)[0] for e in queries.timeline_page(ctx, world["kept"], limit=100).items
                  if e.kind == EventKind.retention_destroyed]
    assert said_words == [f"retention period of {ENDED} over: the part of {ENDED} destroyed"]
    # the kept school's notices still go out: a new update reaches it alone
    service.send_update(ctx, reference=world["kept"], actor="hanna", message="Still looking into it")
    with ctx.engine.connect() as conn:
        newest = conn.execute(sa.select(outbox_t.c.school_id).order_by(outbox_t.c.id.desc()).limit(1)).scalar_one()
    assert newest == _school_id(ctx, OPEN)


def test_the_school_accounts_lose_their_personal_data_sessions_and_tokens(world):
    ctx = world["ctx"]
    assert accounts.authenticate(ctx, world["token"]) is not None
    with frozen(world["due"] + timedelta(seconds=1)):
        retention.apply(ctx, datetime.now(UTC))
    assert accounts.authenticate(ctx, world["token"]) is None
    assert sessions.session_of(ctx, world["session"]) is None
    assert sessions.sign_in(ctx, username="regenboog", password="a password for the pages") is None
    with ctx.engine.connect() as conn:
        user = conn.execute(sa.select(user_t).where(user_t.c.username == "regenboog")).one()
    assert (user.email, user.password_hash) == (None, None)


def test_every_destruction_is_logged_and_on_the_timeline_naming_no_person(world):
    ctx = world["ctx"]
    with frozen(world["due"] + timedelta(seconds=1)):
        retention.apply(ctx, datetime.now(UTC), actor="hanna")
    log = retention.log_page(ctx, limit=100).items
    assert sorted((e.what, e.brin, e.reference) for e in log) == sorted([
        ("school_part", ENDED, world["alone"]), ("incident_key", None, world["alone"]),
        ("school_part", ENDED, world["shared"]), ("school_part", OTHER_ENDED, world["shared"]),
        ("incident_key", None, world["shared"]), ("school_part", ENDED, world["kept"]),
        ("school_key", ENDED, None), ("school_key", OTHER_ENDED, None), ("accounts", ENDED, None)])
    assert all(e.actor == "hanna" for e in log)
    assert {e.contract_ended_on for e in log if e.brin} == {contract_end()}
    assert NAME not in json.dumps([e.__dict__ for e in log], default=str)
    assert "example.nl" not in json.dumps([e.__dict__ for e in log], default=str)
    alone = [(e.kind, e.payload) for e in queries.timeline_page(ctx, world["alone"], limit=100).items]
    assert alone[-2:] == [(EventKind.retention_destroyed, None)] * 2  # sealed with the key that went after
    with ctx.engine.connect() as conn:
        kinds = conn.execute(sa.select(event_t.c.kind).join(incident_t, incident_t.c.id == event_t.c.incident_id)
                             .where(incident_t.c.reference == world["alone"]).order_by(event_t.c.seq)).scalars().all()
    assert kinds[-2:] == [EventKind.retention_destroyed] * 2


def test_the_dry_run_changes_nothing_and_a_second_run_does_nothing(world):
    ctx = world["ctx"]
    before = everything_readable(ctx)
    with frozen(world["due"] + timedelta(seconds=1)):
        planned = retention.plan(ctx, datetime.now(UTC))
        assert everything_readable(ctx) == before
        assert [(s.brin, [p.reference for p in s.parts], s.school_key, s.accounts) for s in planned] == [
            (ENDED, [world["alone"], world["shared"], world["kept"]], True, 1), (OTHER_ENDED, [world["shared"]], True, 0)]
        assert [p.incident_key for p in planned[0].parts] == [True, True, False]
        retention.apply(ctx, datetime.now(UTC))
        after = everything_readable(ctx), _counts(ctx)
        assert retention.plan(ctx, datetime.now(UTC)) == []
        assert retention.apply(ctx, datetime.now(UTC)) == []
    assert (everything_readable(ctx), _counts(ctx)) == after


def test_a_run_that_stopped_part_way_is_finished_by_the_next(world, monkeypatch):
    ctx = world["ctx"]
    real = retention._destroy_school

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(retention, "_destroy_school", crash)
    with frozen(world["due"] + timedelta(seconds=1)), pytest.raises(RuntimeError):
        retention.apply(ctx, datetime.now(UTC))
    assert audit.verify(ctx).intact  # every incident's part is done and consistent; the schools' keys wait
    assert schools.get(ctx, ENDED).contacts == ["directie@12ab.example.nl"]
    monkeypatch.setattr(retention, "_destroy_school", real)
    with frozen(world["due"] + timedelta(seconds=1)):
        again = retention.apply(ctx, datetime.now(UTC))
    assert [(s.brin, s.parts, s.school_key) for s in again] == [(ENDED, [], True), (OTHER_ENDED, [], True)]
    assert schools.get(ctx, ENDED).contacts == []
    assert NAME not in everything_readable(ctx)


def test_notices_a_dispatcher_held_are_neither_sent_nor_recorded_against_a_destroyed_key(world, smtp, caplog):
    ctx = world["ctx"]
    with ctx.engine.begin() as conn:  # as a dispatcher that died left them: one claimed, one accepted by the server
        ids = conn.execute(sa.select(outbox_t.c.id).join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
                           .where(incident_t.c.reference == world["alone"]).order_by(outbox_t.c.id)).scalars().all()
        claimed, accepted = ids[-1], ids[0]
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id == claimed).values(status="sending", claimed_until=long_ago))
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id == accepted).values(status="accepted",
                                                                                 claimed_until=long_ago))
    with frozen(world["due"] + timedelta(seconds=1)):
        retention.apply(ctx, datetime.now(UTC))
    received = len(smtp.received)
    with caplog.at_level(logging.ERROR):
        drain(ctx)
    assert [m.recipients for m in smtp.received[received:]] == [["directie@56ef.example.nl"]]  # the kept school's
    assert [r.getMessage() for r in caplog.records if r.name.startswith("breachflow") and r.levelno >= logging.ERROR] == []  # no failed record
    with ctx.engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(outbox_t.c.id, outbox_t.c.status)
                                     .where(outbox_t.c.id.in_([claimed, accepted]))).all())
    assert statuses == {claimed: "dead", accepted: "sent"}


def test_two_workers_running_it_at_once_destroy_each_thing_once(world):
    ctx, now = world["ctx"], world["due"] + timedelta(seconds=1)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            retention.apply(ctx, now)
        except BaseException as exc:  # noqa: BLE001  (every failure is the finding)
            failures.append(exc)

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=120)
    assert failures == []
    log = [(e.what, e.brin, e.reference) for e in retention.log_page(ctx, limit=100).items]
    assert len(log) == len(set(log)) == 9
    assert NAME not in everything_readable(ctx)


def test_an_incident_whose_key_went_before_still_loses_the_parts_left(world):
    ctx = world["ctx"]
    with ctx.engine.begin() as conn:  # destroyed by hand, its school's part not
        key_id = conn.execute(sa.select(incident_t.c.data_key_id)
                              .where(incident_t.c.reference == world["alone"])).scalar_one()
        store.destroy_data_key(conn, ctx.keys, key_id, datetime.now(UTC))
    with frozen(world["due"] + timedelta(seconds=1)):
        retention.apply(ctx, datetime.now(UTC))
        assert retention.plan(ctx, datetime.now(UTC)) == []
    assert schools.get(ctx, ENDED).contacts == []  # its school's key went after it
    assert [(e.what, e.brin) for e in retention.log_page(ctx, limit=100).items if e.reference == world["alone"]] == [
        ("school_part", ENDED)]
    assert NAME not in everything_readable(ctx)


def test_a_school_without_a_contract_end_is_never_due(ctx):
    mail = with_notices(ctx)
    add(mail, OPEN, None)
    reference = incident(mail, (OPEN,), NAME)
    with frozen(datetime.now(UTC) + timedelta(days=365 * 30)):
        assert retention.apply(mail, datetime.now(UTC)) == []
    assert queries.get(mail, reference).disclosure.reporter_name == NAME


def test_retention_needs_the_notices_to_destroy_them(ctx):
    with pytest.raises(ValueError, match="notifications_context"):
        retention.apply(ctx, datetime.now(UTC))


def _school_id(ctx, brin: str) -> int:
    return schools.get(ctx, brin).id


def _counts(ctx) -> dict[str, int]:
    with ctx.engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in SQLModel.metadata.sorted_tables}


# --- the worker and the command line ----------------------------------------------------------------


def ended_long_ago(ctx) -> str:
    """A school whose contract ended a year ago, with an incident naming NAME: due now."""
    mail = with_notices(ctx)
    add(mail, ENDED, date.today() - timedelta(days=365))
    return incident(mail, (ENDED,), NAME)


def test_the_worker_runs_retention_at_start_and_survives_a_failure(ctx, monkeypatch, caplog):
    reference = ended_long_ago(ctx)

    async def first_run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.retain_forever(ctx, stop))
        for _ in range(500):
            if retention.log_page(ctx).items:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(first_run())
    with pytest.raises(DataDestroyed):
        queries.get(ctx, reference)

    def broken(*_args, **_kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(retention, "apply", broken)
    with caplog.at_level(logging.ERROR, logger="breachflow.worker"):
        assert worker.retain(ctx, datetime.now(UTC)) is False
    assert "retention run failed; trying again in 24 hours" in caplog.text


def test_the_command_line_shows_the_plan_and_destroys_only_with_apply(ctx, cli):
    reference = ended_long_ago(ctx)
    code, out, _ = cli("retention", "run", "--json")
    planned = json.loads(out)
    assert (code, planned["applied"], [s["brin"] for s in planned["schools"]]) == (0, False, [ENDED])
    assert planned["schools"][0]["parts"] == [{"incident_id": planned["schools"][0]["parts"][0]["incident_id"],
                                               "reference": reference, "note": False, "incident_key": True}]
    code, out, _ = cli("retention", "run")
    assert code == 0
    assert out.startswith("due (nothing changed; --apply destroys it):\n12AB: contract ended ")
    assert f"    {reference}: the notices to it and what they said, the incident's own data key" in out
    assert "its own data key: contact addresses" in out
    assert queries.get(ctx, reference).disclosure.reporter_name == NAME
    code, out, _ = cli("retention", "run", "--apply")
    assert (code, out.splitlines()[0]) == (0, "destroyed:")
    with pytest.raises(DataDestroyed):
        queries.get(ctx, reference)
    assert cli("retention", "run") == (0, "nothing is due for destruction\n", "")
    code, out, _ = cli("retention", "log", "--json")
    assert [(e["what"], e["reference"], e["actor"]) for e in json.loads(out)["items"]] == [
        ("school_part", reference, "hanna"), ("incident_key", reference, "hanna"), ("school_key", None, "hanna")]
    code, out, _ = cli("retention", "run", "--help")
    assert code == 0 and "Without --apply this only prints the plan and changes nothing" in " ".join(out.split())


# --- readers after destruction: the API and the pages -----------------------------------------------


def a_destroyed(ctx, settings):
    """The installation, with an incident of school A alone and one shared with B; A's part destroyed."""
    app = installation(ctx, settings)
    ends = contract_end()
    schools.update(ctx, brin=SCHOOL_A, changes={"contract_ends_on": ends})
    mail = with_notices(ctx)
    alone, shared = incident(mail, (SCHOOL_A,), NAME), incident(mail, (SCHOOL_A, SCHOOL_B), KEPT_NAME)
    with frozen(retention.due_at(ends) + timedelta(seconds=1)):
        retention.apply(mail, datetime.now(UTC))
    return app, alone, shared


def test_readers_keep_working_after_destruction_and_only_personal_data_is_410(ctx, settings):
    app, alone, shared = a_destroyed(ctx, settings)
    client = TestClient(app, raise_server_exceptions=False)
    tokens = {user: accounts.create_token(ctx, username=user).secret for user in ("handler", "manager", "school_b")}

    def call(user: str, path: str):
        return client.get("/api/v1" + path, headers={"Authorization": f"Bearer {tokens[user]}"})

    assert_error(call("handler", f"/incidents/{alone}"), 410, "data_destroyed")
    assert call("handler", f"/incidents/{shared}").json()["disclosure"]["reporter_name"] == KEPT_NAME
    theirs = call("school_b", f"/incidents/{shared}")
    assert theirs.status_code == 200 and [s["brin"] for s in theirs.json()["schools"]] == [SCHOOL_B]
    register = call("manager", "/register").json()
    listed = {e["reference"]: e for e in register["items"]}
    assert register["unreadable"] == [] and set(listed) == {alone, shared}
    assert (listed[alone]["state"], listed[alone]["summary"], listed[alone]["group_size_max"]) == (
        "containment", None, None)
    assert listed[alone]["schools"] == [SCHOOL_A] and listed[alone]["nature_actions"] == ["read"]
    exported = call("manager", "/register/export?format=csv").text
    assert alone in exported and register_export.UNREADABLE not in exported and NAME not in exported
    assert {i["reference"] for i in call("handler", "/incidents").json()["items"]} == {alone, shared}
    assert call("handler", "/deadlines").status_code == 200
    timeline = call("handler", f"/incidents/{alone}/timeline?limit=100").json()["items"]
    assert timeline and all(e["details"] is None for e in timeline)  # the structure stays, the words are gone
    assert_error(call("handler", f"/incidents/{alone}/ap-dossier"), 410, "data_destroyed")

    pages = browser(app)
    assert pages.sign_in("school_a").status_code != 303  # its password went with its personal data
    assert pages.sign_in("school_b").status_code == 303
    portal = pages.get("/portal")
    assert portal.status_code == 200 and shared in portal.text and alone not in portal.text
    link = browser(app).get("/link/" + links.make(ctx.audit_key, reference=shared, brin=SCHOOL_B,
                                                  valid_for=timedelta(days=7)))
    assert link.status_code == 200 and shared in link.text
    staff = browser(app)
    staff.sign_in("handler")
    for path in ("/dashboard", "/register", "/register.csv", f"/incidents/{shared}"):
        assert staff.get(path).status_code == 200, path
    assert staff.get(f"/incidents/{alone}").status_code == 410


def test_dead_letters_retention_emptied_are_left_out_of_a_retry_of_all_and_refused_by_id(world):
    """Retention makes a school's unsent notices dead letters without content: retrying all dead
    letters still sends the genuine ones, and naming an emptied one says why it cannot be sent."""
    ctx = world["ctx"]
    with frozen(world["due"] + timedelta(seconds=1)):
        retention.apply(ctx, datetime.now(UTC))
    open_school = schools.get(ctx, OPEN).id
    with ctx.engine.begin() as conn:
        genuine = conn.execute(sa.update(outbox_t).where(outbox_t.c.school_id == open_school,
                                                         outbox_t.c.status == "pending")
                               .values(status="dead", last_error="550 mailbox full").returning(outbox_t.c.id)).scalars().all()
        emptied = conn.execute(sa.select(outbox_t.c.id).where(outbox_t.c.status == "dead",
                                                              outbox_t.c.sealed.is_(None))).scalars().all()
    assert genuine and emptied
    with pytest.raises(Conflict, match="destroyed"):
        outbox.requeue(ctx, ids=[emptied[0]], actor="hanna", now=datetime.now(UTC))
    assert outbox.requeue(ctx, ids=None, actor="hanna", now=datetime.now(UTC)) == len(genuine)
    with ctx.engine.connect() as conn:
        assert set(conn.execute(sa.select(outbox_t.c.id).where(outbox_t.c.status == "pending")).scalars()) == set(genuine)


def test_an_open_follow_up_action_goes_with_its_incident_and_no_longer_asks_for_reminders(world, caplog):
    """When an incident's personal data goes, its open follow-up actions can be neither read nor
    settled: retention drops them on the timeline, so their clocks close and the scanner stays quiet."""
    ctx = world["ctx"]
    accounts.add_user(ctx, username="hanna", role="handler", email="hanna@processor.example.nl")
    ref = evaluating(ctx, brins=(ENDED,))
    actions.add(ctx, reference=ref, actor="hanna", actions=[
        {"description": f"Call {NAME}'s parents", "owner": "hanna", "due": world["due"] + timedelta(days=30),
         "blocking": True}])
    with frozen(world["due"] + timedelta(seconds=1)):
        retention.apply(ctx, datetime.now(UTC))
    with ctx.engine.connect() as conn:
        incident_id = conn.execute(sa.select(incident_t.c.id).where(incident_t.c.reference == ref)).scalar_one()
        assert conn.execute(sa.select(action_t.c.status, action_t.c.settled_by)
                            .where(action_t.c.incident_id == incident_id)).all() == [("dropped", retention.ACTOR)]
        assert conn.execute(sa.select(sa.func.count()).select_from(deadline_t).where(
            deadline_t.c.incident_id == incident_id, deadline_t.c.kind == "follow_up", deadline_t.c.is_open)).scalar_one() == 0
    assert audit.verify(ctx).intact
    stopped = lambda: sum("no longer reminded" in r.getMessage() for r in caplog.records)  # noqa: E731
    with frozen(world["due"] + timedelta(days=31)), caplog.at_level(logging.INFO):  # its other clocks run on
        reminders.scan(ctx, datetime.now(UTC))
        first = stopped()
        reminders.scan(ctx, datetime.now(UTC))  # looked at once, then no more
    failed = [r for r in caplog.records if r.name.startswith("breachflow") and r.levelno >= logging.ERROR]
    assert failed == [] and first > 0 and stopped() == first


def test_a_school_whose_data_was_destroyed_cannot_be_put_on_an_incident(world):
    """Nothing may be stored for a school after its retention: a report or an update naming it is
    refused, naming the school, and nothing is written."""
    ctx = world["ctx"]
    with frozen(world["due"] + timedelta(seconds=1)):
        retention.apply(ctx, datetime.now(UTC))
    before = _counts(ctx)
    with pytest.raises(InvalidInput) as refused:
        service.report(ctx, actor="hanna", source="school", schools={OPEN: 2, ENDED.lower(): 1},
                       fields={"discovered_at": hours_ago(1)})
    assert [(p.field, ENDED in p.problem) for p in refused.value.fields] == [("schools", True)]
    with pytest.raises(InvalidInput):
        service.update(ctx, reference=world["kept"], actor="hanna", schools={OTHER_ENDED: 1})
    assert _counts(ctx) == before


def test_another_school_gets_the_404_of_a_missing_incident_for_one_whose_data_is_destroyed(ctx, settings):
    """A 410 would tell school B that school A had an incident; B gets what an unknown reference gets."""
    app, alone, _ = a_destroyed(ctx, settings)
    client = TestClient(app, raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {accounts.create_token(ctx, username='school_b').secret}"}
    missing = "DL-2000-99999"
    informed = {"informed": False, "note": "not needed"}
    for reference in (missing, alone):
        for method, path, body in [("GET", "", None), ("GET", "/timeline", None), ("GET", "/ap-dossier", None),
                                   ("POST", "/acknowledgements", None), ("POST", "/people-informed", informed)]:
            answer = client.request(method, f"/api/v1/incidents/{reference}{path}", headers=headers, json=body)
            assert_error(answer, 404, "not_found")
            assert answer.json()["error"]["message"] == f"incident {reference} does not exist", path
    pages = browser(app)
    pages.sign_in("school_b")
    assert pages.get(f"/incidents/{alone}").status_code == pages.get(f"/incidents/{missing}").status_code == 404
    handler = {"Authorization": f"Bearer {accounts.create_token(ctx, username='handler').secret}"}
    assert_error(client.get(f"/api/v1/incidents/{alone}", headers=handler), 410, "data_destroyed")  # staff: 410


def test_a_school_whose_part_was_destroyed_no_longer_sees_the_shared_incident(ctx, settings):
    """Even with a token planted in the database, school A's account neither reads, lists nor
    acknowledges the incident B keeps, nor opens the link to its part of it."""
    app, alone, shared = a_destroyed(ctx, settings)
    client = TestClient(app, raise_server_exceptions=False)
    secret = accounts.TOKEN_PREFIX + "planted-token-of-a-destroyed-school"
    with ctx.engine.begin() as conn:
        user_id = conn.execute(sa.select(user_t.c.id).where(user_t.c.username == "school_a")).scalar_one()
        conn.execute(sa.insert(accounts.token_t).values(user_id=user_id, token_hash=accounts.hash_token(secret),
                                                        created_at=datetime.now(UTC)))
    headers = {"Authorization": f"Bearer {secret}"}
    for reference in (alone, shared):
        assert_error(client.get(f"/api/v1/incidents/{reference}", headers=headers), 404, "not_found")
        assert_error(client.post(f"/api/v1/incidents/{reference}/acknowledgements", headers=headers), 404, "not_found")
    assert client.get("/api/v1/incidents", headers=headers).json()["items"] == []
    school_a = schools.get(ctx, SCHOOL_A).id
    assert queries.incident_page(ctx, school_id=school_a).items == []
    still_b = queries.incident_page(ctx, school_id=schools.get(ctx, SCHOOL_B).id).items
    assert [i.reference for i in still_b] == [shared]
    for reference in (alone, shared):  # the notice link of the destroyed part: the 404 of a bent link
        link = links.make(ctx.audit_key, reference=reference, brin=SCHOOL_A, valid_for=timedelta(days=7))
        opened = browser(app).get("/link/" + link)
        assert opened.status_code == 404 and "Deze link werkt niet" in opened.text and KEPT_NAME not in opened.text
    assert browser(app).get("/link/" + links.make(ctx.audit_key, reference=shared, brin=SCHOOL_B,
                                                  valid_for=timedelta(days=7))).status_code == 200


def test_the_accounts_of_a_destroyed_school_do_not_come_back(ctx, settings, cli):
    a_destroyed(ctx, settings)
    refused = "the retention period of school 12AB ended and its data was destroyed"
    with pytest.raises(SchoolDestroyed, match=refused):
        accounts.add_user(ctx, username="sa", role="school", school=SCHOOL_A)
    with pytest.raises(SchoolDestroyed, match=refused):
        sessions.set_password(ctx, username="school_a", password="a password for the pages")
    with pytest.raises(SchoolDestroyed, match=refused):
        accounts.create_token(ctx, username="school_a")
    code, _, err = cli("user", "add", "sa", "--role", "school", "--school", SCHOOL_A, "--email", "sa@12ab.example.nl")
    assert (code, refused in err) == (3, True)
    code, _, err = cli("token", "create", "school_a", "--json")
    assert (code, json.loads(err)["error"]["code"]) == (3, "school_destroyed")
    assert accounts.find_user(ctx, "sa") is None
    with ctx.engine.connect() as conn:
        user = conn.execute(sa.select(user_t).where(user_t.c.username == "school_a")).one()
    assert user.password_hash is None
    assert accounts.create_token(ctx, username="school_b").secret  # the school that keeps its data: as before
