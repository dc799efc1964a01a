"""Signed links: the link in a notice opens one incident for one school until it expires.

A link is ``<reference>.<brin>.<expiry>.<signature>``: the signature is an HMAC-SHA256 over the
rest under a key derived from the audit key (HKDF, its own label), so nothing new has to be kept
and a link cannot be bent to another incident, another school or a later expiry. Opening a link
changes nothing; it grants reading that school's part of that incident and acknowledging it.

The same key signs the pages' CSRF tokens (``form_token``): a token is bound to one session (or,
before signing in, to one browser's nonce cookie) and to nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LINK = re.compile(r"^(DL-\d{4}-\d{1,9})\.([0-9A-Z]{4}(?:[0-9A-Z]{2})?)\.(\d{1,12})\.([A-Za-z0-9_-]{43})$")


@cache
def _key(audit_key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"breachflow " + purpose).derive(audit_key)


def _sign(audit_key: bytes, purpose: bytes, message: str) -> str:
    digest = hmac.new(_key(audit_key, purpose), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class Link:
    """What a valid link grants: ``brin``'s part of incident ``reference`` until ``expires_at``."""

    reference: str
    brin: str
    expires_at: datetime


def make(audit_key: bytes, *, reference: str, brin: str, valid_for: timedelta, now: datetime | None = None) -> str:
    """The signed token of a link to ``reference`` for school ``brin``."""
    expires = int(((now or datetime.now(UTC)) + valid_for).timestamp())
    message = f"{reference}.{brin}.{expires}"
    return f"{message}.{_sign(audit_key, b'links', message)}"


def opened(audit_key: bytes, token: str, now: datetime | None = None) -> Link | None:
    """What ``token`` grants, or ``None`` if it is not one breachflow signed or it has expired."""
    match = LINK.match(token)
    if match is None:
        return None
    reference, brin, expires, signature = match.groups()
    if not hmac.compare_digest(signature, _sign(audit_key, b"links", f"{reference}.{brin}.{expires}")):
        return None
    expires_at = datetime.fromtimestamp(int(expires), UTC)
    if expires_at <= (now or datetime.now(UTC)):
        return None
    return Link(reference, brin, expires_at)


def form_token(audit_key: bytes, bound_to: str) -> str:
    """The CSRF token of the forms of one session or one browser (``bound_to``)."""
    return _sign(audit_key, b"forms", bound_to)


def form_token_matches(audit_key: bytes, bound_to: str, given: str) -> bool:
    """Whether ``given`` is the CSRF token for ``bound_to``."""
    return bool(bound_to) and hmac.compare_digest(given.encode(), form_token(audit_key, bound_to).encode())
