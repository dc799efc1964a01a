"""A context that writes notices, and a dispatcher pointed at the test SMTP server."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa

from breachflow.notifications.dispatcher import Dispatcher
from breachflow.notifications.mailer import mailer_for
from breachflow.notifications.models import outbox_t
from breachflow.notifications.notices import NoticeWriter
from breachflow.workflow import crypto
from breachflow.workflow.context import Context
from breachflow.workflow.models import data_key_t, incident_t, school_t


def settings_env(settings) -> dict[str, str]:
    """The BREACHFLOW_* variables that reproduce ``settings`` in another process or the CLI."""
    env = {}
    for name, value in settings.model_dump(exclude_unset=True).items():
        if value is None or isinstance(value, (list, dict)):
            continue
        value = getattr(settings, name)
        value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        env[f"BREACHFLOW_{name.upper()}"] = str(value)
    return env


def with_notices(ctx: Context) -> Context:
    return ctx.with_notifier(NoticeWriter(ctx.settings, ctx.keys, ctx.periods, ctx.audit_key))


def smtp_context(ctx: Context, port: int, **settings) -> Context:
    configured = type(ctx.settings).model_validate(
        ctx.settings.model_dump(exclude_unset=True)
        | {"smtp_host": "127.0.0.1", "smtp_port": port, **settings}
    )
    return with_notices(replace(ctx, settings=configured))


def due_now(ctx: Context) -> None:
    """Skip the backoff: every pending message is due now (instead of sleeping through it)."""
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).where(outbox_t.c.status == "pending")
                     .values(next_attempt_at=datetime.now(UTC)))


def drain(ctx: Context) -> dict[str, int]:
    """Run a dispatcher with a fresh mailer, the one the worker would use (SMTP, DKIM-signing when
    configured), until nothing is due."""

    async def run() -> dict[str, int]:
        dispatcher = Dispatcher(ctx, mailer_for(ctx.settings))
        try:
            return await dispatcher.drain()
        finally:
            await dispatcher.mailer.close()

    return asyncio.run(run())


def plant_contacts(ctx: Context, brin: str, contacts: list[str]) -> None:
    """Seal ``contacts`` as school ``brin``'s, past the checks (as rows from before them were)."""
    with ctx.engine.begin() as conn:
        row = conn.execute(sa.select(school_t.c.id, data_key_t.c.wrapped)
                           .join(data_key_t, data_key_t.c.id == school_t.c.data_key_id)
                           .where(school_t.c.brin == brin)).one()
        conn.execute(sa.update(school_t).where(school_t.c.id == row.id)
                     .values(contacts=crypto.seal(ctx.keys.unwrap(row.wrapped), contacts)))


def outbox_rows(ctx: Context, reference: str | None = None) -> list[sa.Row]:
    """The outbox's messages (about one incident), in the order they were queued."""
    query = sa.select(outbox_t).order_by(outbox_t.c.id)
    if reference is not None:
        query = query.join(incident_t, incident_t.c.id == outbox_t.c.incident_id).where(incident_t.c.reference == reference)
    with ctx.engine.connect() as conn:
        return list(conn.execute(query).all())


def outbox_row(ctx: Context, message_id: int) -> sa.Row:
    """The outbox message ``message_id`` as stored now."""
    with ctx.engine.connect() as conn:
        return conn.execute(sa.select(outbox_t).where(outbox_t.c.id == message_id)).one()


def opened(ctx: Context, message: sa.Row) -> tuple[list[str], bytes]:
    """The recipients and the MIME bytes of a stored outbox message."""
    with ctx.engine.connect() as conn:
        wrapped = conn.execute(sa.select(data_key_t.c.wrapped).where(data_key_t.c.id == message.data_key_id)).scalar_one()
    key = ctx.keys.unwrap(wrapped)
    return crypto.open_sealed(key, message.recipients), crypto.open_bytes(key, message.sealed)
