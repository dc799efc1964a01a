"""The ``breachflow`` command line. Thin: it parses, calls the service, prints.

Exit codes: 0 done (and 'serve' or 'worker' stopped by SIGTERM or SIGINT, having finished or
handed back what was in flight); 1 the audit found a broken chain or the diagram is stale; 2 bad
input, an unknown incident or school, or a setting production refuses (one line each on stderr,
nothing written); 3 the incident's state does not allow it (guard, trigger, concurrent change);
4 not initialised, or a key is missing, malformed, open to group or others or does not open the
data (the message names the file or variable and what to do; a missing key is never replaced
beside an existing database); 5 'serve' or 'worker' cannot start here: the port is in use, the
host is not this machine's, a file cannot be written or the database cannot be reached (one line
saying what to change).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from breachflow.api import commands as c
from breachflow.api.arguments import count_arg, date_arg, port_arg, time_arg
from breachflow.api.signals import Stopped
from breachflow.api.startup import CannotStart
from breachflow.notifications.models import OutboxStatus
from breachflow.workflow import accounts, lifecycle, schools
from breachflow.workflow.config import Settings
from breachflow.workflow.disclosure import Disclosure
from breachflow.workflow.errors import BreachflowError, Conflict, InvalidInput, NotFound


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


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
    reason_help = "why: required to correct the discovery time or a known cause once confirmed (it moves the clocks)"

    parser = _Parser(prog="breachflow", description="Data-breach response workflow (seed section 6).",
                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"breachflow {version('breachflow')}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("init", help="create the database and key files (keys only where there is no database)",
                   parents=[common]).set_defaults(handler=c.cmd_init)

    school = sub.add_parser("school", help="schools (the controllers)").add_subparsers(
        dest="school_command", required=True, parser_class=_Parser)
    add = school.add_parser("add", help="register a school", parents=[common])
    add.add_argument("--brin", required=True, help="BRIN code, e.g. 12AB")
    add.add_argument("--name", required=True)
    add.add_argument("--contact", action="append", default=[], required=True, help="email address (repeatable)")
    add.add_argument("--language", default="nl", choices=schools.LANGUAGES)
    add.add_argument("--contract-ends", type=date_arg, help="contract end date (starts the retention clock)")
    add.set_defaults(handler=c.cmd_school_add)
    school.add_parser("list", help="list schools", parents=[common]).set_defaults(handler=c.cmd_school_list)

    inc = sub.add_parser("incident", help="incidents").add_subparsers(
        dest="incident_command", required=True, parser_class=_Parser)
    rep = inc.add_parser("report", help="register a report in the breach register", parents=[common])
    rep.add_argument("--source", required=True, help="school, third_party or monitoring")
    rep.add_argument("--school", action="append", default=[], help="affected school BRIN[:COUNT] (repeatable)")
    rep.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=fields_help)
    rep.set_defaults(handler=c.cmd_report)

    _incident_parser(inc, "show", c.cmd_show, "show an incident and what each trigger still needs", common)
    lst = inc.add_parser("list", help="list incidents, newest first", parents=[common])
    lst.add_argument("--state", help="only incidents in this state")
    lst.add_argument("--school", help="only incidents affecting this school (BRIN)")
    lst.set_defaults(handler=c.cmd_list)

    upd = _incident_parser(inc, "update", c.cmd_update, "change fields and affected schools", common)
    upd.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=fields_help)
    upd.add_argument("--school", action="append", default=[], help="add or recount a school BRIN[:COUNT]")
    upd.add_argument("--remove-school", action="append", default=[], help="BRIN of a school not affected after all")
    upd.add_argument("--expect-version", type=int, help=version_help)
    upd.add_argument("--reason", help=reason_help)

    fire = _incident_parser(inc, "fire", c.cmd_fire, "fire a trigger (fields given are saved with it)", common)
    fire.add_argument("trigger", help="one of: " + ", ".join(lifecycle.Trigger))
    fire.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=fields_help)
    fire.add_argument("--expect-version", type=int, help=version_help)
    fire.add_argument("--reason", help=reason_help)

    _incident_parser(inc, "triggers", c.cmd_triggers, "triggers valid now and what each still misses", common)
    note = _incident_parser(inc, "note", c.cmd_note, "add a note to the timeline", common)
    note.add_argument("text")

    contact = _incident_parser(inc, "contact", c.cmd_contact, "log a phone or email contact with a school", common)
    contact.add_argument("--school", required=True, help="BRIN of the affected school")
    contact.add_argument("--channel", required=True, help="phone or email")
    contact.add_argument("--summary", required=True, help="what was said")
    contact.add_argument("--told-must-notify-ap", action="store_true",
                         help="the school was told it must notify the AP itself (user error or negligence)")
    contact.add_argument("--at", type=time_arg, help="when (default: now)")

    ap = _incident_parser(inc, "ap-notify", c.cmd_ap_notify, "record a notification to the AP", common)
    ap.add_argument("--kind", required=True, help="preliminary, final, supplement or withdrawal")
    ap.add_argument("--ap-reference", required=True, help="the AP's reference number (meldnummer)")
    ap.add_argument("--at", type=time_arg, help="when it was submitted (default: now)")
    ap.add_argument("--school", action="append", default=[], help="BRIN it covers (default: all affected)")
    ap.add_argument("--delay-reason", help="why it is later than the deadline (required then)")

    reopen = _incident_parser(inc, "reopen", c.cmd_reopen, "reopen a dismissed or closed incident", common)
    reopen.add_argument("--reason", required=True)
    _incident_parser(inc, "timeline", c.cmd_timeline, "the incident's timeline", common)
    notify = _incident_parser(inc, "notify", c.cmd_notify, "send an update notice to the affected schools", common)
    notify.add_argument("--message", help="your own words, above what changed")

    sub.add_parser("deadlines", help="open deadlines, soonest first", parents=[common]).set_defaults(
        handler=c.cmd_deadlines)
    audit = sub.add_parser("audit", help="audit commands").add_subparsers(
        dest="audit_command", required=True, parser_class=_Parser)
    verify = audit.add_parser(
        "verify", parents=[common], help="verify every chain and replay it against the stored records",
        description="Verify every incident's keyed hash chain, replay its events against the stored rows "
                    "(state, discovery time, cause, schools informed, AP notifications) and check that no "
                    "reference is missing. Exit 1 names every finding.")
    verify.add_argument("--checkpoint", type=Path, help="a checkpoint file: also prove nothing before it changed")
    verify.set_defaults(handler=c.cmd_audit)
    point = audit.add_parser("checkpoint", parents=[common], help="write a signed checkpoint of every chain head")
    point.add_argument("--out", help="file or directory (default: BREACHFLOW_CHECKPOINT_DIR or data_dir/checkpoints)")
    point.set_defaults(handler=c.cmd_audit_checkpoint)
    keys = sub.add_parser("keys", help="master keys").add_subparsers(
        dest="keys_command", required=True, parser_class=_Parser)
    keys.add_parser("rotate", help="add a new master key and rewrap every data key", parents=[common]).set_defaults(
        handler=c.cmd_keys_rotate)

    user = sub.add_parser("user", help="API users").add_subparsers(
        dest="user_command", required=True, parser_class=_Parser)
    user_add = user.add_parser("add", help="create a user", parents=[common])
    user_add.add_argument("username")
    user_add.add_argument("--role", required=True, choices=[r.value for r in accounts.Role])
    user_add.add_argument("--school", help="BRIN code (school users only)")
    user_add.add_argument("--email", help="handlers and managers with an address get deadline reminders")
    user_add.set_defaults(handler=c.cmd_user_add)
    user.add_parser("list", help="list users", parents=[common]).set_defaults(handler=c.cmd_user_list)

    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True, parser_class=_Parser)
    create = token.add_parser("create", help="issue a token (printed once)", parents=[common])
    create.add_argument("username")
    create.add_argument("--expires-in-days", type=int, help="default: no expiry")
    create.add_argument("--label", help="what the token is for")
    create.set_defaults(handler=c.cmd_token_create)
    revoke = token.add_parser("revoke", help="revoke a token by id", parents=[common])
    revoke.add_argument("token_id", type=int)
    revoke.set_defaults(handler=c.cmd_token_revoke)

    serve = sub.add_parser("serve", help="run the HTTP API (creates ./var on first start)")
    serve.add_argument("--host", default=os.environ.get("BREACHFLOW_HOST", "127.0.0.1"),
                       help="address to listen on (default: $BREACHFLOW_HOST or 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=port_arg, default=os.environ.get("BREACHFLOW_PORT", "8000"),
                       help="port to listen on (default: $BREACHFLOW_PORT or 8000)")
    serve.add_argument("--workers", type=count_arg, default=1,
                       help="server processes (more than 1 needs PostgreSQL)")
    serve.add_argument("--no-worker", action="store_true",
                       help="do not send mail or scan deadlines in this process (run 'breachflow worker')")
    serve.set_defaults(handler=c.cmd_serve)

    worker = sub.add_parser("worker", help="send queued mail and deadline reminders", parents=[common])
    worker.set_defaults(handler=c.cmd_worker)
    box = sub.add_parser("outbox", help="the outbox of mail").add_subparsers(
        dest="outbox_command", required=True, parser_class=_Parser)
    box_list = box.add_parser("list", help="messages by status (default: dead letters)", parents=[common])
    box_list.add_argument("--status", default=OutboxStatus.dead.value, choices=[*OutboxStatus, "all"])
    box_list.set_defaults(handler=c.cmd_outbox_list)
    retry = box.add_parser("retry", help="requeue dead letters", parents=[common])
    retry.add_argument("id", nargs="*", type=int, help="message ids (see 'outbox list')")
    retry.add_argument("--all", action="store_true", help="every dead letter")
    retry.set_defaults(handler=c.cmd_outbox_retry)

    dia = sub.add_parser("diagram", help="write the lifecycle diagram into diagrams/")
    dia.add_argument("--check", action="store_true", help="exit 1 if the committed diagram is stale")
    dia.add_argument("--dir", default="diagrams", help="directory (default: diagrams)")
    dia.set_defaults(handler=c.cmd_diagram)
    return parser


EXIT_CODES: list[tuple[type[BreachflowError], int]] = [(InvalidInput, 2), (NotFound, 2), (Conflict, 3), (CannotStart, 5)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.settings = Settings()
    except ValidationError as exc:
        for err in exc.errors():  # a rule across settings (production) names its variables itself, a line each
            problem = f"BREACHFLOW_{'_'.join(map(str, err['loc'])).upper()}: {err['msg']}" if err["loc"] else (
                err["msg"].removeprefix("Value error, "))
            for line in problem.splitlines():
                print(f"breachflow: error: configuration: {line}", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except Stopped as exc:  # serve or worker, stopped while starting up: nothing was under way
        print(f"breachflow {args.command}: stopped on {exc.name} while starting", file=sys.stderr)
        return 0
    except BreachflowError as exc:
        print(f"breachflow: error: {exc}", file=sys.stderr)
        return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 4)


if __name__ == "__main__":
    sys.exit(main())
