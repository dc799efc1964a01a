"""A dispatcher in a process of its own, configured by the BREACHFLOW_* variables a test hands over.

``once``: one batch (the test that kills it mid-batch); ``drain``: until nothing is due.
"""

from __future__ import annotations

import asyncio
import sys

from breachflow.notifications.dispatcher import Dispatcher
from breachflow.notifications.mailer import SmtpMailer
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context


async def main(mode: str) -> None:
    settings = Settings()
    dispatcher = Dispatcher(Context.open(settings), SmtpMailer(settings))
    await (dispatcher.run_once() if mode == "once" else dispatcher.drain())
    await dispatcher.mailer.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
