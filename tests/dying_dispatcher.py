"""A dispatcher in its own process, for the test that kills it in the middle of a batch."""

from __future__ import annotations

import asyncio

from notifications.dispatcher import Dispatcher
from notifications.mailer import SmtpMailer
from workflow.config import Settings
from workflow.context import Context

if __name__ == "__main__":
    settings = Settings()  # from the BREACHFLOW_* variables the test hands over
    ctx = Context.open(settings)
    asyncio.run(Dispatcher(ctx, SmtpMailer(settings)).run_once())
