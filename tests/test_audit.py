"""The audit against a forger with write access to the database (but not to the keys): every
tampering below is found, each by the check named in its test."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import CONFIRM, EVALUATE, add_school, evaluating, hours_ago, reported
from notify_support import with_notices

from breachflow.workflow import accounts, actions, audit, checkpoints, queries, service, timeline
from breachflow.workflow.errors import DataDamaged, InvalidInput
from breachflow.workflow.models import action_t, affected_t, ap_t, deadline_t, event_t, incident_t

pytestmark = pytest.mark.tampers  # the databases of these tests are left broken on purpose


@pytest.fixture
def walked(ctx, confirmed_incident) -> str:
    ref = confirmed_incident
    service.log_contact(ctx, reference=ref, actor="hanna", brin="12AB", channel="phone", summary="Director told")
    service.record_ap_notification(ctx, reference=ref, actor="hanna", kind="preliminary", ap_reference="AP-1")
    service.add_note(ctx, reference=ref, actor="hanna", text="School called back")
    assert audit.verify(ctx).intact
    return ref


def _incident_id(conn, ref: str) -> int:
    return conn.execute(sa.select(incident_t.c.id).where(incident_t.c.reference == ref)).scalar_one()


def _rechain(conn, incident_id: int, hasher) -> None:
    """Recompute every link and hash of an incident's chain, and its head, with ``hasher``."""
    prev, count = None, 0
    for ev in conn.execute(sa.select(event_t).where(event_t.c.incident_id == incident_id)
                           .order_by(event_t.c.seq)).all():
        prev = prev or ev.prev_hash
        canonical = json.dumps([prev, ev.incident_id, ev.seq, ev.at.isoformat(), ev.actor, ev.kind, ev.from_state,
                                ev.to_state, ev.payload.hex() if ev.payload is not None else None],
                               separators=(",", ":")).encode()
        digest = hasher(canonical)
        conn.execute(sa.update(event_t).where(event_t.c.id == ev.id).values(prev_hash=prev, hash=digest))
        prev, count = digest, ev.seq
    conn.execute(sa.update(incident_t).where(incident_t.c.id == incident_id).values(head_hash=prev, event_count=count))


def forge(ctx, ref: str, hasher, **changes_of_event_2) -> None:
    """Change event 2 and recompute every hash after it, and the incident's head, with ``hasher``:
    what someone with database access and the source code, but not the audit key, can do."""
    with ctx.engine.begin() as conn:
        incident_id = _incident_id(conn, ref)
        conn.execute(sa.update(event_t).where(event_t.c.incident_id == incident_id, event_t.c.seq == 2)
                     .values(**changes_of_event_2))
        _rechain(conn, incident_id, hasher)


HASHERS = pytest.mark.parametrize("hasher", [
    lambda data: hashlib.sha256(data).hexdigest(),  # the chain as it was: plain SHA-256
    lambda data: __import__("hmac").new(os.urandom(32), data, hashlib.sha256).hexdigest(),  # a guessed key
], ids=["sha256", "guessed-key"])


@HASHERS
def test_an_altered_event_with_the_chain_recomputed_is_found(ctx, walked, hasher):
    forge(ctx, walked, hasher, actor="someone-else")
    findings = audit.verify(ctx).findings
    assert [(f.reference, f.seq) for f in findings] == [(walked, 1)]  # the first link no longer verifies
    assert "altered or forged" in findings[0].problem


@HASHERS
def test_an_altered_payload_with_the_chain_recomputed_is_found(ctx, walked, hasher):
    """The forger puts the note's sealed payload (event 6) in event 2, then rechains without the key."""
    with ctx.engine.begin() as conn:
        note = conn.execute(sa.select(event_t.c.payload).where(
            event_t.c.incident_id == _incident_id(conn, walked), event_t.c.seq == 6)).scalar_one()
    forge(ctx, walked, hasher, payload=note)
    assert [(f.reference, f.seq, "altered or forged" in f.problem) for f in audit.verify(ctx).findings][:1] == [
        (walked, 1, True)]


