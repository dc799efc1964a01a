"""One lock order everywhere: incident first. A handler logging a contact right after confirm
races the dispatcher recording that confirm's notice; neither may fail or deadlock."""

from __future__ import annotations

import asyncio
import logging
import threading

from conftest import CONFIRM, reported
from notify_support import drain, smtp_context

from breachflow.notifications.dispatcher import Dispatcher
from breachflow.notifications.mailer import SmtpMailer
from breachflow.workflow import audit, queries, schools, service

ROUNDS = 40


def test_confirm_then_contact_races_the_dispatcher_without_a_failure(ctx, smtp, caplog):
    schools.add(ctx, brin="12AB", name="De Regenboog", contacts=["directie@regenboog.nl"])
    mail = smtp_context(ctx, smtp.port, dispatch_poll_seconds=0.01)
    refs = [reported(mail) for _ in range(ROUNDS)]
    for ref in refs:
        service.fire(mail, reference=ref, trigger="begin_triage", actor="hanna")

    stop = threading.Event()

    def dispatch() -> None:
        async def run() -> None:
            halt, wake = asyncio.Event(), asyncio.Event()
            task = asyncio.create_task(Dispatcher(mail, SmtpMailer(mail.settings)).run(halt, wake))
            while not stop.is_set():
                wake.set()
                await asyncio.sleep(0.001)
            halt.set()
            await task

        asyncio.run(run())

    dispatcher = threading.Thread(target=dispatch)
    caplog.set_level(logging.WARNING, logger="breachflow.dispatcher")
    dispatcher.start()
    failures = []
    try:
        for ref in refs:
            service.fire(mail, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
            try:
                service.log_contact(mail, reference=ref, actor="hanna", brin="12AB", channel="phone",
                                    summary="Director called back")
            except Exception as exc:  # noqa: BLE001  (every failure is the finding)
                failures.append(f"{ref}: {type(exc).__name__}: {exc}")
    finally:
        stop.set()
        dispatcher.join(timeout=60)
    drain(mail)  # what the halted dispatcher gave back unsent
    assert failures == []
    assert [r.getMessage() for r in caplog.records if "failed" in r.getMessage()] == []
    assert len(smtp.received) == ROUNDS
    assert all(queries.get(mail, ref).schools[0].informed_at is not None for ref in refs)
    assert audit.verify(mail).findings == []
