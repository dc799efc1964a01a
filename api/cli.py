"""The ``breachflow`` command line. Thin: it parses, calls the service, prints.

Exit codes: 0 done (and 'serve' or 'worker' stopped by SIGTERM or SIGINT, having finished or
handed back what was in flight); 1 the audit found a broken chain or the diagram is stale; 2 bad
input, an unknown incident or school, or a setting production refuses (one line each on stderr,
nothing written); 3 the incident's state does not allow it (guard, trigger, concurrent change);
4 not initialised, the database's schema is not this breachflow's (behind: run 'breachflow db
upgrade'; written by a newer breachflow), or a key is missing, malformed, open to group or others
or does not open the data (the message names the file or variable and what to do; a missing key is
never replaced beside data that depends on it); 5 'serve' or 'worker' cannot start here: the port
is in use, the host is not this machine's, a file cannot be written or the database cannot be
reached (one line saying what to change); 141 the reader of the output went away (``breachflow … |
head``: nothing more is printed). With --json an error is one line of JSON on stderr in the API's
shape, {"error": {"code", "message", "fields"}}, with the same exit code.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from breachflow.api import commands as c
from breachflow.api.arguments import count_arg, date_arg, fields_help, port_arg, time_arg
from breachflow.api.errors import error_body
from breachflow.api.signals import Stopped
from breachflow.api.startup import CannotStart
from breachflow.notifications.models import OutboxStatus
from breachflow.workflow import accounts, lifecycle, logs, pages, schools
from breachflow.workflow.config import DEFAULT_SYSTEMS, Settings
from breachflow.workflow.disclosure import Source
from breachflow.workflow.errors import BreachflowError, Conflict, DatabaseFailure, FieldProblem, InvalidInput, NotFound
from breachflow.workflow.incident import ApKind, ContactChannel


class UsageError(Exception):
    """A command line the parser could not read."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog, self.message = prog, message


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised for ``main``: one line on stderr (or JSON), exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, f"{message} (see --help)")


# --- parser ---------------------------------------------------------------------------------