@HASHERS
def test_a_dropped_event_with_the_rest_renumbered_and_relinked_is_found(ctx, walked, hasher):
    with ctx.engine.begin() as conn:
        incident_id = _incident_id(conn, walked)
        conn.execute(sa.delete(event_t).where(event_t.c.incident_id == incident_id, event_t.c.seq == 5))
        conn.execute(sa.update(event_t).where(event_t.c.incident_id == incident_id, event_t.c.seq == 6)
                     .values(seq=5))
        _rechain(conn, incident_id, hasher)
    findings = audit.verify(ctx).findings
    assert [(f.reference, f.seq, "altered or forged" in f.problem) for f in findings] == [(walked, 1, True)]


@pytest.mark.parametrize("relinked", [False, True], ids=["link-left", "link-rewritten"])
def test_an_event_spliced_in_from_an_earlier_history_is_found(ctx, walked, relinked):
    """Every event below carries a genuine hash under the audit key: the forger cuts the last two notes,
    lets breachflow record two others, then puts the first old note back in place of the first new one.
    Only the hash covering the previous event's hash (link rewritten) and the verifier comparing each
    link (link left) tell the two histories apart."""
    service.add_note(ctx, reference=walked, actor="hanna", text="Director told at 09:00")
    service.add_note(ctx, reference=walked, actor="hanna", text="Director confirmed by mail")
    with ctx.engine.begin() as conn:
        incident_id = _incident_id(conn, walked)
        this = (event_t.c.incident_id == incident_id)
        old = {ev.seq: ev for ev in conn.execute(sa.select(event_t).where(this)).all()}
        conn.execute(sa.delete(event_t).where(this, event_t.c.seq > 6))
        conn.execute(sa.update(incident_t).where(incident_t.c.id == incident_id)
                     .values(event_count=6, head_hash=old[6].hash))
    service.add_note(ctx, reference=walked, actor="hanna", text="Director told at 11:00")
    service.add_note(ctx, reference=walked, actor="hanna", text="Director confirmed by phone")
    assert audit.verify(ctx).intact  # the cut alone shows only against a checkpoint
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(event_t).where(this, event_t.c.seq == 7).values(
            at=old[7].at, actor=old[7].actor, payload=old[7].payload, prev_hash=old[7].prev_hash, hash=old[7].hash))
        if relinked:
            conn.execute(sa.update(event_t).where(this, event_t.c.seq == 8).values(prev_hash=old[7].hash))
    findings = audit.verify(ctx).findings
    assert [(f.reference, f.seq) for f in findings] == [(walked, 8)]
    assert ("altered or forged" if relinked else "previous event's hash") in findings[0].problem


def test_a_cut_tail_with_the_head_fixed_is_found_by_the_checkpoint(ctx, walked, tmp_path):
    point = checkpoints.write(ctx, tmp_path / "checkpoints")
    with ctx.engine.begin() as conn:
        incident_id = _incident_id(conn, walked)
        last = conn.execute(sa.select(event_t).where(event_t.c.incident_id == incident_id, event_t.c.seq == 5)).one()
        conn.execute(sa.delete(event_t).where(event_t.c.incident_id == incident_id, event_t.c.seq == 6))
        conn.execute(sa.update(incident_t).where(incident_t.c.id == incident_id)
                     .values(event_count=5, head_hash=last.hash))
    assert audit.verify(ctx).intact  # a consistent shorter chain: only an outside anchor shows the cut
    findings = audit.verify(ctx, checkpoints.load(point)).findings
    assert [(f.reference, f.seq) for f in findings] == [(walked, 6)]
    assert "changed or removed since the checkpoint" in findings[0].problem


def test_a_cut_tail_without_fixing_the_head_is_found(ctx, walked):
    with ctx.engine.begin() as conn:
        conn.execute(sa.delete(event_t).where(event_t.c.seq == 6))
    findings = audit.verify(ctx).findings
    assert [(f.seq, "chain ends at 5" in f.problem) for f in findings] == [(6, True)]


