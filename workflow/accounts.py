"""Accounts and API tokens (seed 4.2–4.3: personal access, authorisation by role).

Roles: ``handler`` (processor staff, every incident command), ``manager`` (reads everything,
changes nothing), ``school`` (bound to one school: sees and reports only its incidents,
acknowledges notices), ``admin`` (schools and users, no incident data).
A token is shown once; only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from breachflow.workflow.context import Context
from breachflow.workflow.db import inserted_id, read_transaction, write_transaction
from breachflow.workflow.errors import FieldProblem, InvalidInput, NotFound, SchoolDestroyed
from breachflow.workflow.models import data_key_t, school_t, token_t, user_t
from breachflow.workflow.schools import ids_by_brin
from breachflow.workflow.validation import EMAIL

TOKEN_PREFIX = "bf_"  # noqa: S105 the public mark of every token, not a secret
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,79}$")


class Role(StrEnum):
    handler = "handler"
    manager = "manager"
    school = "school"
    admin = "admin"


@dataclass(frozen=True)
class Account:
    """Who is calling: the user behind a valid token."""

    id: int
    username: str
    role: Role
    school_id: int | None = None
    school_brin: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is shown once and never stored."""

    id: int
    username: str
    secret: str
    expires_at: datetime | None


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_user(ctx: Context, *, username: str, role: str, school: str | None = None,
             email: str | None = None) -> Account:
    """Create a user; a ``school`` user names its school's BRIN code, other roles none.

    Handlers and managers with an ``email`` receive deadline reminders.
    """
    username = username.strip().lower()
    problems = []
    if email is not None and not EMAIL.match(email.strip()):
        problems.append(FieldProblem("email", f"'{email}' is not an email address"))
    if not USERNAME.match(username):
        problems.append(FieldProblem("username", "use 2–80 lowercase letters, digits and . _ @ -"))
    try:
        kind = Role(role)
    except ValueError:
        problems.append(FieldProblem("role", f"must be one of {', '.join(Role)}"))
    else:
        if kind is Role.school and not school:
            problems.append(FieldProblem("school", "a school user needs the BRIN code of its school"))
        if kind is not Role.school and school:
            problems.append(FieldProblem("school", f"only school users belong to a school, not a {kind.value}"))
    if problems:
        raise InvalidInput("invalid user", problems)
    with write_transaction(ctx.engine) as conn:
        if conn.execute(sa.select(user_t.c.id).where(user_t.c.username == username)).first():
            raise InvalidInput("invalid user", [FieldProblem("username", f"user {username} already exists")])
        school_id = ids_by_brin(conn, [school], "school")[school.strip().upper()] if school else None
        refuse_destroyed_school(conn, school_id)
        try:
            user_id = inserted_id(conn.execute(
                sa.insert(user_t).values(username=username, role=kind.value, school_id=school_id,
                                         email=email.strip() if email else None, created_at=datetime.now(UTC))
            ))
        except sa.exc.IntegrityError:  # another process added the same name since the check above
            raise InvalidInput("invalid user", [FieldProblem("username", f"user {username} already exists")]) from None
    return Account(user_id, username, kind, school_id, school.strip().upper() if school else None)


def refuse_destroyed_school(conn: Connection, school_id: int | None) -> None:
    """``SchoolDestroyed`` if retention destroyed the data key of school ``school_id``: its accounts
    must not come back (no user, password, address or token)."""
    if school_id is None:
        return
    row = conn.execute(sa.select(school_t.c.brin, data_key_t.c.wrapped)
                       .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id)
                       .where(school_t.c.id == school_id)).first()
    if row is not None and row.wrapped is None:
        raise SchoolDestroyed(f"the retention period of school {row.brin} ended and its data was destroyed: "
                              "it gets no users, passwords, email addresses or tokens any more")


