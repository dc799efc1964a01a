"""The bounce mailbox: a local maildir or an IMAP mailbox, read for unseen mail (``read``).

Each unseen message is parsed (``bounces.parse``) and recorded (``bounced.record``) in its own
transaction; only after that commits is it marked seen (maildir: moved to ``cur`` with flag ``S``;
IMAP: ``\\Seen``). Mail that is no bounce, or about no message of ours, is left as it is (unseen,
for a person to look at) and counted; a message whose recording fails is logged and tried again at
the next pass, and the others go on.
"""

from __future__ import annotations

import imaplib
import logging
import mailbox
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from breachflow.notifications import bounced, bounces
from breachflow.notifications.reminders import staff_addresses
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context

log = logging.getLogger("breachflow.bounces")


class Box(Protocol):
    def unseen(self) -> Iterator[tuple[str, bytes]]: ...

    def mark_seen(self, key: str) -> None: ...

    def close(self) -> None: ...


class MaildirBox:
    """A local maildir: unseen is what is in ``new`` or lacks the ``S`` flag."""

    def __init__(self, path: Path) -> None:
        self.maildir = mailbox.Maildir(path, factory=None, create=True)

    def unseen(self) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self.maildir.keys()):
            message = self.maildir.get_message(key)
            if message.get_subdir() == "new" or "S" not in message.get_flags():
                yield key, self.maildir.get_bytes(key)

    def mark_seen(self, key: str) -> None:
        message = self.maildir.get_message(key)
        message.set_subdir("cur")
        message.add_flag("S")
        self.maildir[key] = message

    def close(self) -> None:
        self.maildir.close()


class ImapBox:
    """An IMAP mailbox (``imaplib``), read without setting ``\\Seen`` until ``mark_seen``."""

    def __init__(self, settings: Settings) -> None:
        s = settings
        verified = ssl.create_default_context(cafile=s.bounce_imap_ca_file)
        if s.bounce_imap_security == "tls":
            self.imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(s.bounce_imap_host, s.bounce_imap_port,
                                                         ssl_context=verified, timeout=30)
        else:
            self.imap = imaplib.IMAP4(s.bounce_imap_host, s.bounce_imap_port, timeout=30)
            if s.bounce_imap_security == "starttls":
                self.imap.starttls(verified)
        password = s.bounce_imap_password.get_secret_value() if s.bounce_imap_password else ""
        self.imap.login(s.bounce_imap_username or "", password)
        self.imap.select(s.bounce_imap_mailbox)

    def unseen(self) -> Iterator[tuple[str, bytes]]:
        _, found = self.imap.uid("SEARCH", "UNSEEN")
        for uid in found[0].split():
            _, data = self.imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((part[1] for part in data if isinstance(part, tuple)), None)
            if raw is not None:
                yield uid.decode(), raw

    def mark_seen(self, key: str) -> None:
        self.imap.uid("STORE", key, "+FLAGS", "(\\Seen)")

    def close(self) -> None:
        try:
            self.imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def configured(settings: Settings) -> bool:
    """Whether a bounce mailbox is configured."""
    return bool(settings.bounce_imap_host or settings.bounce_maildir)


def open_box(settings: Settings) -> Box:
    """The configured mailbox (IMAP when both are set)."""
    if settings.bounce_imap_host:
        return ImapBox(settings)
    if settings.bounce_maildir:
        return MaildirBox(settings.bounce_maildir)
    raise ValueError("no bounce mailbox configured: set BREACHFLOW_BOUNCE_MAILDIR or BREACHFLOW_BOUNCE_IMAP_HOST")


@dataclass
class Pass:
    """What one pass over the mailbox did."""

    recorded: list[bounced.Recorded] = field(default_factory=list)
    unchanged: int = 0  # bounces of ours read before (or whose data retention destroyed): marked seen
    ignored: int = 0  # no bounce, or about no message of ours: left unseen
    failed: int = 0  # recording failed: left unseen, tried again next pass


def read(ctx: Context, box: Box | None = None) -> Pass:
    """One pass over the configured bounce mailbox (or ``box``)."""
    done = Pass()
    opened = box or open_box(ctx.settings)
    try:
        staff = None
        for key, raw in opened.unseen():
            bounce = bounces.parse(raw, ctx.settings.bounce_address)
            if bounce is None:
                log.info("bounce mailbox: message %s is no bounce; left alone", key)
                done.ignored += 1
                continue
            staff = staff_addresses(ctx) if staff is None else staff
            try:
                result = bounced.record(ctx, bounce, staff, datetime.now(UTC))
            except Exception:  # one message's failure must not stop the others; it is read again next pass
                log.exception("bounce mailbox: message %s could not be recorded; trying again next pass", key)
                done.failed += 1
                continue
            if result is None:
                log.info("bounce mailbox: message %s is about no message of ours; left alone", key)
                done.ignored += 1
                continue
            if result == bounced.UNCHANGED:
                done.unchanged += 1
            else:
                done.recorded.append(result)
            opened.mark_seen(key)
    finally:
        if box is None:
            opened.close()
    return done
