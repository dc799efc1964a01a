"""The ``breachflow`` command line. Thin: it parses, calls the service, prints.

Exit codes: 0 done; 1 the audit found a broken chain or the diagram is stale; 2 bad input or an
unknown incident or school (one line on stderr, nothing written); 3 the incident's state does not
allow it (guard, trigger, concurrent change); 4 not initialised or a key is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from api import render, views
from notifications import outbox
from notifications.mailer import destination, mailer_for
from notifications.worker import notifications_context, run_worker
from workflow import accounts, crypto, diagram, lifecycle, queries, schools, service
from workflow.config import Settings
from workflow.context import Context, initialise
from workflow.deadlines import AMSTERDAM
from workflow.disclosure import Disclosure
from workflow.errors import BreachflowError, Conflict, FieldProblem, InvalidInput, NotFound

LIST_FIELDS = {"nature_actions", "affected_systems", "data_kinds"}
JSON_FIELDS = {"affected_groups"}
TIME_FIELDS = {"discovered_at", "breach_started_at", "breach_ended_at"}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _time(text: str) -> datetime:
    """An ISO time; without a zone it is read as Europe/Amsterdam time."""
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=AMSTERDAM) if moment.tzinfo is None else moment


def _time_arg(text: str) -> datetime:
    try:
        return _time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a time like 2026-11-28T14:30") from None


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-12-31") from None


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``field=value`` pairs; ``field=@path`` reads the value from a file."""
    fields: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInput("invalid input", [FieldProblem("--set", f"'{item}' is not field=value")])
        if raw.startswith("@"):
            try:
                raw = Path(raw[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidInput("invalid input", [FieldProblem(name, f"cannot read {raw[1:]}: {exc.strerror}")]) from None
        fields[name] = _coerce(name, raw)
    return fields


def _coerce(name: str, raw: str) -> Any:
    text = raw.strip()
    if name in JSON_FIELDS or (name in LIST_FIELDS and text.startswith("[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput("invalid input", [FieldProblem(name, f"not valid JSON ({exc.msg})")]) from None
    if name in LIST_FIELDS:
        return [part.strip() for part in text.split(",") if part.strip()]
    if name in TIME_FIELDS and text:
        try:
            return _time(text)
        except ValueError:
            return text  # the model names the field and the problem
    return raw


def parse_schools(items: Sequence[str]) -> dict[str, int | None]:
    """``BRIN`` or ``BRIN:COUNT`` items."""
    result: dict[str, int | None] = {}
    for item in items:
        brin, _, count = item.partition(":")
        if count and not count.strip().isdigit():
            raise InvalidInput("invalid input", [FieldProblem("--school", f"'{item}': the count must be a whole number")])
        result[brin.strip().upper()] = int(count) if count.strip() else None
    return result


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str) if args.json else text)


def _ctx(args: argparse.Namespace) -> Context:
    return Context.open(args.settings)


# --- commands -------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    done = initialise(args.settings)
    _print(args, {"done": done}, "\n".join(done))
    return 0


def cmd_school_add(args: argparse.Namespace) -> int:
    school = schools.add(
        _ctx(args), brin=args.brin, name=args.name, contacts=args.contact,
        language=args.language, contract_ends_on=args.contract_ends,
    )
    _print(args, school.__dict__, f"added {school.brin} {school.name}")
    return 0


def cmd_school_list(args: argparse.Namespace) -> int:
    rows = schools.list_all(_ctx(args))
    text = "\n".join(f"{s.brin:<7} {s.name} ({s.language}) {', '.join(s.contacts)}" for s in rows)
    _print(args, [s.__dict__ for s in rows], text or "no schools yet")
    return 0


def _show(args: argparse.Namespace, ctx: Context, incident) -> int:
    _print(args, render.incident_json(incident, ctx.periods), render.incident_text(incident, ctx.periods))
    if ctx.notifier is not None:  # a command ran: say if its mail is waiting for a worker
        waiting = len(outbox.list_messages(ctx, status="pending", reference=incident.reference))
        if waiting:
            print(f"{waiting} message(s) wait in the outbox; 'breachflow serve' or 'breachflow worker' "
                  f"sends them to {destination(ctx.settings)}", file=sys.stderr)
    return 0


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
    rows = queries.list_incidents(ctx, state=args.state, brin=args.school)
    text = "\n".join(
        f"{i.reference}  {i.state:<15} {i.responsibility.value:<9} {render.when(i.disclosure.discovered_at)}  "
        f"{', '.join(s.brin for s in i.schools)}"
        for i in rows
    )
    _print(args, [render.incident_json(i, ctx.periods) for i in rows], text or "no incidents")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = service.update(
        ctx, reference=args.reference, actor=args.actor, fields=parse_assignments(args.set),
        schools=parse_schools(args.school), remove_schools=args.remove_school,
        expected_version=args.expect_version,
    )
    return _show(args, ctx, incident)


def cmd_fire(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    incident = service.fire(
        ctx, reference=args.reference, trigger=args.trigger, actor=args.actor,
        fields=parse_assignments(args.set), expected_version=args.expect_version,
    )
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
    entries = queries.timeline_of(_ctx(args), args.reference)
    _print(args, [render.entry_json(e) for e in entries], "\n".join(render.entry_text(e) for e in entries))
    return 0


def cmd_deadlines(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    now = datetime.now(UTC)
    pairs = queries.open_deadlines(ctx)
    data = [{"reference": i.reference, **render.deadline_json(d, now, ctx.periods, i)} for i, d in pairs]
    text = "\n".join(f"{i.reference}  {render.deadline_line(d, i, now, ctx.periods)}" for i, d in pairs)
    _print(args, data, text or "no open deadlines")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    checked, breaks = queries.verify_timelines(_ctx(args))
    data = {"events_checked": checked, "broken": [b.__dict__ for b in breaks]}
    text = "\n".join(f"BROKEN {b.reference} at event {b.seq}: {b.problem}" for b in breaks)
    _print(args, data, text or f"all timelines intact ({checked} events checked)")
    return 1 if breaks else 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    if settings.master_keys is None:
        crypto.add_key_to_file(settings.resolved_key_file)
    # with BREACHFLOW_MASTER_KEYS, the operator puts the new key in front before running this
    count = service.rotate_keys(_ctx(args))
    _print(args, {"rewrapped": count}, f"rewrapped {count} data keys under the newest master key")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    account = accounts.add_user(_ctx(args), username=args.username, role=args.role, school=args.school,
                                email=args.email)
    school = f" for school {account.school_brin}" if account.school_brin else ""
    _print(args, account.__dict__, f"added {account.role.value} {account.username}{school}")
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
    for line in initialise(settings):
        print(line)
    ctx = Context.open(settings)
    if args.no_worker or not settings.in_process_worker:
        print("no worker in this process: run 'breachflow worker' to send mail and reminders")
    else:
        print(f"mail goes to {destination(settings)}")
    if not accounts.has_users(ctx):
        accounts.add_user(ctx, username="admin", role="admin")
        token = accounts.create_token(ctx, username="admin", label="first start")
        print("No users yet: created user 'admin' (role admin). Its token, shown once:")
        print(f"  {token.secret}")
        print("Add handlers and schools with 'breachflow user add' and 'breachflow token create'.")
    base = f"http://{args.host}:{args.port}"
    print(f"breachflow listens on {base}  (API {base}/api/v1, docs {base}/docs)")
    print("Log in with the header 'Authorization: Bearer <token>'.", flush=True)
    os.environ["BREACHFLOW_IN_PROCESS_WORKER"] = "false" if args.no_worker else "true"
    uvicorn.run("api.main:app_from_environment", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning")
    return 0


def _notifying(args: argparse.Namespace) -> Context:
    """The context with notices: commands that advance incidents queue mail."""
    return notifications_context(_ctx(args))


def cmd_outbox_list(args: argparse.Namespace) -> int:
    rows = outbox.list_messages(_ctx(args), status=None if args.status == "all" else args.status)
    text = "\n".join(
        f"{r.id:>6} {r.reference} {r.school or '-':<7} {r.kind:<18} {r.status:<8} tries {r.attempts}"
        f"  {r.last_error or ''}" for r in rows
    )
    _print(args, [r.__dict__ for r in rows], text or f"no {args.status} messages")
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    if not args.id and not args.all:
        raise InvalidInput("invalid input", [FieldProblem("id", "give message ids, or --all for every dead letter")])
    count = outbox.requeue(_ctx(args), ids=args.id or None, actor=args.actor, now=datetime.now(UTC))
    _print(args, {"requeued": count}, f"requeued {count} message(s); the worker sends them")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    ctx = _notifying(args)
    mailer = mailer_for(ctx.settings)
    print(f"breachflow worker: sending to {destination(ctx.settings)}; scanning deadlines every "
          f"{ctx.settings.reminder_scan_seconds:g} s. Ctrl-C stops.", flush=True)
    try:
        asyncio.run(run_worker(ctx, mailer))
    except KeyboardInterrupt:
        pass
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


# --- parser ---------------------------------------------------------------------------------


def _incident_parser(sub, name: str, handler: Callable[[argparse.Namespace], int], help_: str, parent):
    parser = sub.add_parser(name, help=help_, description=help_, parents=[parent])
    parser.add_argument("reference", help="the incident's reference, e.g. DL-2026-00042")
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument(
        "--actor", default=os.environ.get("BREACHFLOW_ACTOR") or getpass.getuser(),
        help="who acts (default: $BREACHFLOW_ACTOR or your login name)",
    )
    fields_help = (
        "set a field: --set summary='…' (repeatable; lists as a,b or JSON; times without a zone are "
        "Amsterdam time; field=@file reads a file). Fields: " + ", ".join(Disclosure.model_fields)
    )
    version_help = "refuse if the incident is no longer at this version (optimistic concurrency)"

    parser = _Parser(prog="breachflow", description="Data-breach response workflow (seed section 6).",
                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("init", help="create the database and the key file", parents=[common]).set_defaults(handler=cmd_init)

    school = sub.add_parser("school", help="schools (the controllers)").add_subparsers(
        dest="school_command", required=True, parser_class=_Parser)
    add = school.add_parser("add", help="register a school", parents=[common])
    add.add_argument("--brin", required=True, help="BRIN code, e.g. 12AB")
    add.add_argument("--name", required=True)
    add.add_argument("--contact", action="append", default=[], required=True, help="email address (repeatable)")
    add.add_argument("--language", default="nl", choices=schools.LANGUAGES)
    add.add_argument("--contract-ends", type=_date_arg, help="contract end date (starts the retention clock)")
    add.set_defaults(handler=cmd_school_add)
    school.add_parser("list", help="list schools", parents=[common]).set_defaults(handler=cmd_school_list)

    inc = sub.add_parser("incident", help="incidents").add_subparsers(
        dest="incident_command", required=True, parser_class=_Parser)
    rep = inc.add_parser("report", help="register a report in the breach register", parents=[common])
    rep.add_argument("--source", required=True, help="school, third_party or monitoring")
    rep.add_argument("--school", action="append", default=[], help="affected school BRIN[:COUNT] (repeatable)")
    rep.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=fields_help)
    rep.set_defaults(handler=cmd_report)

    _incident_parser(inc, "show", cmd_show, "show an incident and what each trigger still needs", common)
    lst = inc.add_parser("list", help="list incidents, newest first", parents=[common])
    lst.add_argument("--state", help="only incidents in this state")
    lst.add_argument("--school", help="only incidents affecting this school (BRIN)")
    lst.set_defaults(handler=cmd_list)

    upd = _incident_parser(inc, "update", cmd_update, "change fields and affected schools", common)
    upd.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=fields_help)
    upd.add_argument("--school", action="append", default=[], help="add or recount a school BRIN[:COUNT]")
    upd.add_argument("--remove-school", action="append", default=[], help="BRIN of a school not affected after all")
    upd.add_argument("--expect-version", type=int, help=version_help)

    fire = _incident_parser(inc, "fire", cmd_fire, "fire a trigger (fields given are saved with it)", common)
    fire.add_argument("trigger", help="one of: " + ", ".join(lifecycle.TRIGGERS))
    fire.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=fields_help)
    fire.add_argument("--expect-version", type=int, help=version_help)

    _incident_parser(inc, "triggers", cmd_triggers, "triggers valid now and what each still misses", common)
    note = _incident_parser(inc, "note", cmd_note, "add a note to the timeline", common)
    note.add_argument("text")

    contact = _incident_parser(inc, "contact", cmd_contact, "log a phone or email contact with a school", common)
    contact.add_argument("--school", required=True, help="BRIN of the affected school")
    contact.add_argument("--channel", required=True, help="phone or email")
    contact.add_argument("--summary", required=True, help="what was said")
    contact.add_argument("--told-must-notify-ap", action="store_true",
                         help="the school was told it must notify the AP itself (user error or negligence)")
    contact.add_argument("--at", type=_time_arg, help="when (default: now)")

    ap = _incident_parser(inc, "ap-notify", cmd_ap_notify, "record a notification to the AP", common)
    ap.add_argument("--kind", required=True, help="preliminary, final, supplement or withdrawal")
    ap.add_argument("--ap-reference", required=True, help="the AP's reference number (meldnummer)")
    ap.add_argument("--at", type=_time_arg, help="when it was submitted (default: now)")
    ap.add_argument("--school", action="append", default=[], help="BRIN it covers (default: all affected)")
    ap.add_argument("--delay-reason", help="why it is later than the deadline (required then)")

    reopen = _incident_parser(inc, "reopen", cmd_reopen, "reopen a dismissed or closed incident", common)
    reopen.add_argument("--reason", required=True)
    _incident_parser(inc, "timeline", cmd_timeline, "the incident's timeline", common)
    notify = _incident_parser(inc, "notify", cmd_notify, "send an update notice to the affected schools", common)
    notify.add_argument("--message", help="your own words, above what changed")

    sub.add_parser("deadlines", help="open deadlines, soonest first", parents=[common]).set_defaults(
        handler=cmd_deadlines)
    audit = sub.add_parser("audit", help="audit commands").add_subparsers(
        dest="audit_command", required=True, parser_class=_Parser)
    audit.add_parser("verify", help="verify every timeline's hash chain", parents=[common]).set_defaults(
        handler=cmd_audit)
    keys = sub.add_parser("keys", help="master keys").add_subparsers(
        dest="keys_command", required=True, parser_class=_Parser)
    keys.add_parser("rotate", help="add a new master key and rewrap every data key", parents=[common]).set_defaults(
        handler=cmd_keys_rotate)

    user = sub.add_parser("user", help="API users").add_subparsers(
        dest="user_command", required=True, parser_class=_Parser)
    user_add = user.add_parser("add", help="create a user", parents=[common])
    user_add.add_argument("username")
    user_add.add_argument("--role", required=True, choices=[r.value for r in accounts.Role])
    user_add.add_argument("--school", help="BRIN code (school users only)")
    user_add.add_argument("--email", help="handlers and managers with an address get deadline reminders")
    user_add.set_defaults(handler=cmd_user_add)
    user.add_parser("list", help="list users", parents=[common]).set_defaults(handler=cmd_user_list)

    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True, parser_class=_Parser)
    create = token.add_parser("create", help="issue a token (printed once)", parents=[common])
    create.add_argument("username")
    create.add_argument("--expires-in-days", type=int, help="default: no expiry")
    create.add_argument("--label", help="what the token is for")
    create.set_defaults(handler=cmd_token_create)
    revoke = token.add_parser("revoke", help="revoke a token by id", parents=[common])
    revoke.add_argument("token_id", type=int)
    revoke.set_defaults(handler=cmd_token_revoke)

    serve = sub.add_parser("serve", help="run the HTTP API (creates ./var on first start)")
    serve.add_argument("--host", default=os.environ.get("BREACHFLOW_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("BREACHFLOW_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (PostgreSQL for more than 1)")
    serve.add_argument("--no-worker", action="store_true",
                       help="do not send mail or scan deadlines in this process (run 'breachflow worker')")
    serve.set_defaults(handler=cmd_serve)

    worker = sub.add_parser("worker", help="send queued mail and deadline reminders", parents=[common])
    worker.set_defaults(handler=cmd_worker)
    box = sub.add_parser("outbox", help="the outbox of mail").add_subparsers(
        dest="outbox_command", required=True, parser_class=_Parser)
    box_list = box.add_parser("list", help="messages by status (default: dead letters)", parents=[common])
    box_list.add_argument("--status", default="dead", choices=["pending", "sending", "sent", "dead", "all"])
    box_list.set_defaults(handler=cmd_outbox_list)
    retry = box.add_parser("retry", help="requeue dead letters", parents=[common])
    retry.add_argument("id", nargs="*", type=int, help="message ids (see 'outbox list')")
    retry.add_argument("--all", action="store_true", help="every dead letter")
    retry.set_defaults(handler=cmd_outbox_retry)

    dia = sub.add_parser("diagram", help="write the lifecycle diagram into diagrams/")
    dia.add_argument("--check", action="store_true", help="exit 1 if the committed diagram is stale")
    dia.add_argument("--dir", default="diagrams", help="directory (default: diagrams)")
    dia.set_defaults(handler=cmd_diagram)
    return parser


EXIT_CODES: list[tuple[type[BreachflowError], int]] = [(InvalidInput, 2), (NotFound, 2), (Conflict, 3)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"BREACHFLOW_{'_'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        print(f"breachflow: error: configuration: {problems}", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except BreachflowError as exc:
        print(f"breachflow: error: {exc}", file=sys.stderr)
        return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 4)


if __name__ == "__main__":
    sys.exit(main())