def test_a_deleted_incident_is_found_by_its_missing_reference_and_by_the_checkpoint(ctx, walked, tmp_path):
    point = checkpoints.write(ctx, tmp_path / "point.json")
    other = reported(ctx)
    with ctx.engine.begin() as conn:
        incident_id = _incident_id(conn, walked)
        for table in (event_t, affected_t, ap_t, deadline_t):
            conn.execute(sa.delete(table).where(table.c.incident_id == incident_id))
        conn.execute(sa.delete(incident_t).where(incident_t.c.id == incident_id))
    assert [(f.reference, "missing from the register" in f.problem) for f in audit.verify(ctx).findings] == [
        (walked, True)]
    with ctx.engine.begin() as conn:  # the forger also renumbers the counter and the later incident
        conn.execute(sa.update(incident_t).where(incident_t.c.reference == other).values(reference=walked))
        conn.execute(sa.text("UPDATE reference_counter SET last = 1"))
    findings = audit.verify(ctx, checkpoints.load(point)).findings
    assert any(f.reference == walked and "changed or removed" in f.problem for f in findings)


@pytest.mark.parametrize("column,value", [
    ("state", "closed"),
    ("discovered_at", datetime(2026, 1, 1, tzinfo=UTC)),
    ("cause_category", "user_error_admin"),
], ids=["state", "discovered_at", "cause_category"])
def test_a_record_edited_in_place_is_found_by_the_replay(ctx, walked, column, value):
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(incident_t).where(incident_t.c.reference == walked).values(**{column: value}))
    findings = audit.verify(ctx).findings
    assert {f.reference for f in findings} == {walked}
    assert findings[0].problem.startswith(column)  # then the stored deadlines it no longer gives, if any


def test_informed_at_and_the_ap_notification_time_edited_in_place_are_found(ctx, walked):
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(affected_t).values(informed_at=hours_ago(30)))
        conn.execute(sa.update(ap_t).values(notified_at=hours_ago(1) - timedelta(days=1)))
    problems = [f.problem for f in audit.verify(ctx).findings]
    assert any(p.startswith("12AB informed_at") for p in problems)
    assert "the AP notifications differ from the ones on its timeline" in problems


