"""Messages as bytes on the wire, exact to RFC 5322 and RFC 2045–2047.

- CRLF only, in headers and bodies; no bare CR or LF anywhere.
- Headers folded at 76 characters (never longer: a word that cannot fit is sent as encoded words),
  non-ASCII, control characters and anything a decoder could misread (``=?``, runs of spaces) as
  RFC 2047 encoded words (UTF-8, base64, split on character boundaries), so a subject or a name
  round-trips exactly and can never start a header of its own.
- Bodies: multipart/alternative (plain text, then HTML), UTF-8, base64 in 76-character lines, line
  breaks in canonical CRLF form.
- ``Date``, a ``Message-ID`` that stays the same across retries (``new_message_id``), and for
  every message after a school's first about an incident, ``In-Reply-To`` and ``References``
  naming that first one, so mail clients show one conversation.

Written by hand because the standard library's ``EmailMessage`` costs about 0.5 ms per message,
which a platform-wide incident pays a thousand times inside ``confirm``; tests/test_mime.py parses
every template in every language with the standard library's strict policy to prove the bytes.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from datetime import datetime
from email.utils import format_datetime

LIMIT = 76  # characters per header line, CRLF not counted: RFC 5322 wants 78 at most, RFC 2047 76 for a
# line with an encoded word
_ENCODED_CHUNK = 39  # UTF-8 bytes per encoded word: "Subject: =?utf-8?b?" + 52 + "?=" within RFC 2047's 76
_PLAIN = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")  # printable ASCII words, single spaces between
_QUOTABLE = re.compile(r"[\x20-\x7e]*")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")  # a display name that needs no quotes
_BARE_ADDRESS = re.compile(r"[\x21-\x7e]+")  # no space, control or non-ASCII character: no second line
_BLANK = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")  # whitespace and control characters


def one_line(text: str) -> str:
    """``text`` with every run of whitespace or control characters as one space, trimmed: what a
    subject or a display name may hold."""
    return _BLANK.sub(" ", text).strip()


def new_message_id(reference: str, sender: str) -> str:
    """A Message-ID that stays the same across every retry of this message: 80 random bits in hex
    (the VERP token of ``notifications.bounces``), the incident's reference and the sender's domain,
    short enough that ``Message-ID``, ``In-Reply-To`` and ``References`` fit on one line for a domain
    of up to 29 characters (a longer one folds, which some parsers read with a leading space)."""
    domain = sender.rpartition("@")[2] or "breachflow.localhost"
    return f"<{secrets.token_hex(10)}.{reference}@{domain}>"


def _encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 encoded words of at most 75 characters, never splitting a character."""
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _ENCODED_CHUNK:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words]


def _fold(name: str, tokens: list[str]) -> str:
    """``name: tokens`` folded before a token whenever the line would pass ``LIMIT``."""
    lines, line = [], f"{name}:"
    for token in tokens:
        if len(line) + 1 + len(token) > LIMIT and line:
            lines.append(line)
            line = ""
        line += f" {token}"
    lines.append(line)
    return "\r\n".join(lines)


def _is_plain(text: str) -> bool:
    """Whether ``text`` can go into a header as it is: printable ASCII, single spaces, nothing a
    decoder would read as an encoded word, no word too long to fold."""
    return (_PLAIN.fullmatch(text) is not None and "=?" not in text
            and all(len(word) <= LIMIT - 20 for word in text.split(" ")))


def unstructured(name: str, value: str) -> str:
    """An unstructured header (``Subject``), folded, as encoded words unless plain ASCII."""
    if not value:
        return f"{name}:"
    return _fold(name, value.split(" ") if _is_plain(value) else _encoded_words(value))


def _display_name(name: str) -> list[str]:
    if _ATOM.fullmatch(name) and _is_plain(name):
        return name.split(" ")
    if _QUOTABLE.fullmatch(name) and _is_plain(name) and len(name) <= LIMIT - 20:  # a quoted string does not fold
        return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _encoded_words(name)


def addresses(name: str, mailboxes: list[tuple[str, str]]) -> str:
    """An address header: ``display name <address>`` for each mailbox (the name on one line; an
    empty name: the bare address), folded between mailboxes and words. Addresses are ASCII (``workflow.schools``
    refuses others)."""
    tokens: list[str] = []
    for n, (display, address) in enumerate(mailboxes):
        if not _BARE_ADDRESS.fullmatch(address):
            raise ValueError("an address a mail header cannot carry as it is (not bare ASCII)")
        last, display = n == len(mailboxes) - 1, one_line(display)
        if display:
            tokens += _display_name(display)
            tokens.append(f"<{address}>" + ("" if last else ","))
        else:
            tokens.append(address + ("" if last else ","))
    return _fold(name, tokens)


def _body(text: str) -> bytes:
    """UTF-8 text in canonical form (every line break CRLF), base64 in 76-character CRLF lines."""
    canonical = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return base64.encodebytes(canonical.encode("utf-8")).replace(b"\n", b"\r\n")


def mime(*, sender: str, sender_name: str, recipients: list[str], subject: str, text: str, html: str,
         message_id: str, date: datetime, language: str | None = None, thread: str | None = None) -> bytes:
    """A multipart/alternative message (text, then HTML), ready for SMTP. ``thread``: the
    Message-ID of the first message of the conversation this one continues."""
    boundary = f"=_{uuid.uuid4().hex}"
    headers = [
        addresses("From", [(sender_name, sender)]),
        addresses("To", [("", r) for r in recipients]),
        unstructured("Subject", subject),
        f"Date: {format_datetime(date)}",
        _fold("Message-ID", [message_id]),
    ]
    if thread is not None:
        headers += [_fold("In-Reply-To", [thread]), _fold("References", [thread])]
    headers += ["MIME-Version: 1.0", "Auto-Submitted: auto-generated"]
    if language is not None:
        headers.append(f"Content-Language: {language}")
    headers.append(_fold("Content-Type", ["multipart/alternative;", f'boundary="{boundary}"']))
    parts = [
        f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n".encode() + _body(body)
        for subtype, body in (("plain", text), ("html", html))
    ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + b"".join(parts) + f"--{boundary}--\r\n".encode()


_TO = re.compile(rb"^To:[^\r]*\r\n(?:[ \t][^\r]*\r\n)*", re.MULTILINE)


def readdressed(message: bytes, recipients: list[str]) -> bytes:
    """``message`` (as ``mime`` wrote it) with its ``To`` header naming ``recipients`` instead."""
    head, _, body = message.partition(b"\r\n\r\n")
    head, found = _TO.subn(addresses("To", [("", r) for r in recipients]).encode() + b"\r\n", head + b"\r\n", count=1)
    if not found:
        raise ValueError("the message has no To header")
    return head[:-2] + b"\r\n\r\n" + body