def writable_user(conn: Connection, username: str) -> int:
    """The id of ``username``, to give a password or token; ``NotFound`` if there is no such user,
    ``SchoolDestroyed`` if it belongs to a school retention destroyed."""
    row = conn.execute(sa.select(user_t.c.id, user_t.c.school_id)
                       .where(user_t.c.username == username.strip().lower())).first()
    if row is None:
        raise NotFound(f"user {username} does not exist")
    refuse_destroyed_school(conn, row.school_id)
    return row.id


def accounts_query() -> sa.Select[Any]:
    """Users with the BRIN code of their school (if any): rows for ``account_from``."""
    return sa.select(user_t, school_t.c.brin).outerjoin(school_t, school_t.c.id == user_t.c.school_id)


def account_from(row: sa.Row[Any]) -> Account:
    return Account(row.id, row.username, Role(row.role), row.school_id, row.brin)


def find_user(ctx: Context, username: str) -> Account | None:
    """The user called ``username``, if there is one."""
    with read_transaction(ctx.engine) as conn:
        row = conn.execute(accounts_query().where(user_t.c.username == username.strip().lower())).first()
    return account_from(row) if row is not None else None


def list_users(ctx: Context) -> list[Account]:
    """Every user, by name."""
    with read_transaction(ctx.engine) as conn:
        return [account_from(r) for r in conn.execute(accounts_query().order_by(user_t.c.username))]


def has_users(ctx: Context) -> bool:
    with read_transaction(ctx.engine) as conn:
        return conn.execute(sa.select(user_t.c.id).limit(1)).first() is not None


def create_first_admin(ctx: Context) -> IssuedToken | None:
    """On an installation without users, the user ``admin`` and its token (to show once); ``None``
    once there are users, also when another process starting at the same time made ``admin`` first."""
    if has_users(ctx):
        return None
    try:
        add_user(ctx, username="admin", role="admin")
    except InvalidInput:
        return None
    return create_token(ctx, username="admin", label="first start")


def create_token(ctx: Context, *, username: str, expires_in: timedelta | None = None,
                 label: str | None = None) -> IssuedToken:
    """Issue a token for ``username``, optionally expiring."""
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInput("invalid token", [FieldProblem("expires_in", "must be positive")])
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires_at = now + expires_in if expires_in else None
    with write_transaction(ctx.engine) as conn:
        user_id = writable_user(conn, username)
        token_id = inserted_id(conn.execute(
            sa.insert(token_t).values(user_id=user_id, token_hash=hash_token(secret), label=label,
                                      created_at=now, expires_at=expires_at)
        ))
    return IssuedToken(token_id, username, secret, expires_at)


def revoke_token(ctx: Context, *, token_id: int) -> None:
    """Revoke a token by its id; it stops working at once."""
    with write_transaction(ctx.engine) as conn:
        done = conn.execute(
            sa.update(token_t).where(token_t.c.id == token_id, token_t.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
    if not done:
        raise NotFound(f"no active token with id {token_id}")


_AUTHENTICATE = (
    accounts_query()
    .join(token_t, token_t.c.user_id == user_t.c.id)
    .where(token_t.c.token_hash == sa.bindparam("token_hash"), token_t.c.revoked_at.is_(None))
    .add_columns(token_t.c.expires_at)
)


def authenticate(ctx: Context, secret: str) -> Account | None:
    """The account of a valid, unexpired, unrevoked token; ``None`` otherwise."""
    if not secret.startswith(TOKEN_PREFIX):
        return None  # no connection for what cannot be a token
    with ctx.engine.connect() as conn:
        return account_of(conn, secret)


def account_of(conn: Connection, secret: str) -> Account | None:
    """``authenticate`` on a connection in use: in the transaction of the read the token is for."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    row = conn.execute(_AUTHENTICATE, {"token_hash": hash_token(secret)}).first()
    if row is None or (row.expires_at is not None and row.expires_at <= datetime.now(UTC)):
        return None
    return account_from(row)