def test_a_school_informed_by_its_notice_replays(ctx):
    """The dispatcher's outcome names the school, so the replay knows when it was informed."""
    from notify_support import drain, smtp_context
    from smtp_server import SmtpServer

    server = SmtpServer()
    server.start()
    try:
        add_school(ctx)
        mail = smtp_context(with_notices(ctx), server.port)
        ref = reported(mail)
        service.fire(mail, reference=ref, trigger="begin_triage", actor="hanna")
        service.fire(mail, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
        assert drain(mail)["sent"] == 1
        assert audit.verify(ctx).intact
        with ctx.engine.begin() as conn:
            conn.execute(sa.update(affected_t).values(informed_at=None))
        first, *rest = [f.problem for f in audit.verify(ctx).findings]
        assert first.split(" is ")[0] == "12AB informed_at"
        assert rest and all("deadline" in problem for problem in rest)  # the clocks it drove no longer match
    finally:
        server.stop()


def _damage_event_3(ctx, ref: str, damage: str) -> None:
    with ctx.engine.begin() as conn:
        incident_id = _incident_id(conn, ref)
        event_3 = {"incident_id": incident_id}
        if damage == "unreadable-time" and conn.dialect.name == "sqlite":
            conn.execute(sa.text("UPDATE timeline_event SET at = 'yesterday' "
                                 "WHERE incident_id = :incident_id AND seq = 3"), event_3)
        elif damage == "unreadable-time":  # PostgreSQL keeps types: the nearest damage is a missing time
            conn.execute(sa.text("ALTER TABLE timeline_event ALTER COLUMN at DROP NOT NULL"))
            conn.execute(sa.text("UPDATE timeline_event SET at = NULL WHERE incident_id = :incident_id AND seq = 3"),
                         event_3)
        elif damage == "wrong-seq":
            conn.execute(sa.text("UPDATE timeline_event SET seq = 99 WHERE incident_id = :incident_id AND seq = 3"),
                         event_3)
        else:
            conn.execute(sa.update(event_t).where(event_t.c.incident_id == incident_id, event_t.c.seq == 3)
                         .values(payload=b"\x00garbage"))


@pytest.mark.parametrize("damage", ["unreadable-time", "wrong-seq", "garbage-payload"])
def test_the_verifier_never_crashes_on_a_malformed_row_and_names_the_first_broken_link(ctx, walked, damage):
    try:
        _damage_event_3(ctx, walked, damage)
        findings = audit.verify(ctx).findings
        assert [(f.reference, f.seq) for f in findings][:1] == [(walked, 3)]
    finally:
        if damage == "unreadable-time" and ctx.engine.dialect.name == "postgresql":
            with ctx.engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM timeline_event WHERE at IS NULL"))
                conn.execute(sa.text("ALTER TABLE timeline_event ALTER COLUMN at SET NOT NULL"))


def test_a_checkpoint_is_signed_and_an_altered_one_is_refused(ctx, walked, tmp_path):
    point = checkpoints.write(ctx, tmp_path / "point.json")
    assert audit.verify(ctx, checkpoints.load(point)).intact
    document = json.loads(point.read_text())
    document["incidents"] = []  # hide the incident from the checkpoint...
    document["root"] = checkpoints._root([])  # ...and fix the root, as a forger would
    point.write_text(json.dumps(document))
    findings = audit.verify(ctx, checkpoints.load(point)).findings
    assert len(findings) == 1 and "signature does not verify" in findings[0].problem
    point.write_text("not json")
    with pytest.raises(InvalidInput):
        checkpoints.load(point)


def test_the_command_line_writes_a_checkpoint_and_verifies_against_it(ctx, settings, walked, tmp_path, monkeypatch,
                                                                     capsys):
    from notify_support import settings_env

    from breachflow.api.cli import main

    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    assert main(["audit", "checkpoint", "--out", str(tmp_path / "kept")]) == 0
    written = next((tmp_path / "kept").glob("checkpoint-*.json"))
    assert main(["audit", "verify", "--checkpoint", str(written)]) == 0
    assert "against the checkpoint" in capsys.readouterr().out
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(incident_t).values(state="closed"))
    assert main(["audit", "verify", "--json"]) == 1
    found = json.loads(capsys.readouterr().out)["findings"]
    assert {f["reference"] for f in found} == {walked}


def test_the_worker_writes_a_checkpoint_when_the_last_is_older_than_the_interval(ctx, walked, tmp_path):
    import asyncio

    from breachflow.notifications.worker import checkpoint_forever

    directory = tmp_path / "checkpoints"
    settings = ctx.settings.model_copy(update={"checkpoint_dir": directory, "checkpoint_interval_hours": 24})
    worker_ctx = type(ctx)(**{**ctx.__dict__, "settings": settings})

    async def one_look() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(checkpoint_forever(worker_ctx, stop))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if list(directory.glob("checkpoint-*.json")):
                break
        stop.set()
        await task

    asyncio.run(one_look())
    asyncio.run(one_look())  # the one just written is recent: no second file
    written = list(directory.glob("checkpoint-*.json"))
    assert len(written) == 1
    assert audit.verify(ctx, checkpoints.load(written[0])).intact


