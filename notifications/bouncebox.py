"""The bounce mailbox: a local maildir or an IMAP mailbox, read for unseen mail (``Reader``).

Each unseen message is parsed (``bounces.parse``) and recorded (``bounced.record``) in its own
transaction; only after that commits is it removed (its content is on the sealed timeline now, and
a returned notice holds personal data that retention must be able to forget). Mail that is no
bounce, about no message of ours, or larger than ``MAX_MESSAGE`` is set aside for a person (seen
and flagged: read once, not at every pass). A message whose recording fails, or whose message's
sending is not recorded yet, stays unseen and is read again at the next pass; the others go on.
A pass can be stopped from another thread (``Reader.abort``): a stopping worker does not wait for a
slow IMAP server.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import mailbox
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from breachflow.notifications import bounced, bounces
from breachflow.notifications.reminders import staff_addresses
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context

log = logging.getLogger("breachflow.bounces")


MAX_MESSAGE = 10_000_000  # bytes: a bounce returns headers or one notice, never more
IMAP_TIMEOUT = 15  # seconds a silent IMAP server is waited for, per operation


class Box(Protocol):
    def unseen(self) -> Iterator[tuple[str, bytes | None]]: ...  # None: too large to read

    def done(self, key: str) -> None: ...

    def set_aside(self, key: str) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


class MaildirBox:
    """A local maildir: unseen is what is in ``new`` or lacks the ``S`` flag."""

    def __init__(self, path: Path) -> None:
        self.maildir = mailbox.Maildir(path, factory=None, create=True)

    def unseen(self) -> Iterator[tuple[str, bytes | None]]:
        for key in sorted(self.maildir.keys()):
            try:
                message = self.maildir.get_message(key)
                if message.get_subdir() == "new" or "S" not in message.get_flags():
                    raw = self.maildir.get_bytes(key)
                    yield key, None if len(raw) > MAX_MESSAGE else raw
            except (KeyError, FileNotFoundError):  # another reader took it meanwhile
                continue

    def done(self, key: str) -> None:
        with contextlib.suppress(KeyError, FileNotFoundError):  # another reader removed it first
            self.maildir.remove(key)

    def set_aside(self, key: str) -> None:
        try:
            message = self.maildir.get_message(key)
            message.set_subdir("cur")
            message.set_flags("FS")
            self.maildir[key] = message
        except (KeyError, FileNotFoundError):
            pass

    def abort(self) -> None:
        return None  # local files: a pass ends soon enough

    def close(self) -> None:
        self.maildir.close()


class _WatchedIMAP(imaplib.IMAP4):
    """imaplib's client, handing its socket to ``watch`` as soon as it is open (before the greeting
    is read), so that ``Reader.abort`` can cut off a server that is slow to say anything."""

    def __init__(self, *args: Any, watch: Callable[[socket.socket], None], **kwargs: Any) -> None:
        self._watch = watch
        super().__init__(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self._watch(self.sock)


class _WatchedIMAPSSL(_WatchedIMAP, imaplib.IMAP4_SSL):
    pass


class ImapBox:
    """An IMAP mailbox (``imaplib``), read without setting ``\\Seen``: a recorded bounce is deleted,
    mail set aside is flagged."""

    def __init__(self, settings: Settings, watch: Callable[[socket.socket], None] = lambda sock: None) -> None:
        s = settings
        verified = ssl.create_default_context(cafile=s.bounce_imap_ca_file)
        if s.bounce_imap_security == "tls":
            self.imap: imaplib.IMAP4 = _WatchedIMAPSSL(s.bounce_imap_host, s.bounce_imap_port, ssl_context=verified,
                                                       timeout=IMAP_TIMEOUT, watch=watch)
        else:
            self.imap = _WatchedIMAP(s.bounce_imap_host, s.bounce_imap_port, timeout=IMAP_TIMEOUT, watch=watch)
        try:
            if s.bounce_imap_security == "starttls":
                self.imap.starttls(verified)
            password = s.bounce_imap_password.get_secret_value() if s.bounce_imap_password else ""
            self.imap.login(s.bounce_imap_username or "", password)
            status, answer = self.imap.select(s.bounce_imap_mailbox)
            if status != "OK":
                said = answer[0].decode(errors="replace") if answer and answer[0] else status
                raise imaplib.IMAP4.error(f"mailbox {s.bounce_imap_mailbox!r} (BREACHFLOW_BOUNCE_IMAP_MAILBOX) cannot be "
                                          f"opened: {said}")
        except BaseException:
            self.imap.shutdown()  # a refused login or mailbox leaves no socket behind
            raise

    def unseen(self) -> Iterator[tuple[str, bytes | None]]:
        _, found = self.imap.uid("SEARCH", "UNSEEN")
        for uid in found[0].split():
            _, sized = self.imap.uid("FETCH", uid, "(RFC822.SIZE)")
            size = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(p for p in sized if isinstance(p, bytes)))
            if size is not None and int(size.group(1)) > MAX_MESSAGE:
                yield uid.decode(), None
                continue
            _, data = self.imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((part[1] for part in data if isinstance(part, tuple)), None)
            if raw is not None:
                yield uid.decode(), raw

    def done(self, key: str) -> None:
        self.imap.uid("STORE", key, "+FLAGS", "(\\Deleted)")

    def set_aside(self, key: str) -> None:
        self.imap.uid("STORE", key, "+FLAGS", "(\\Seen \\Flagged)")

    def abort(self) -> None:
        _cut(self.imap.sock)

    def close(self) -> None:
        try:
            self.imap.expunge()  # the recorded bounces marked deleted
            self.imap.logout()
        except (imaplib.IMAP4.error, OSError):
            self.imap.shutdown()


def _cut(sock: socket.socket) -> None:
    """Shut ``sock`` down: a read waiting on it in another thread ends at once."""
    with contextlib.suppress(OSError):  # already closed or never connected: nothing to cut
        sock.shutdown(socket.SHUT_RDWR)


def configured(settings: Settings) -> bool:
    """Whether a bounce mailbox is configured."""
    return bool(settings.bounce_imap_host or settings.bounce_maildir)


def open_box(settings: Settings, watch: Callable[[socket.socket], None] = lambda sock: None) -> Box:
    """The configured mailbox (IMAP when both are set; ``watch`` is handed its socket once open)."""
    if settings.bounce_imap_host:
        return ImapBox(settings, watch)
    if settings.bounce_maildir:
        return MaildirBox(settings.bounce_maildir)
    raise ValueError("no bounce mailbox configured: set BREACHFLOW_BOUNCE_MAILDIR or BREACHFLOW_BOUNCE_IMAP_HOST")


@dataclass
class Pass:
    """What one pass over the mailbox did."""

    recorded: list[bounced.Recorded] = field(default_factory=list)
    unchanged: int = 0  # bounces of ours read before (or whose data retention destroyed): removed
    ignored: int = 0  # no bounce, about no message of ours, or too large: set aside for a person
    failed: int = 0  # recording failed, or its message's sending is not recorded yet: read again next pass


class Reader:
    """One pass over the configured bounce mailbox (``read``), which ``abort`` ends from another thread."""

    def __init__(self, ctx: Context, box: Box | None = None) -> None:
        self.ctx, self.box, self._given = ctx, box, box is not None
        self._stopped = threading.Event()
        self._socket: socket.socket | None = None  # the IMAP connection being opened

    def abort(self) -> None:
        """End the pass: no further message is read, and a read waiting for the server is cut off."""
        self._stopped.set()
        if self.box is not None:
            self.box.abort()
        elif self._socket is not None:
            _cut(self._socket)

    def _opened(self, sock: socket.socket) -> None:
        self._socket = sock
        if self._stopped.is_set():
            _cut(sock)

    def read(self) -> Pass:
        done = Pass()
        if self.box is None:
            self.box = open_box(self.ctx.settings, self._opened)
        try:
            if not self._stopped.is_set():
                self._pass(self.box, done)
        finally:
            if not self._given:
                self.box.close()
        return done

    def _pass(self, box: Box, done: Pass) -> None:
        staff = None
        for key, raw in box.unseen():
            if self._stopped.is_set():
                return
            bounce = bounces.parse(raw, self.ctx.settings.bounce_address) if raw is not None else None
            if bounce is None:
                log.info("bounce mailbox: message %s is %s; set aside", key, "no bounce" if raw else "too large")
                done.ignored += 1
                box.set_aside(key)
                continue
            staff = staff_addresses(self.ctx) if staff is None else staff
            try:
                result = bounced.record(self.ctx, bounce, staff, datetime.now(UTC))
            except Exception:  # one message's failure must not stop the others; it is read again next pass
                log.exception("bounce mailbox: message %s could not be recorded; trying again next pass", key)
                done.failed += 1
                continue
            if result is None:
                log.info("bounce mailbox: message %s is about no message of ours or none of its recipients; set aside",
                         key)
                done.ignored += 1
                box.set_aside(key)
            elif result == bounced.LATER:
                done.failed += 1
            else:
                if isinstance(result, bounced.Recorded):
                    done.recorded.append(result)
                else:  # UNCHANGED
                    done.unchanged += 1
                box.done(key)


def read(ctx: Context, box: Box | None = None) -> Pass:
    """One pass over the configured bounce mailbox (or ``box``)."""
    return Reader(ctx, box).read()
