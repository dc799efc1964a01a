"""Signing in to the pages (seed 4.2–4.3): passwords hashed with argon2, browser sessions.

A password is set or reset with ``breachflow user add`` (``set_password``); only its argon2 hash
is stored. A session is a random secret in an HttpOnly cookie; only its SHA-256 is stored. It
ends when its user signs out, ``session_hours`` after sign-in, or after ``session_idle_minutes``
without a request. Resetting a password ends every session of that user.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from breachflow.workflow.accounts import Account, account_from, accounts_query, hash_token, writable_user
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction, write_transaction
from breachflow.workflow.errors import FieldProblem, InvalidInput
from breachflow.workflow.models import session_t, user_t

MIN_PASSWORD = 12
MAX_PASSWORD = 256
LANGUAGES = ("nl", "en")
SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often per session
_hasher = PasswordHasher()
# verified against when the username is unknown, so a wrong name takes as long as a wrong password: the
# hash, with the hasher's parameters, of a random password thrown away (hashing it at import cost every
# process a third of a second)
NOBODY = "$argon2id$v=19$m=65536,t=3,p=4$xRCe80eD6xpAJqw6Or0slg$PrPadDzbgzoPHRLKOEhR43esOC2ho1pNCggANXXiF6g"


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its account, its language and the session's id (for CSRF tokens)."""

    id: int
    account: Account
    language: str


def password_problems(password: str) -> list[FieldProblem]:
    """What is wrong with ``password`` as a new password (empty: it may be set)."""
    if len(password) < MIN_PASSWORD:
        return [FieldProblem("password", f"use at least {MIN_PASSWORD} characters")]
    if len(password) > MAX_PASSWORD:
        return [FieldProblem("password", f"use at most {MAX_PASSWORD} characters")]
    if password.strip() != password:
        return [FieldProblem("password", "must not start or end with a space")]
    return []


def set_password(ctx: Context, *, username: str, password: str) -> None:
    """Set or reset ``username``'s password; every session of that user ends."""
    if problems := password_problems(password):
        raise InvalidInput("invalid password", problems)
    hashed = _hasher.hash(password)
    now = datetime.now(UTC)
    with write_transaction(ctx.engine) as conn:
        user_id = writable_user(conn, username)
        conn.execute(sa.update(user_t).where(user_t.c.id == user_id).values(password_hash=hashed))
        conn.execute(sa.update(session_t).where(session_t.c.user_id == user_id, session_t.c.ended_at.is_(None))
                     .values(ended_at=now))


def set_language(ctx: Context, *, user_id: int, language: str) -> None:
    """The language the pages speak to this user."""
    if language not in LANGUAGES:
        raise InvalidInput("invalid language", [FieldProblem("language", f"must be one of {', '.join(LANGUAGES)}")])
    with write_transaction(ctx.engine) as conn:
        conn.execute(sa.update(user_t).where(user_t.c.id == user_id).values(language=language))


def sign_in(ctx: Context, *, username: str, password: str) -> str | None:
    """A new session's secret (for the cookie) if the password is right, else ``None``.

    Hashes made with older argon2 parameters are replaced with current ones on the way.
    """
    name = username.strip().lower()
    with read_transaction(ctx.engine) as conn:
        row = conn.execute(sa.select(user_t.c.id, user_t.c.password_hash).where(user_t.c.username == name)).first()
    stored = row.password_hash if row is not None and row.password_hash else None
    try:
        _hasher.verify(stored or NOBODY, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or stored is None:
        return None
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with write_transaction(ctx.engine) as conn:
        # the user's sessions that have ended are of no use to anyone: forget them as a new one starts
        conn.execute(sa.delete(session_t).where(
            session_t.c.user_id == row.id,
            session_t.c.ended_at.is_not(None) | (session_t.c.expires_at <= now)
            | (session_t.c.last_seen_at <= now - timedelta(minutes=ctx.settings.session_idle_minutes))))
        if _hasher.check_needs_rehash(stored):
            conn.execute(sa.update(user_t).where(user_t.c.id == row.id).values(password_hash=_hasher.hash(password)))
        conn.execute(sa.insert(session_t).values(
            token_hash=hash_token(secret), user_id=row.id, created_at=now, last_seen_at=now,
            expires_at=now + timedelta(hours=ctx.settings.session_hours)))
    return secret


_SESSION = (
    accounts_query()
    .add_columns(session_t.c.id.label("session_id"), session_t.c.last_seen_at, session_t.c.expires_at)
    .join(session_t, session_t.c.user_id == user_t.c.id)
    .where(session_t.c.token_hash == sa.bindparam("token_hash"), session_t.c.ended_at.is_(None))
)


def session_of(ctx: Context, secret: str) -> Session | None:
    """The live session of a cookie's secret, its idle clock restarted; ``None`` if there is none."""
    if not secret or len(secret) > 100:
        return None
    now = datetime.now(UTC)
    idle = timedelta(minutes=ctx.settings.session_idle_minutes)
    with ctx.engine.connect() as conn:
        row = conn.execute(_SESSION, {"token_hash": hash_token(secret)}).first()
        if row is None or row.expires_at <= now or row.last_seen_at + idle <= now:
            return None
        if now - row.last_seen_at >= SEEN_EVERY:
            conn.execute(sa.update(session_t).where(session_t.c.id == row.session_id).values(last_seen_at=now))
            conn.commit()
    return Session(row.session_id, account_from(row), row.language)


def sign_out(ctx: Context, secret: str) -> None:
    """End the session of a cookie's secret (nothing happens for an unknown one)."""
    with write_transaction(ctx.engine) as conn:
        conn.execute(sa.update(session_t).where(session_t.c.token_hash == hash_token(secret),
                                                session_t.c.ended_at.is_(None)).values(ended_at=datetime.now(UTC)))