def test_workers_writing_one_checkpoint_at_once_each_leave_it_whole(ctx, walked, tmp_path):
    """Workers on several machines may share a checkpoint directory and write in the same second."""
    import threading

    directory, now, writers = tmp_path / "checkpoints", datetime.now(UTC), 4
    for _ in range(10):
        released, failures = threading.Barrier(writers), []

        def write(released: threading.Barrier, failures: list[OSError]) -> None:
            released.wait(timeout=10)
            try:
                checkpoints.write(ctx, directory, now)
            except OSError as exc:
                failures.append(exc)

        threads = [threading.Thread(target=write, args=(released, failures)) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
    (written,) = directory.iterdir()  # one file for the one second, nothing left half-written beside it
    assert audit.verify(ctx, checkpoints.load(written)).intact


def test_a_follow_up_action_settled_deleted_or_planted_past_breachflow_is_found(ctx):
    """Closing waits for blocking actions: a forger who marks one done, deletes it or plants one in the
    table (bypassing the command and its timeline) is named by the replay."""
    add_school(ctx)
    accounts.add_user(ctx, username="hanna", role="handler")
    ref = evaluating(ctx)
    due = (datetime.now(UTC) + timedelta(days=9)).isoformat()
    lessons = [{"description": "Extend the release checklist", "owner": "hanna", "due": due, "blocking": True},
               {"description": "Review every class page", "owner": "hanna", "due": due}]
    service.fire(ctx, reference=ref, trigger="evaluated", actor="hanna", fields=EVALUATE, actions=lessons)
    actions.settle(ctx, reference=ref, actor="hanna", number=2, status="dropped")
    assert audit.verify(ctx).intact
    with ctx.engine.begin() as conn:
        incident_id = _incident_id(conn, ref)
        conn.execute(sa.update(action_t).where(action_t.c.number == 1).values(status="done"))
    problems = [f.problem for f in audit.verify(ctx).findings]
    assert "follow-up action 1 status is 'done', its events say 'open'" in problems
    with ctx.engine.begin() as conn:
        planted = conn.execute(sa.select(action_t).where(action_t.c.number == 2)).one()._asdict()
        conn.execute(sa.delete(deadline_t).where(deadline_t.c.action_id.is_not(None)))
        conn.execute(sa.delete(action_t).where(action_t.c.incident_id == incident_id))
        del planted["id"]
        conn.execute(sa.insert(action_t).values(planted | {"number": 3}))
    problems = [f.problem for f in audit.verify(ctx).findings]
    assert "follow-up actions are [3], its events say [1, 2]" in problems


def test_a_follow_up_action_planted_with_a_status_breachflow_never_writes_is_named_not_a_crash(ctx):
    """A forged status must neither crash the audit nor the reads: the incident reads as damaged (a
    typed error), the audit names the row, and every other incident keeps working."""
    add_school(ctx)
    accounts.add_user(ctx, username="hanna", role="handler")
    ref, other = evaluating(ctx), evaluating(ctx)
    due = (datetime.now(UTC) + timedelta(days=9)).isoformat()
    service.fire(ctx, reference=ref, trigger="evaluated", actor="hanna", fields=EVALUATE,
                 actions=[{"description": "Review every class page", "owner": "hanna", "due": due}])
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(action_t).values(status="bogus"))
    report = audit.verify(ctx)
    assert not report.intact
    assert any("follow-up action 1 status is 'bogus'" in f.problem for f in report.findings)
    with pytest.raises(DataDamaged):
        queries.get(ctx, ref)
    assert queries.get(ctx, other).reference == other


# --- the link's exact form: chains written by an earlier breachflow keep verifying ----------------

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
PREVIOUS = "0" * 64


@pytest.mark.parametrize(("event", "canonical"), [
    (("hanna", "transition", "triage", "containment", b"\x01sealed"),
     f'["{PREVIOUS}",7,3,"2026-11-29T12:00:00+00:00","hanna","transition","triage","containment","017365616c6564"]'),
    (("system", "reported", None, None, None),
     f'["{PREVIOUS}",7,3,"2026-11-29T12:00:00+00:00","system","reported",null,null,null]'),
], ids=["sealed-payload", "no-payload"])
def test_an_events_link_is_the_hmac_of_its_compact_canonical_form(event, canonical):
    """Any other spacing or encoding would be a different hash for every stored event: every chain
    written before would stop verifying."""
    key = b"k" * 32
    expected = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
    assert timeline.event_hash(key, PREVIOUS, 7, 3, AT, *event) == expected
