"""A context that writes notices, and a dispatcher pointed at the test SMTP server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiosmtplib
import sqlalchemy as sa

from notifications.dispatcher import Dispatcher
from notifications.mailer import SmtpMailer
from notifications.notices import NoticeWriter
from workflow.context import Context
from workflow.models import outbox_t


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
    return ctx.with_notifier(NoticeWriter(ctx.settings, ctx.keys, ctx.periods))


def smtp_context(ctx: Context, port: int, **settings) -> Context:
    configured = type(ctx.settings).model_validate(
        ctx.settings.model_dump(exclude_unset=True)
        | {"smtp_host": "127.0.0.1", "smtp_port": port, **settings}
    )
    return with_notices(Context(configured, ctx.engine, ctx.keys, ctx.periods))


def due_now(ctx: Context) -> None:
    """Skip the backoff: every pending message is due now (instead of sleeping through it)."""
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(outbox_t).where(outbox_t.c.status == "pending")
                     .values(next_attempt_at=datetime.now(UTC)))


class PromptlyClosingMailer(SmtpMailer):
    """``SmtpMailer`` whose connections close their socket at once.

    Closing a TLS connection waits for the server's close_notify; ``drain`` ends its event loop
    right after the mailer closes, so with a busy server thread the socket under TLS stayed open
    and a later test's garbage collection reported it (``_SelectorTransport.__del__``). After QUIT
    or a failure there is nothing left to say: abort the transport. Drop this class once
    ``SmtpMailer`` closes its connections that way itself.
    """

    def _client(self) -> aiosmtplib.SMTP:
        smtp = super()._client()
        close = smtp.close

        def close_now() -> None:
            if smtp.transport is not None:
                smtp.transport.abort()
            close()

        smtp.close = close_now  # quit() and every failure path call it
        return smtp


def drain(ctx: Context) -> dict[str, int]:
    """Run a dispatcher with a fresh SMTP mailer until nothing is due."""

    async def run() -> dict[str, int]:
        dispatcher = Dispatcher(ctx, PromptlyClosingMailer(ctx.settings))
        try:
            return await dispatcher.drain()
        finally:
            await dispatcher.mailer.close()

    return asyncio.run(run())
