"""What each ``breachflow`` command does: thin calls into the service, then printing."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import prometheus_client

from breachflow.api import register_export, render, signals, startup, timeline_text, views
from breachflow.api.arguments import parse_actions, parse_assignments, parse_schools
from breachflow.api.metrics import delivery_registry
from breachflow.notifications import bouncebox, dkim, outbox
from breachflow.notifications.mailer import destination, mailer_for
from breachflow.notifications.worker import notifications_context, run_worker
from breachflow.workflow import (
    accounts,
    actions,
    audit,
    backup,
    checkpoints,
    db,
    diagram,
    files,
    keystore,
    lifecycle,
    logs,
    pages,
    queries,
    register,
    retention,
    schema,
    schools,
    service,
    sessions,
    subjects,
)
from breachflow.workflow.config import DKIM_SELECTOR, Settings
from breachflow.workflow.context import Context, initialise
from breachflow.workflow.errors import FieldProblem, InvalidInput
from breachflow.workflow.incident import Incident


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str) if args.json else text)


def _print_page(args: argparse.Namespace, page: pages.Page, data: list[Any], lines: list[str], empty: str) -> None:
    """One page of a list: JSON ``{"items": [...], "next_cursor": ...}``, or lines of text and, when
    more follow, how to ask for them (on standard error, so the lines stay clean for a pipe)."""
    _warn_unreadable(page.unreadable)
    _print(args, {"items": data, "next_cursor": page.next_cursor}, "\n".join(lines) or empty)
    if page.next_cursor is not None and not args.json:
        print(f"more: add --cursor {page.next_cursor}", file=sys.stderr)


def _ctx(args: argparse.Namespace) -> Context:
    return Context.open(args.settings)


def cmd_init(args: argparse.Namespace) -> int:
    done = initialise(args.settings)
    _print(args, {"done": done}, "\n".join(done))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    return cmd_init(args)


_SCHEMA_ADVICE = {
    "current": "up to date",
    "behind": "run 'breachflow db upgrade'",
    "unversioned": "made before migrations: run 'breachflow db upgrade' to adopt it",
    "newer": "upgraded by a newer breachflow: run that one",
    "empty": "no breachflow database here: run 'breachflow init'",
    "orphaned": "a revision is recorded but breachflow's tables are gone: run 'breachflow init' to create them",
}


def cmd_db_status(args: argparse.Namespace) -> int:
    found = schema.status(db.engine_of(args.settings))
    data = {"database": found.where, "revision": found.database, "breachflow_revision": found.code,
            "state": found.state}
    _print(args, data, f"{found.where}: schema revision {found.database or 'none'}; this breachflow's: {found.code} "
                       f"({_SCHEMA_ADVICE[found.state]})")
    return 0 if found.state == "current" else 1


def _master_options(args: argparse.Namespace) -> dict[str, Any]:
    """The master data given on the command line (``--kvk``, ``--contact-name``, …)."""
    given = {"address": args.address, "kvk_number": args.kvk, "sector": args.sector,
             "dpo_registration": args.dpo_registration}
    person = {"name": args.contact_name, "phone": args.contact_phone, "email": args.contact_email}
    if any(person.values()):
        given["contact_person"] = {k: v for k, v in person.items() if v is not None}
    return {k: v for k, v in given.items() if v is not None}


def cmd_school_add(args: argparse.Namespace) -> int:
    school = schools.add(
        _ctx(args), brin=args.brin, name=args.name, contacts=args.contact,
        language=args.language, contract_ends_on=args.contract_ends, master=_master_options(args),
    )
    _print(args, school.__dict__, f"added {school.brin} {school.name}")
    return 0


def cmd_school_update(args: argparse.Namespace) -> int:
    changes = {"name": args.name, "contacts": args.contact, "language": args.language,
               "contract_ends_on": args.contract_ends}
    changes = {k: v for k, v in changes.items() if v is not None} | _master_options(args)
    changes |= dict.fromkeys(args.clear)
    school = schools.update(_ctx(args), brin=args.brin, changes=changes)
    _print(args, school.__dict__, f"updated {school.brin} {school.name}")
    return 0


def cmd_school_list(args: argparse.Namespace) -> int:
    page = schools.page(_ctx(args), limit=args.limit, cursor=args.cursor)
    _print_page(args, page, [s.__dict__ for s in page.items],
                [f"{s.brin:<7} {s.name} ({s.language}) {', '.join(s.contacts)}" for s in page.items], "no schools yet")
    return 0


def _show(args: argparse.Namespace, ctx: Context, incident: Incident) -> int:
    _print(args, render.incident_json(incident, ctx.periods), render.incident_text(incident, ctx.periods))
    if ctx.notifier is not None:  # a command ran: say if its mail is waiting for a worker
        waiting = outbox.count_waiting(ctx, incident.reference)
        if waiting:
            print(f"{waiting} message(s) wait in the outbox; 'breachflow serve' or 'breachflow worker' "
                  f"sends them to {destination(ctx.settings)}", file=sys.stderr)
    return 0


def _warn_unreadable(references: list[str]) -> None:
    if references:
        print(f"warning: {len(references)} damaged record(s) left out: {', '.join(references)}; "
              "run 'breachflow audit verify'", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = service.report(
        ctx, actor=args.actor, source=args.source, fields=parse_assignments(args.set),
        schools=parse_schools(args.school),
    )
    return _show(args, ctx, incident)


def cmd_show(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    return _show(args, ctx, queries.get(ctx, args.reference))


def cmd_list(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    page = queries.incident_page(ctx, state=args.state, brin=args.school, limit=args.limit, cursor=args.cursor)
    rows = page.items
    found = register.histories(ctx, [i.id for i in rows])
    now = datetime.now(UTC)
    entries = {i.id: views.register_entry(render.OPERATOR, i, found[i.id], now, ctx.periods) for i in rows}
    lines = [
        f"{i.reference}  {i.state:<15} {i.responsibility.value:<9} {render.when(i.disclosure.discovered_at)}  "
        f"{', '.join(s.brin for s in i.schools)}"
        + "".join(f"\n    {line}" for line in render.history_lines(entries[i.id]))
        for i in rows
    ]
    data = [render.incident_json(i, ctx.periods)
            | entries[i.id].model_dump(mode="json", include=set(render.HISTORY_FIELDS)) for i in rows]
    _print_page(args, page, data, lines, "no incidents")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = service.update(
        ctx, reference=args.reference, actor=args.actor, fields=parse_assignments(args.set),
        schools=parse_schools(args.school), remove_schools=args.remove_school, reason=args.reason,
        expected_version=args.expect_version,
    )
    return _show(args, ctx, incident)


def cmd_fire(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = service.fire(
        ctx, reference=args.reference, trigger=args.trigger, actor=args.actor,
        fields=parse_assignments(args.set), reason=args.reason, actions=parse_actions(args.action),
        expected_version=args.expect_version,
    )
    return _show(args, ctx, incident)


def cmd_action_add(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = actions.add(ctx, reference=args.reference, actor=args.actor, actions=[
        {"description": args.description, "owner": args.owner, "due": args.due, "blocking": args.blocking}],
        expected_version=args.expect_version)
    return _show(args, ctx, incident)


def cmd_action_settle(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = actions.settle(ctx, reference=args.reference, actor=args.actor, number=args.number,
                              status=args.status, note=args.note)
    return _show(args, ctx, incident)


def cmd_triggers(args: argparse.Namespace) -> int:
    incident = queries.get(_ctx(args), args.reference)
    available = lifecycle.available(incident)
    data = [t.model_dump(mode="json") for t in views.triggers_out(incident)]
    text = "\n".join(
        f"{t}: " + ("; ".join(str(m) for m in missing) if missing else f"ready → {lifecycle.destination(incident, t)}")
        for t, missing in available.items()
    )
    _print(args, data, text or f"no triggers in state {incident.state}")
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = service.add_note(ctx, reference=args.reference, actor=args.actor, text=args.text)
    _print(args, {"reference": incident.reference, "version": incident.version}, "note added")
    return 0


def cmd_contact(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = service.log_contact(
        ctx, reference=args.reference, actor=args.actor, brin=args.school, channel=args.channel,
        summary=args.summary, told_must_notify_ap=args.told_must_notify_ap, at=args.at,
    )
    return _show(args, ctx, incident)


def cmd_ap_notify(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = service.record_ap_notification(
        ctx, reference=args.reference, actor=args.actor, kind=args.kind, ap_reference=args.ap_reference,
        notified_at=args.at, schools=args.school or None, delay_reason=args.delay_reason,
    )
    return _show(args, ctx, incident)


def cmd_reopen(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    return _show(args, ctx, service.reopen(ctx, reference=args.reference, actor=args.actor, reason=args.reason))


def cmd_notify(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = service.send_update(ctx, reference=args.reference, actor=args.actor, message=args.message)
    _print(args, {"reference": incident.reference, "version": incident.version},
           "update notices queued; the worker sends them")
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    page = queries.timeline_page(_ctx(args), args.reference, limit=args.limit, cursor=args.cursor)
    _print_page(args, page, [render.entry_json(e) for e in page.items],
                [timeline_text.entry_text(e) for e in page.items], "no events")
    return 0


def cmd_deadlines(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    now = datetime.now(UTC)
    page = queries.open_deadline_page(ctx, limit=args.limit, cursor=args.cursor)
    shown = [views.open_deadline_out(o, now, ctx.periods) for o in page.items]
    _print_page(args, page, [d.model_dump(mode="json") for d in shown],
                [f"{d.reference}  {render.deadline_line(d)}" for d in shown], "no open deadlines")
    return 0


def cmd_register_export(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    form = args.format or ("json" if args.json else "csv")
    chunks = (register_export.stream_csv if form == "csv" else register_export.stream_json)(ctx, render.OPERATOR)
    if args.out is None:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return 0
    try:
        files.write_private(args.out, chunks, replace=True)  # the register holds personal data
    except OSError as exc:
        raise InvalidInput("invalid input", [FieldProblem("--out", f"cannot write {args.out}: {exc.strerror}")]) from None
    size = args.out.stat().st_size
    _print(args, {"out": str(args.out), "format": form, "bytes": size},
           f"wrote the register to {args.out} ({form}, {size} bytes, owner-only)")
    return 0


def _person(args: argparse.Namespace) -> subjects.Person:
    return subjects.Person.of(email=args.email, name=args.name, pupil_number=args.pupil_number)


def cmd_subject_export(args: argparse.Namespace) -> int:
    person = _person(args)
    found = subjects.export(_notifying(args), args.school, person, args.actor, staff=True).as_json()
    _warn_unreadable(found["unreadable"])
    data = json.dumps(found, indent=2, ensure_ascii=False, default=str).encode() + b"\n"
    if args.out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        files.write_private(args.out, data, replace=True)  # it holds the person's data
    except OSError as exc:
        raise InvalidInput("invalid input", [FieldProblem("--out", f"cannot write {args.out}: {exc.strerror}")]) from None
    print(f"wrote {len(found['items'])} item(s) about the person to {args.out} (owner-only)", file=sys.stderr)
    return 0


def cmd_subject_erase(args: argparse.Namespace) -> int:
    done = subjects.erase(_notifying(args), args.school, _person(args), args.actor, staff=True)
    _warn_unreadable(done.unreadable)
    lines = [f"erased: {e.reference or done.school} {e.where}" for e in done.erased] or ["erased: nothing"]
    lines += [f"kept: {k.reference or done.school} {k.where}: {k.why}" for k in done.kept]
    _print(args, done.as_json(), "\n".join(lines))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    report = audit.verify(ctx, checkpoints.load(args.checkpoint) if args.checkpoint else None)
    against = f", against the checkpoint {args.checkpoint}" if args.checkpoint else ""
    data = {"incidents_checked": report.incidents, "events_checked": report.events,
            "findings": [f.__dict__ for f in report.findings]}
    text = "\n".join(f"BROKEN {f}" for f in report.findings)
    _print(args, data, text or f"all timelines intact and matching the records ({report.incidents} incidents, "
                               f"{report.events} events checked{against})")
    return 0 if report.intact else 1


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    path = checkpoints.write(ctx, Path(args.out) if args.out else ctx.settings.resolved_checkpoint_dir)
    _print(args, {"checkpoint": str(path)},
           f"wrote {path}; keep a copy where the database's administrators cannot change it")
    return 0


def _part_words(part: retention.Part) -> str:
    also = [w for w, yes in (("its note on informing the people affected", part.note),
                             ("the incident's own data key", part.incident_key)) if yes]
    return f"    {part.reference}: the notices to it and what they said" + "".join(f", {w}" for w in also)


def cmd_retention_run(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if args.apply:
        due = retention.apply(notifications_context(_ctx(args)), now, args.actor)
    else:
        due = retention.plan(_ctx(args), now)
    lines = []
    for school in due:
        lines.append(f"{school.brin}: contract ended {school.contract_ends_on:%Y-%m-%d}, due "
                     f"{render.when(school.due_at)}")
        lines += [_part_words(part) for part in school.parts]
        if school.school_key:
            lines.append("    its own data key: contact addresses, contact person, every notice sealed with it")
        if school.accounts:
            lines.append(f"    {school.accounts} user account(s): email address and password; sessions ended, "
                         "tokens revoked")
    header = "destroyed:" if args.apply else "due (nothing changed; --apply destroys it):"
    _print(args, {"applied": args.apply, "schools": [dataclasses.asdict(s) for s in due]},
           "\n".join([header, *lines]) if due else "nothing is due for destruction")
    return 0


def cmd_retention_log(args: argparse.Namespace) -> int:
    page = retention.log_page(_ctx(args), limit=args.limit, cursor=args.cursor)
    _print_page(args, page, [dataclasses.asdict(e) for e in page.items], [
        f"{e.id:>6} {render.when(e.at)} {e.actor} {e.what:<12} {e.brin or '-':<7} {e.reference or '-':<14}"
        f" key {e.data_key_id or '-'}  {json.dumps(e.detail) if e.detail else ''}" for e in page.items],
        "the retention log is empty")
    return 0


def cmd_backup_create(args: argparse.Namespace) -> int:
    written = backup.create(args.settings, args.out)
    _print(args, {**written.__dict__, "path": str(written.path)},
           f"wrote {written.path} ({written.size} bytes, owner-only): schema revision {written.revision}, "
           f"{written.incidents} incidents, {written.events} timeline events.\n"
           "It holds no key: without master.key (or BREACHFLOW_MASTER_KEYS), audit.key and checkpoint.key, "
           "backed up apart from it, it cannot be read or verified.")
    return 0


def cmd_backup_restore(args: argparse.Namespace) -> int:
    restored = backup.restore(args.settings, args.file, force=args.force)
    report = restored.report
    data = {"database": str(restored.database), "revision": restored.revision,
            "kept": str(restored.kept) if restored.kept else None, "notes": restored.done,
            "incidents_checked": report.incidents, "events_checked": report.events,
            "findings": [f.__dict__ for f in report.findings]}
    kept = f"; the database it replaced is kept as {restored.kept}" if restored.kept else ""
    audited = "\n".join(f"BROKEN {f}" for f in report.findings) or (
        f"audit: all timelines intact and matching the records ({report.incidents} incidents, "
        f"{report.events} events checked)")
    notes = "".join(f"\n{line}" for line in restored.done)
    _print(args, data, f"restored {args.file} into {restored.database} at schema revision {restored.revision}"
                       f"{kept}{notes}\n{audited}")
    return 0 if report.intact else 1


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    ctx = _ctx(args)  # an unusable installation is refused before the key file changes
    if ctx.settings.master_keys is None:
        keystore.add_master_key(ctx.settings)  # the ring follows its file: it rewraps under the new key
    # with BREACHFLOW_MASTER_KEYS, the operator puts the new key in front before running this
    count = service.rotate_keys(ctx)
    _print(args, {"rewrapped": count}, f"rewrapped {count} data keys under the newest master key")
    return 0


def _new_password(args: argparse.Namespace) -> str | None:
    """The password asked for with ``--password`` (prompted twice) or ``--password-stdin``; else ``None``."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not args.password:
        return None
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInput("invalid password", [FieldProblem("password", "the two passwords differ")])
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    """Add a user; with a password option, also set (or, for an existing user, reset) the password."""
    ctx = _ctx(args)
    password = _new_password(args)
    if password is not None and (problems := sessions.password_problems(password)):
        raise InvalidInput("invalid password", problems)
    existing = accounts.find_user(ctx, args.username)
    if existing is not None and password is not None:
        if existing.role.value != args.role:
            raise InvalidInput("invalid user", [FieldProblem(
                "role", f"{existing.username} is a {existing.role.value}; a password reset does not change the role")])
        sessions.set_password(ctx, username=existing.username, password=password)
        _print(args, existing.__dict__, f"password of {existing.username} reset; their sessions ended")
        return 0
    account = accounts.add_user(ctx, username=args.username, role=args.role, school=args.school, email=args.email)
    if password is not None:
        sessions.set_password(ctx, username=account.username, password=password)
    school = f" for school {account.school_brin}" if account.school_brin else ""
    signs_in = " who signs in with a password" if password is not None else ""
    _print(args, account.__dict__, f"added {account.role.value} {account.username}{school}{signs_in}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    rows = accounts.list_users(_ctx(args))
    text = "\n".join(f"{a.username:<30} {a.role.value:<8} {a.school_brin or ''}" for a in rows)
    _print(args, [a.__dict__ for a in rows], text or "no users yet")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    expires = timedelta(days=args.expires_in_days) if args.expires_in_days else None
    token = accounts.create_token(_ctx(args), username=args.username, expires_in=expires, label=args.label)
    until = f", expires {render.when(token.expires_at)}" if token.expires_at else ""
    _print(args, token.__dict__,
           f"token {token.id} for {token.username}{until} (shown once, store it now):\n{token.secret}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    accounts.revoke_token(_ctx(args), token_id=args.token_id)
    _print(args, {"revoked": args.token_id}, f"token {args.token_id} revoked")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings: Settings = args.settings
    startup.check_workers(settings, args.workers)
    startup.check_listen(args.host, args.port)
    in_process_worker = settings.in_process_worker and not args.no_worker
    if in_process_worker:
        dkim.signer_for(settings)  # a bad DKIM key is refused before anything is written (the server reads it again)
    with signals.raising_stopped():
        ctx, done = startup.open_installation(settings, create=True)
        for line in done:
            print(line)
        if in_process_worker:
            print(f"mail goes to {destination(settings)}")
        else:
            print("no worker in this process: run 'breachflow worker' to send mail and reminders")
            os.environ["BREACHFLOW_IN_PROCESS_WORKER"] = "false"  # the server builds its app from the environment
        if (token := accounts.create_first_admin(ctx)) is not None:
            print("No users yet: created user 'admin' (role admin). Its token, shown once:")
            print(f"  {token.secret}")
            print("Add handlers and schools with 'breachflow user add' and 'breachflow token create'.")
        base = f"http://{args.host}:{args.port}"
        print(f"breachflow listens on {base}  (pages {base}/, API {base}/api/v1, docs {base}/docs)")
        print("Sign in to the pages with a password ('breachflow user add NAME --role ROLE --password'); "
              "call the API with the header 'Authorization: Bearer <token>'.", flush=True)
        signal_name = None
        try:
            uvicorn.run("breachflow.api.main:app_from_environment", factory=True, host=args.host, port=args.port,
                        workers=args.workers, log_config=logs.config(settings), access_log=False, server_header=False,
                        # uvicorn waits any number of seconds; its annotation says int
                        timeout_graceful_shutdown=settings.shutdown_grace_seconds,  # type: ignore[arg-type]
                        proxy_headers=False)  # X-Forwarded-For from anyone would pick the address the auth limit counts
        except SystemExit:  # uvicorn's start-up failure (it logged the reason), e.g. the port taken since the check
            raise startup.CannotStart(f"the server could not start on {args.host} port {args.port} (the line above "
                                      "says why)") from None
        except signals.Stopped as stopped:  # uvicorn shut down gracefully, then raised the signal again
            signal_name = stopped.name
    grace = f"{settings.shutdown_grace_seconds:g} s to finish"
    print(f"breachflow serve: stopped{f' on {signal_name}' if signal_name else ''}; " + (
        f"requests and sends in flight had {grace}, unsent mail is back in the outbox" if in_process_worker
        else f"requests in flight had {grace}"), flush=True)
    return 0


def _notifying(args: argparse.Namespace) -> Context:
    """The context with notices: commands that advance incidents queue mail."""
    return notifications_context(_ctx(args))


def cmd_outbox_list(args: argparse.Namespace) -> int:
    page = outbox.list_messages(_ctx(args), status=None if args.status == "all" else args.status,
                                limit=args.limit, cursor=args.cursor)
    _print_page(args, page, [r.__dict__ for r in page.items], [
        f"{r.id:>6} {r.reference} {r.school or '-':<7} {r.kind:<18} {r.status:<8} tries {r.attempts}"
        f"  {r.last_error or ''}" + (f"  bounced {r.bounced_at:%Y-%m-%d %H:%M} UTC" if r.bounced_at else "")
        for r in page.items], f"no {args.status} messages")
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    if not args.id and not args.all:
        raise InvalidInput("invalid input", [FieldProblem("id", "give message ids, or --all for every dead letter")])
    count = outbox.requeue(_ctx(args), ids=args.id or None, actor=args.actor, now=datetime.now(UTC))
    _print(args, {"requeued": count}, f"requeued {count} message(s); the worker sends them")
    return 0


def cmd_bounces_read(args: argparse.Namespace) -> int:
    if not bouncebox.configured(args.settings):
        raise InvalidInput("invalid input", [FieldProblem(
            "BREACHFLOW_BOUNCE_MAILDIR", "no bounce mailbox configured: set it or BREACHFLOW_BOUNCE_IMAP_HOST")])
    done = bouncebox.read(_ctx(args))
    lines = [f"{r.reference} {r.school or '-':<7} {r.kind:<18} {r.message_id}: {r.hard} hard, {r.soft} soft"
             + (", dead letter" if r.dead else "") + (", school no longer informed" if r.uninformed else "")
             for r in done.recorded]
    lines.append(f"{len(done.recorded)} bounce(s) recorded, {done.unchanged} read before, {done.ignored} left alone "
                 f"(no bounce of ours), {done.failed} failed")
    _print(args, dataclasses.asdict(done), "\n".join(lines))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    if args.metrics_port is not None:
        startup.check_listen(args.metrics_host, args.metrics_port, ("--metrics-host", "--metrics-port"))
    mailer = mailer_for(args.settings)  # reads the DKIM key: a bad one is refused before anything is written
    with signals.raising_stopped():  # a stop while starting up ends at once
        ctx, done = startup.open_installation(args.settings, create=True)
        for line in done:
            print(line)
        ctx = notifications_context(ctx)
        if args.metrics_port is not None:
            try:
                prometheus_client.start_http_server(args.metrics_port, addr=args.metrics_host,
                                                    registry=delivery_registry())
            except OSError as exc:
                raise startup.CannotStart(f"the worker's metrics cannot listen on {args.metrics_host} port "
                                          f"{args.metrics_port} ({exc.strerror}): choose another --metrics-port") \
                    from None
            print(f"delivery counters for Prometheus on http://{args.metrics_host}:{args.metrics_port}/metrics")
        print(f"breachflow worker: sending to {destination(ctx.settings)}; scanning deadlines every "
              f"{ctx.settings.reminder_scan_seconds:g} s. Ctrl-C stops.", flush=True)
        signal_name, released = signals.run_until_stopped(lambda stop: run_worker(ctx, mailer, stop))
    left = (f"{released} claimed message(s) not sent went back to the outbox for the next worker" if released
            else "every send in flight finished")
    print(f"breachflow worker: stopped on {signal_name}; {left}", flush=True)
    return 0


def cmd_dkim_keygen(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    if not re.fullmatch(DKIM_SELECTOR, args.selector) or len(args.selector) > 63:
        raise InvalidInput("invalid input", [FieldProblem("--selector", "letters, digits, '-', '_' and '.', "
                                                          "at most 63 characters, e.g. bf2026")])
    out = args.out or settings.data_dir / f"dkim-{args.selector}.pem"
    key, pem = dkim.generate(args.type)
    try:
        written = files.write_private(out, pem, replace=False)
    except OSError as exc:
        raise InvalidInput("invalid input", [FieldProblem("--out", f"cannot write {out}: {exc.strerror}")]) from None
    if not written:
        raise InvalidInput("invalid input", [FieldProblem("--out", f"{out} exists and is kept: choose another --out "
                                                          "(a new key goes with a new selector)")])
    signer = dkim.Signer(args.selector, dkim.domain_of(settings), key)
    _print(args, {"key_file": str(out), "selector": args.selector, "domain": signer.domain, "record": signer.record()},
           f"wrote a new {args.type} DKIM key to {out} (owner-only). Publish this DNS record:\n{signer.record()}\n"
           f"then set BREACHFLOW_DKIM_SELECTOR={args.selector} and BREACHFLOW_DKIM_KEY_FILE={out}")
    return 0


def cmd_dkim_record(args: argparse.Namespace) -> int:
    signer = dkim.signer_for(args.settings)
    if signer is None:
        raise InvalidInput("invalid input", [FieldProblem(
            "BREACHFLOW_DKIM_SELECTOR", "DKIM is not configured: set BREACHFLOW_DKIM_SELECTOR and "
            "BREACHFLOW_DKIM_KEY_FILE (make a key with 'breachflow dkim keygen')")])
    _print(args, {"selector": signer.selector, "domain": signer.domain, "record": signer.record()}, signer.record())
    return 0


def cmd_diagram(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if args.check:
        if diagram.is_current(directory):
            print(f"{directory / diagram.DIAGRAM_FILE} is up to date")
            return 0
        print(f"{directory / diagram.DIAGRAM_FILE} is stale; run 'breachflow diagram'", file=sys.stderr)
        return 1
    print(f"wrote {diagram.write(directory)}")
    return 0