def _incident_parser(sub: argparse._SubParsersAction[_Parser], name: str,
                     handler: Callable[[argparse.Namespace], int], help_: str, *parents: argparse.ArgumentParser,
                     epilog: str | None = None) -> argparse.ArgumentParser:
    # typeshed wants parents of the subparsers' class; argparse takes any parser
    parser = sub.add_parser(name, help=help_, description=help_, parents=list(parents),  # type: ignore[arg-type]
                            epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", help="the incident's reference, e.g. DL-2026-00042")
    parser.set_defaults(handler=handler)
    return parser


def _subject_parser(sub: argparse._SubParsersAction[_Parser], name: str,
                    handler: Callable[[argparse.Namespace], int], common: argparse.ArgumentParser, help_: str,
                    description: str) -> argparse.ArgumentParser:
    # typeshed wants parents of the subparsers' class; argparse takes any parser
    parser = sub.add_parser(name, parents=[common], help=help_, description=description)  # type: ignore[list-item]
    parser.add_argument("--school", required=True, help="BRIN code of the school whose request this is")
    person = parser.add_mutually_exclusive_group(required=True)
    person.add_argument("--email", help="the person's email address, as recorded (matched as a whole token)")
    person.add_argument("--name", help="the person's name, as recorded (at least 2 characters; whole words)")
    person.add_argument("--pupil-number", help="the pupil's number, as recorded (matched as a whole token)")
    parser.set_defaults(handler=handler)
    return parser


def _page_size(text: str) -> int:
    """``--limit``: an integer within the page bounds of every list."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= pages.MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {pages.MAX_LIMIT}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    paged = _Parser(add_help=False)
    paged.add_argument("--limit", type=_page_size, default=pages.DEFAULT_LIMIT,
                       help=f"items per page (1–{pages.MAX_LIMIT}, default {pages.DEFAULT_LIMIT})")
    paged.add_argument("--cursor", help="where the next page starts (printed under the previous one)")
    common.add_argument(
        "--actor", default=os.environ.get("BREACHFLOW_ACTOR") or getpass.getuser(),
        help="who acts (default: $BREACHFLOW_ACTOR or your login name)",
    )
    set_help = "set a field, e.g. --set summary='…' (repeatable; every field, its values and meaning are listed below)"
    fields = fields_help({"affected_systems": _configured_systems()})
    version_help = "refuse if the incident is no longer at this version (optimistic concurrency)"
    reason_help = "why: required to correct the discovery time or a known cause once confirmed (it moves the clocks)"

    parser = _Parser(prog="breachflow", description="Data-breach response workflow (seed section 6).",
                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"breachflow {version('breachflow')}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("init", help="create the database and key files (keys only where there is no database)",
                   parents=[common]).set_defaults(handler=c.cmd_init)

    database = sub.add_parser("db", help="the database schema").add_subparsers(
        dest="db_command", required=True, parser_class=_Parser)
    database.add_parser(
        "upgrade", parents=[common], help="upgrade the database schema to this breachflow's revision",
        description="Check the keys and upgrade the database schema to this breachflow's revision, as init does "
                    "(serve and worker do it when they start). A database made before migrations is adopted; one "
                    "at a revision only a newer breachflow knows is refused (exit 4) and left as it is.",
    ).set_defaults(handler=c.cmd_db_upgrade)
    database.add_parser(
        "status", parents=[common], help="the database's schema revision and this breachflow's (exit 1 unless equal)",
    ).set_defaults(handler=c.cmd_db_status)

    school = sub.add_parser("school", help="schools (the controllers)").add_subparsers(
        dest="school_command", required=True, parser_class=_Parser)
    master = _Parser(add_help=False)  # the school's master data for the AP's form (the AP dossier)
    master.add_argument("--address", help="visiting address: street, number, postcode, town")
    master.add_argument("--kvk", help="Chamber of Commerce (KvK) number: eight digits")
    master.add_argument("--sector", choices=list(schools.Sector), help="education sector")
    master.add_argument("--dpo-registration", help="the number under which the AP registered the school's DPO")
    master.add_argument("--contact-name", help="the contact person for the AP (with --contact-phone, --contact-email)")
    master.add_argument("--contact-phone")
    master.add_argument("--contact-email")
    add = school.add_parser("add", help="register a school", parents=[common, master])
    add.add_argument("--brin", required=True, help="BRIN code, e.g. 12AB")
    add.add_argument("--name", required=True)
    add.add_argument("--contact", action="append", default=[], required=True, help="email address (repeatable)")
    add.add_argument("--language", default="nl", choices=schools.LANGUAGES)
    add.add_argument("--contract-ends", type=date_arg, help="contract end date (starts the retention clock)")
    add.set_defaults(handler=c.cmd_school_add)
    upd_school = school.add_parser("update", help="change a school (only what is given changes)",
                                   parents=[common, master])
    upd_school.add_argument("brin", help="BRIN code of the school")
    upd_school.add_argument("--name")
    upd_school.add_argument("--contact", action="append", help="email address (repeatable; replaces them all)")
    upd_school.add_argument("--language", choices=schools.LANGUAGES)
    upd_school.add_argument("--contract-ends", type=date_arg, help="contract end date")
    upd_school.add_argument("--clear", action="append", default=[], choices=list(schools.MASTER_FIELDS),
                            help="clear a part of the master data (repeatable)")
    upd_school.set_defaults(handler=c.cmd_school_update)
    school.add_parser("list", help="list schools, a page at a time", parents=[common, paged]).set_defaults(
        handler=c.cmd_school_list)

    inc = sub.add_parser("incident", help="incidents").add_subparsers(
        dest="incident_command", required=True, parser_class=_Parser)
    rep = inc.add_parser("report", help="register a report in the breach register", parents=[common], epilog=fields,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("--source", required=True, help="who reported it: one of " + ", ".join(Source))
    rep.add_argument("--school", action="append", default=[], help="affected school BRIN[:COUNT] (repeatable)")
    rep.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=set_help)
    rep.set_defaults(handler=c.cmd_report)

    _incident_parser(inc, "show", c.cmd_show, "show an incident and what each trigger still needs", common)
    lst = inc.add_parser("list", help="list incidents, newest first, a page at a time", parents=[common, paged])
    lst.add_argument("--state", help="only incidents in this state: one of " + ", ".join(lifecycle.State))
    lst.add_argument("--school", help="only incidents affecting this school (BRIN)")
    lst.set_defaults(handler=c.cmd_list)

    upd = _incident_parser(inc, "update", c.cmd_update, "change fields and affected schools", common, epilog=fields)
    upd.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=set_help)
    upd.add_argument("--school", action="append", default=[], help="add or recount a school BRIN[:COUNT]")
    upd.add_argument("--remove-school", action="append", default=[], help="BRIN of a school not affected after all")
    upd.add_argument("--expect-version", type=int, help=version_help)
    upd.add_argument("--reason", help=reason_help)

    fire = _incident_parser(inc, "fire", c.cmd_fire, "fire a trigger (fields given are saved with it)", common, epilog=fields)
    fire.add_argument("trigger", help="one of " + ", ".join(lifecycle.Trigger))
    fire.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=set_help)
    fire.add_argument("--expect-version", type=int, help=version_help)
    fire.add_argument("--reason", help=reason_help)
    fire.add_argument("--action", action="append", default=[], metavar="JSON", help=(
        "with 'evaluated': a follow-up action, e.g. '{\"description\": \"…\", \"owner\": \"hanna\", "
        "\"due\": \"2026-12-31\", \"blocking\": true}' (repeatable; a date is the end of that day in Amsterdam)"))

    act = _incident_parser(inc, "action-add", c.cmd_action_add,
                           "record a follow-up action (from evaluation until closed)", common)
    act.add_argument("--description", required=True, help="what must be done")
    act.add_argument("--owner", required=True, help="username of the handler or manager who sees to it")
    act.add_argument("--due", required=True, help="an ISO time with its zone, or a date (the end of that day, Amsterdam)")
    act.add_argument("--blocking", action="store_true", help="the incident cannot be closed while it is open")
    act.add_argument("--expect-version", type=int, help=version_help)
    settle = _incident_parser(inc, "action-settle", c.cmd_action_settle, "mark a follow-up action done or dropped",
                              common)
    settle.add_argument("number", type=int, help="the action's number")
    settle.add_argument("--status", required=True, help="done or dropped")
    settle.add_argument("--note", help="how it was done, or why it was dropped")

    _incident_parser(inc, "triggers", c.cmd_triggers, "triggers valid now and what each still misses", common)
    note = _incident_parser(inc, "note", c.cmd_note, "add a note to the timeline", common)
    note.add_argument("text")

    contact = _incident_parser(inc, "contact", c.cmd_contact, "log a phone or email contact with a school", common)
    contact.add_argument("--school", required=True, help="BRIN of the affected school")
    contact.add_argument("--channel", required=True, help="one of " + ", ".join(ContactChannel))
    contact.add_argument("--summary", required=True, help="what was said")
    contact.add_argument("--told-must-notify-ap", action="store_true",
                         help="the school was told it must notify the AP itself (user error or negligence)")
    contact.add_argument("--at", type=time_arg, help="when (default: now)")

    ap = _incident_parser(inc, "ap-notify", c.cmd_ap_notify, "record a notification to the AP", common)
    ap.add_argument("--kind", required=True, help="one of " + ", ".join(ApKind))
    ap.add_argument("--ap-reference", required=True, help="the AP's reference number (meldnummer)")
    ap.add_argument("--at", type=time_arg, help="when it was submitted (default: now)")
    ap.add_argument("--school", action="append", default=[], help="BRIN it covers (default: all affected)")
    ap.add_argument("--delay-reason", help="why it is later than the deadline (required then)")

    reopen = _incident_parser(inc, "reopen", c.cmd_reopen, "reopen a dismissed or closed incident", common)
    reopen.add_argument("--reason", required=True)
    _incident_parser(inc, "timeline", c.cmd_timeline, "the incident's timeline, a page at a time", common, paged)
    notify = _incident_parser(inc, "notify", c.cmd_notify, "send an update notice to the affected schools", common)
    notify.add_argument("--message", help="your own words, above what changed")

    sub.add_parser("deadlines", help="open deadlines, soonest first, a page at a time",
                   parents=[common, paged]).set_defaults(handler=c.cmd_deadlines)
    register = sub.add_parser("register", help="the breach register (datalekkenregister)").add_subparsers(
        dest="register_command", required=True, parser_class=_Parser)
    export = register.add_parser(
        "export", parents=[common], help="every incident's register entry, as CSV (or JSON)",
        description="Export the breach register: the rows of GET /api/v1/register/export, as CSV (times in "
                    "Amsterdam time) or JSON, written as it is read. A damaged record keeps its row (CSV) or "
                    "is named under \"unreadable\" (JSON).")
    export.add_argument("--format", choices=["csv", "json"], help="default: csv, or json with --json")
    export.add_argument("--out", type=Path, help="write to this file (owner-only, 0600) instead of standard output")
    export.set_defaults(handler=c.cmd_register_export)
    subject = sub.add_parser(
        "subject", help="a school's requests about one person: export, erase (data-subject rights)").add_subparsers(
        dest="subject_command", required=True, parser_class=_Parser)
    subject_export = _subject_parser(
        subject, "export", c.cmd_subject_export, common,
        "everything breachflow holds about one person that the school may see, as JSON",
        "Export, for a school's data-subject request (GDPR art. 15), everything breachflow holds about one "
        "person that the school may see: across the incidents it is affected by (in an incident shared with "
        "other schools, only the school's own part) and its own record, each item with its incident, where "
        "it sits and its decrypted value. A damaged incident is named under \"unreadable\". Each incident "
        "where something was found records the request on its timeline, without the identifier.")
    subject_export.add_argument("--out", type=Path, help="write to this file (owner-only, 0600) instead of standard output")
    _subject_parser(
        subject, "erase", c.cmd_subject_erase, common,
        "erase one person's details where no legal duty keeps them; say what was kept and why",
        "Erase, for a school's data-subject request (GDPR art. 17), one person's details that no legal duty "
        "keeps: the reporter's name and contact in the school's own incidents, and their address among the "
        "school's contacts (not the last one). Prints what was erased and, for everything else found, why it "
        "stays (the processor's duty to document breaches, proof the school was informed, the append-only "
        "timeline). One transaction; each incident where something was found records it on its timeline.")
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
    kept = sub.add_parser("retention", help="destroy personal data two months after a school's contract ends") \
        .add_subparsers(dest="retention_command", required=True, parser_class=_Parser)
    run = kept.add_parser(
        "run", parents=[common], help="show what is due for destruction; destroy it with --apply",
        description="Schools whose contract ended two months ago (kept through the same day two calendar "
                    "months after the contract end, due at 00:00 Amsterdam time the day after) are due: their part of every incident (the "
                    "notices to them and what those said, their note on informing the people affected), the "
                    "incident's own data once no school keeps a part of it, the school's own data key (its "
                    "contacts and contact person) and its user accounts' email addresses and passwords. The "
                    "register entry, deadlines and timeline stay; every chain still verifies. Without --apply "
                    "this only prints the plan and changes nothing. The worker runs it daily.")
    run.add_argument("--apply", action="store_true", help="destroy what is due, for good, and print what went")
    run.set_defaults(handler=c.cmd_retention_run)
    kept_log = kept.add_parser("log", parents=[common, paged], help="list every destruction retention did, oldest first")
    kept_log.set_defaults(handler=c.cmd_retention_log)
    backups = sub.add_parser("backup", help="back up and restore the embedded SQLite database").add_subparsers(
        dest="backup_command", required=True, parser_class=_Parser)
    backup_create = backups.add_parser(
        "create", parents=[common], help="copy the database, consistently while breachflow runs (no keys in it)",
        description="Copy the embedded SQLite database to a new owner-only file, consistently while serve and "
                    "worker keep writing. The copy holds no key: back up master.key, audit.key and checkpoint.key "
                    "apart from it (README, 'Backups'). PostgreSQL: use pg_dump.")
    backup_create.add_argument("--out", type=Path, help="a new file, or a directory (default: data_dir/backups)")
    backup_create.set_defaults(handler=c.cmd_backup_create)
    backup_restore = backups.add_parser(
        "restore", parents=[common], help="replace the database with a backup, then audit it",
        description="Check the backup (an intact breachflow database whose every chain verifies under the "
                    "configured keys; an older revision is upgraded), then replace the database with it while no "
                    "process has it open, keeping the replaced one beside it, and audit the result.")
    backup_restore.add_argument("file", type=Path, help="a file written by 'breachflow backup create'")
    backup_restore.add_argument("--force", action="store_true", help="replace a database that holds an installation")
    backup_restore.set_defaults(handler=c.cmd_backup_restore)

    keys = sub.add_parser("keys", help="master keys").add_subparsers(
        dest="keys_command", required=True, parser_class=_Parser)
    keys.add_parser("rotate", help="add a new master key and rewrap every data key", parents=[common]).set_defaults(
        handler=c.cmd_keys_rotate)

    dk = sub.add_parser("dkim", help="DKIM signing keys for outgoing mail").add_subparsers(
        dest="dkim_command", required=True, parser_class=_Parser)
    keygen = dk.add_parser(
        "keygen", parents=[common], help="write a new DKIM private key and print its DNS record",
        description="Write a new DKIM private key (PEM, owner-only 0600; an existing file is never overwritten) "
                    "and print the DNS TXT record that publishes its public key under the selector, for the "
                    "signing domain (BREACHFLOW_DKIM_DOMAIN, else the domain of BREACHFLOW_MAIL_FROM). Publish "
                    "the record, then set BREACHFLOW_DKIM_SELECTOR and BREACHFLOW_DKIM_KEY_FILE. To rotate, make "
                    "a key under a new selector and switch once its record is published.")
    keygen.add_argument("--selector", required=True, help="the name the key is published under, e.g. bf2026")
    keygen.add_argument("--out", type=Path, help="the new key file (default: data_dir/dkim-SELECTOR.pem)")
    keygen.add_argument("--type", choices=["rsa", "ed25519"], default="rsa",
                        help="rsa (2048 bits, default: every receiver checks it) or ed25519 (short; not every "
                             "receiver checks it yet)")
    keygen.set_defaults(handler=c.cmd_dkim_keygen)
    dk.add_parser(
        "record", parents=[common], help="print the DNS TXT record of the configured DKIM key",
        description="Print the DNS TXT record (<selector>._domainkey.<domain> IN TXT \"v=DKIM1; k=…; p=…\", "
                    "split into strings of at most 255 characters) that publishes the public half of "
                    "BREACHFLOW_DKIM_KEY_FILE under BREACHFLOW_DKIM_SELECTOR.").set_defaults(handler=c.cmd_dkim_record)

    user = sub.add_parser("user", help="API users").add_subparsers(
        dest="user_command", required=True, parser_class=_Parser)
    user_add = user.add_parser("add", help="create a user", parents=[common])
    user_add.add_argument("username")
    user_add.add_argument("--role", required=True, choices=[r.value for r in accounts.Role])
    user_add.add_argument("--school", help="BRIN code (school users only)")
    user_add.add_argument("--email", help="handlers and managers with an address get deadline reminders")
    password = user_add.add_mutually_exclusive_group()
    password.add_argument("--password", action="store_true",
                          help="ask for a password to sign in to the pages (twice, not shown); for an existing user: "
                               "reset it, ending the user's sessions")
    password.add_argument("--password-stdin", action="store_true",
                          help="as --password, reading the password from the first line of standard input")
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
    worker.add_argument("--metrics-port", type=int,
                        help="serve this worker's delivery counters for Prometheus on this port (no token: bind it "
                             "where only Prometheus reaches; the register's figures are on the API's /metrics)")
    worker.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (default: 127.0.0.1)")
    worker.set_defaults(handler=c.cmd_worker)
    box = sub.add_parser("outbox", help="the outbox of mail").add_subparsers(
        dest="outbox_command", required=True, parser_class=_Parser)
    box_list = box.add_parser("list", help="messages by status (default: dead letters), a page at a time",
                              parents=[common, paged])
    box_list.add_argument("--status", default=OutboxStatus.dead.value, choices=[*OutboxStatus, "all"])
    box_list.set_defaults(handler=c.cmd_outbox_list)
    retry = box.add_parser("retry", help="requeue dead letters", parents=[common])
    retry.add_argument("id", nargs="*", type=int, help="message ids (see 'outbox list')")
    retry.add_argument("--all", action="store_true", help="every dead letter")
    retry.set_defaults(handler=c.cmd_outbox_retry)

    bounce = sub.add_parser("bounces", help="bounced mail").add_subparsers(
        dest="bounces_command", required=True, parser_class=_Parser)
    bounce.add_parser("read", help="read the bounce mailbox once and print what was matched (the worker does it "
                      "every BREACHFLOW_BOUNCE_POLL_SECONDS)", parents=[common]).set_defaults(handler=c.cmd_bounces_read)

    dia = sub.add_parser("diagram", help="write the lifecycle diagram into diagrams/")
    dia.add_argument("--check", action="store_true", help="exit 1 if the committed diagram is stale")
    dia.add_argument("--dir", default="diagrams", help="directory (default: diagrams)")
    dia.set_defaults(handler=c.cmd_diagram)
    return parser


def _configured_systems() -> list[str]:
    """The systems ``affected_systems`` may name here (the defaults while the configuration is
    invalid: ``main`` says why before any command runs)."""
    try:
        return Settings().affected_systems
    except ValidationError:
        return list(DEFAULT_SYSTEMS)


EXIT_CODES: list[tuple[type[BreachflowError], int]] = [(InvalidInput, 2), (NotFound, 2), (Conflict, 3), (CannotStart, 5)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code. A reader that goes away (``breachflow … | head``)
    ends it quietly, with the exit code of a process that SIGPIPE ended (141)."""
    try:
        try:
            return _run(sys.argv[1:] if argv is None else list(argv))
        finally:
            sys.stdout.flush()  # here, not at exit, where a closed pipe could only print a traceback
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing is left to flush at exit
        return 128 + signal.SIGPIPE


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were no UTF-8, kept as lone surrogates
        return False
    return True


def _run(argv: list[str]) -> int:
    bad = next((n for n, arg in enumerate(argv, start=1) if not _utf8(arg)), None)
    if bad is not None:
        return _fail("breachflow", InvalidInput(f"argument {bad} is not UTF-8 text"), as_json="--json" in argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:  # JSON if asked for, though the parser never got to read --json
        return _fail(exc.prog, InvalidInput(exc.message), as_json="--json" in argv)
    as_json = getattr(args, "json", False)
    try:
        args.settings = Settings()
    except ValidationError as exc:
        problems = _configuration_problems(exc)
        if as_json:
            return _fail("breachflow", InvalidInput("configuration", problems), as_json=True)
        for problem in problems:  # a line each: production may refuse several settings at once
            print(f"breachflow: error: configuration: {problem.problem}", file=sys.stderr)
        return 2
    logs.configure(args.settings)
    try:
        return args.handler(args)
    except Stopped as exc:  # serve or worker, stopped while starting up: nothing was under way
        print(f"breachflow {args.command}: stopped on {exc.name} while starting", file=sys.stderr)
        return 0
    except BreachflowError as exc:
        return _fail("breachflow", exc, as_json=as_json)
    except SQLAlchemyError as exc:  # one line for the user; the traceback in the log at DEBUG (redacted)
        logging.getLogger("breachflow.cli").debug("the database failed", exc_info=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return _fail("breachflow", DatabaseFailure(
            f"the database failed ({reason}); check it with 'breachflow db status' and 'breachflow audit verify'"),
            as_json=as_json)


def _configuration_problems(exc: ValidationError) -> list[FieldProblem]:
    """A problem per line: a setting's own (``BREACHFLOW_X: …``), or a rule across settings, which
    names its variable first (production's rules)."""
    problems = []
    for err in exc.errors():
        if err["loc"]:
            variable = f"BREACHFLOW_{'_'.join(map(str, err['loc'])).upper()}"
            problems.append(FieldProblem(variable, f"{variable}: {err['msg']}"))
            continue
        for line in err["msg"].removeprefix("Value error, ").splitlines():
            first = line.split(" ", 1)[0]
            problems.append(FieldProblem(first if first.startswith("BREACHFLOW_") else "settings", line))
    return problems


def _fail(prog: str, exc: BreachflowError, *, as_json: bool) -> int:
    """Report ``exc`` on stderr, in one line or in the API's error shape; return its exit code."""
    if as_json:
        print(error_body(exc.code, exc.message, exc.fields).model_dump_json(), file=sys.stderr)
    else:
        print(f"{prog}: error: {exc}", file=sys.stderr)
    return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 4)


if __name__ == "__main__":
    sys.exit(main())
