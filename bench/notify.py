"""Benchmark: a platform-wide incident affecting 1,000 schools, from ``confirm`` to the last notice
accepted by a local aiosmtpd (in another process), beside raw aiosmtplib sending the same 1,000
already-serialised messages over 16 reused connections, in one run.

breachflow's time covers the confirm command (guards, rendering 1,000 notices in each school's
language, sealing them into the outbox, one transaction) and the dispatcher draining the outbox
(claiming, decrypting, sending over 16 reused connections, recording outcomes on the timeline).

    python bench/notify.py [--schools N] [--rounds R] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import aiosmtplib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sqlalchemy as sa  # noqa: E402
from support import free_port, wait_for_port  # noqa: E402

from breachflow.notifications.dispatcher import Dispatcher  # noqa: E402
from breachflow.notifications.mailer import SmtpMailer  # noqa: E402
from breachflow.notifications.models import outbox_t  # noqa: E402
from breachflow.notifications.worker import notifications_context  # noqa: E402
from breachflow.workflow import crypto, schools, service  # noqa: E402
from breachflow.workflow.config import Settings  # noqa: E402
from breachflow.workflow.context import Context, initialise  # noqa: E402
from breachflow.workflow.models import data_key_t, incident_t  # noqa: E402

CONNECTIONS = 16
CONFIRM = {
    "summary": "Alle ouders konden tijdelijk elkaars berichten in het Ouderportaal zien",
    "nature_how": "Een fout in een update van de berichtenmodule",
    "nature_actions": ["read"],
    "affected_systems": ["parent_portal"],
    "cause_category": "system_technical",
}


def prepare(directory: Path, count: int, rounds: int, port: int) -> tuple[Context, list[str]]:
    """``count`` schools and ``rounds`` incidents in triage, each affecting every school."""
    settings = Settings(data_dir=directory / "var", smtp_host="127.0.0.1", smtp_port=port,
                        smtp_connections=CONNECTIONS, dispatch_batch=count)
    initialise(settings)
    ctx = notifications_context(Context.open(settings))
    brins = []
    for n in range(count):
        brin = f"{n // 100:02d}{chr(65 + n // 10 % 10)}{chr(65 + n % 10)}"
        schools.add(ctx, brin=brin, name=f"Basisschool {n}", contacts=[f"directie@school{n}.example.nl"],
                    language="en" if n % 10 == 0 else "nl")
        brins.append(brin)
    discovered = datetime.now(UTC) - timedelta(hours=1)
    refs = []
    for _ in range(rounds):
        ref = service.report(ctx, actor="bench", source="monitoring", schools=dict.fromkeys(brins, 25),
                             fields={"discovered_at": discovered}).reference
        service.fire(ctx, reference=ref, trigger="begin_triage", actor="bench")
        refs.append(ref)
    print(f"  prepared {count} schools and {rounds} incidents", file=sys.stderr)
    return ctx, refs


async def breachflow_round(ctx: Context, reference: str) -> tuple[float, dict[str, int]]:
    """Seconds from confirm to the last message accepted."""
    started = time.perf_counter()
    await asyncio.to_thread(service.fire, ctx, reference=reference, trigger="confirm", actor="bench",
                            fields=CONFIRM)
    dispatcher = Dispatcher(ctx, SmtpMailer(ctx.settings))
    counts = await dispatcher.drain()
    elapsed = time.perf_counter() - started
    await dispatcher.mailer.close()
    return elapsed, counts


def sent_messages(ctx: Context, reference: str) -> list[tuple[list[str], bytes]]:
    """The serialised messages breachflow sent for ``reference`` (for the raw side to resend)."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox_t.c.recipients, outbox_t.c.sealed, data_key_t.c.wrapped)
            .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
            .join(data_key_t, data_key_t.c.id == incident_t.c.data_key_id)
            .where(incident_t.c.reference == reference, outbox_t.c.status == "sent")
        ).all()
    key = ctx.keys.unwrap(rows[0].wrapped)
    return [(crypto.open_sealed(key, r.recipients), crypto.open_bytes(key, r.sealed)) for r in rows]


def proper_mime(message: bytes) -> bool:
    """multipart/alternative with UTF-8 text and HTML parts, a Message-ID and a Date."""
    parsed = message_from_bytes(message, policy=policy.default)
    parts = [p for p in parsed.iter_parts()]
    return (parsed.get_content_type() == "multipart/alternative" and bool(parsed["Message-ID"])
            and bool(parsed["Date"]) and [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
            and all(p.get_content_charset() == "utf-8" for p in parts))


async def raw_round(port: int, messages: list[tuple[list[str], bytes]]) -> float:
    """Seconds for raw aiosmtplib to send ``messages`` over 16 reused connections."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in messages:
        queue.put_nowait(item)

    async def connection() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await smtp.connect()
        while not queue.empty():
            recipients, message = queue.get_nowait()
            await smtp.sendmail("privacy@breachflow.localhost", recipients, message)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                               "-c", "aiosmtpd.handlers.Sink"])
    try:
        wait_for_port(port, server, "aiosmtpd")
        with tempfile.TemporaryDirectory(prefix="breachflow-bench-notify-") as tmp:
            ctx, refs = prepare(Path(tmp), args.schools, args.rounds, port)
            ours, raw, mime_ok = [], [], True
            for n, ref in enumerate(refs):
                elapsed, counts = asyncio.run(breachflow_round(ctx, ref))
                if counts["sent"] != args.schools:
                    raise RuntimeError(f"sent {counts} of {args.schools}")
                messages = sent_messages(ctx, ref)
                mime_ok = mime_ok and all(proper_mime(m) for _, m in messages[:: max(1, len(messages) // 50)])
                ours.append(elapsed)
                raw.append(asyncio.run(raw_round(port, messages)))
                print(f"  round {n + 1}/{args.rounds}: breachflow {ours[-1]:.3f} s, raw {raw[-1]:.3f} s",
                      file=sys.stderr)
            ctx.engine.dispose()
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "ratio": round(statistics.median(r / o for r, o in zip(raw, ours)), 3),
        "breachflow_seconds": round(statistics.median(ours), 3),
        "raw_seconds": round(statistics.median(raw), 3),
        "breachflow_messages_per_s": round(args.schools / statistics.median(ours)),
        "raw_messages_per_s": round(args.schools / statistics.median(raw)),
        "schools": args.schools, "rounds": args.rounds, "connections": CONNECTIONS,
        "proper_mime": mime_ok, "target": 0.4,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"breachflow, confirm → last of {args.schools} notices accepted: {result['breachflow_seconds']} s "
          f"({result['breachflow_messages_per_s']}/s)")
    print(f"raw aiosmtplib, {args.schools} serialised messages, {CONNECTIONS} connections: "
          f"{result['raw_seconds']} s ({result['raw_messages_per_s']}/s)")
    print(f"ratio (raw time / breachflow time): {result['ratio']} (target ≥ 0.4); proper MIME: {mime_ok}")


if __name__ == "__main__":
    main()
