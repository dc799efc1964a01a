"""Bounces: what a returned message says, and the return path (VERP) that names its message.

``parse`` reads a bounce: a delivery status notification (RFC 3464: ``Action``/``Status`` per
recipient, the original message or its headers attached) or, failing that, a non-standard bounce
as ``flufl.bounce`` detects it (Exim, Postfix, qmail, … as Mailman does). It finds which of our
messages it is about by the ``Message-ID`` of what came back and, with ``BREACHFLOW_BOUNCE_ADDRESS``,
by the VERP token in the address the bounce was sent to. A ``failed`` action with a 5.x.x status is
hard; a 4.x.x status or a ``delayed`` action is soft. Mail that is no bounce gives ``None``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from typing import cast

from flufl.bounce import all_failures

log = logging.getLogger("breachflow.bounces")
_TOKEN = re.compile(r"[0-9a-f]{20}")  # mime.new_message_id
_MESSAGE_ID_LINE = re.compile(rb"^Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_ADDRESSED_TO = ("To", "Delivered-To", "X-Original-To", "Envelope-To")


def token(message_id: str) -> str:
    """The VERP token of one of our Message-IDs (``mime.new_message_id``: ``<hex.reference@domain>``;
    a parser may keep the space of a folded header before it)."""
    return message_id.strip().strip("<>").split(".", 1)[0]


def return_path(bounce_address: str, message_id: str) -> str:
    """The envelope sender of message ``message_id``: ``local+<token>@domain``."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{token(message_id)}@{domain}"


@dataclass(frozen=True)
class Failure:
    """One recipient the bounce reports: its address, the status code when there is one, and whether
    the failure is permanent (hard)."""

    address: str
    status: str | None
    hard: bool


@dataclass(frozen=True)
class Bounce:
    """A bounce read: the Message-IDs and VERP token that may name our message, what failed, and the
    bounce's own Message-ID (so a bounce read twice is recognised)."""

    message_ids: tuple[str, ...]
    token: str | None
    failures: tuple[Failure, ...]
    bounce_id: str | None


def parse(raw: bytes, bounce_address: str | None = None) -> Bounce | None:
    """The bounce in ``raw``, or ``None`` for mail that is no bounce or that cannot be read."""
    try:
        message = message_from_bytes(raw, policy=policy.compat32)
        failures = _dsn_failures(message) or _other_failures(message)
        if not failures:
            return None
        return Bounce(tuple(_message_ids(message, raw)), _verp_token(message, bounce_address), tuple(failures),
                      (message["Message-ID"] or "").strip() or None)
    except Exception:  # noqa: BLE001  (mail from anyone: what cannot be read is no bounce of ours)
        log.info("a message in the bounce mailbox cannot be read as a bounce", exc_info=True)
        return None


def _dsn_failures(message: Message) -> list[Failure]:
    """The failed and delayed recipients of an RFC 3464 report."""
    if message.get_content_type() != "multipart/report":
        return []
    failures = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for fields in cast(list[Message], part.get_payload())[1:]:  # the per-message fields come first
            action = (fields["Action"] or "").strip().lower()
            status = (fields["Status"] or "").strip().split(" ")[0] or None
            if action not in ("failed", "delayed"):
                continue
            hard = action == "failed" and (status or "5").startswith("5")
            # the address we sent to (Original-Recipient) may have been forwarded to the one that failed
            for name in ("Original-Recipient", "Final-Recipient"):
                address = _address(str(fields[name] or ""))
                if address:
                    failures.append(Failure(address, status, hard))
    return list(dict.fromkeys(failures))


def _other_failures(message: Message) -> list[Failure]:
    """A non-standard bounce's recipients, as ``flufl.bounce`` detects them."""
    temporary, permanent = all_failures(message)
    return ([Failure(a.decode("utf-8", "replace").lower(), None, True) for a in sorted(permanent)]
            + [Failure(a.decode("utf-8", "replace").lower(), None, False) for a in sorted(temporary - permanent)])


def _address(field: str) -> str:
    """``rfc822; someone@example.nl`` (or ``<someone@example.nl> (a comment)``) → ``someone@example.nl``."""
    return parseaddr(field.rpartition(";")[2])[1].lower()


def _message_ids(message: Message, raw: bytes) -> list[str]:
    """The Message-IDs of what came back: of an attached message or its headers, else of header lines
    quoted in the text."""
    found = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            attached = cast(Message, payload[0] if isinstance(payload, list) else payload)
            found.append(attached["Message-ID"])
        elif kind == "text/rfc822-headers":
            headers = cast(bytes, part.get_payload(decode=True))  # decoded: the bytes of a non-multipart part
            found.append(BytesHeaderParser(policy=policy.compat32).parsebytes(headers)["Message-ID"])
    own = (message["Message-ID"] or "").encode()
    found += [m.decode("ascii", "replace") for m in _MESSAGE_ID_LINE.findall(raw.split(b"\n\n", 1)[-1]) if m != own]
    return list(dict.fromkeys(str(m).strip() for m in found if m))


def _verp_token(message: Message, bounce_address: str | None) -> str | None:
    """The token of the VERP address the bounce was sent to (``local+token@domain``)."""
    if not bounce_address:
        return None
    local, _, domain = bounce_address.lower().rpartition("@")
    headers = [str(v) for name in _ADDRESSED_TO for v in message.get_all(name) or []]
    for _, address in getaddresses(headers):
        mine, _, at = address.lower().rpartition("@")
        if at == domain and mine.startswith(f"{local}+") and _TOKEN.fullmatch(mine[len(local) + 1:]):
            return mine[len(local) + 1:]
    return None
