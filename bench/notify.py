"""Benchmark: a platform-wide incident affecting 1,000 schools, from ``confirm`` to the last notice
accepted by a local SMTP sink (bench/smtp_sink.py, in other processes), beside raw aiosmtplib
sending the same 1,000 already-serialised messages over as many reused connections, in one run.

breachflow's time covers the confirm command (guards, rendering 1,000 notices in each school's
language, sealing them into the outbox, one transaction), the dispatcher draining the outbox
(claiming in its default batches, decrypting, sending, recording outcomes on the timeline) and
closing its connections; the raw side's covers connecting, sending and quitting. Beside the wall
clock it reports the CPU of this (the sending) process and of the sink, per message, and how busy
the busiest sink process was: above half busy the sink, not the sender, may be what is measured
(it warns then). With ``--dkim`` breachflow signs every message (a throwaway RSA key, or
``--dkim ed25519``) while the raw side sends the same messages unsigned: the difference is the
cost of signing.

    python bench/notify.py [--schools N] [--rounds R] [--sinks S] [--dkim [rsa|ed25519]] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import aiosmtplib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sqlalchemy as sa  # noqa: E402
from support import cpu_seconds, free_port  # noqa: E402

from breachflow.notifications import dkim  # noqa: E402
from breachflow.notifications.dispatcher import Dispatcher  # noqa: E402
from breachflow.notifications.mailer import mailer_for  # noqa: E402
from breachflow.notifications.models import outbox_t  # noqa: E402
from breachflow.notifications.worker import notifications_context  # noqa: E402
from breachflow.workflow import crypto, files, schools, service  # noqa: E402
from breachflow.workflow.config import Settings  # noqa: E402
from breachflow.workflow.context import Context, initialise  # noqa: E402
from breachflow.workflow.models import data_key_t, incident_t  # noqa: E402

SINKS = 2  # each about a quarter busy at the raw sender's pace; --sinks for more
BUSY = 0.5  # a sink process busier than this may be what bounds the raw side
CONFIRM = {
    "summary": "Alle ouders konden tijdelijk elkaars berichten in het Ouderportaal zien",
    "nature_how": "Een fout in een update van de berichtenmodule",
    "nature_actions": ["read"],
    "affected_systems": ["parent_portal"],
    "cause_category": "system_technical",
}


class Sinks:
    """``count`` bench/smtp_sink.py processes sharing ``port``."""

    def __init__(self, count: int) -> None:
        self.port = free_port()
        self.processes = [subprocess.Popen([sys.executable, str(HERE / "smtp_sink.py"), str(self.port)],
                                           stdout=subprocess.PIPE, text=True) for _ in range(count)]

    def wait_ready(self) -> None:
        for process in self.processes:
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"SMTP sink did not start on port {self.port}")

    def cpu(self) -> list[float]:
        return [cpu_seconds(p.pid) for p in self.processes]

    def stop(self) -> int:
        """Stop every sink; the number of messages they accepted in all."""
        for process in self.processes:
            process.terminate()
        said = [process.communicate(timeout=30)[0].strip() for process in self.processes]
        return sum(int(count) for count in said if count)  # a sink that said nothing accepted nothing we know of


@contextmanager
def running_sinks(count: int) -> Iterator[Sinks]:
    sinks = Sinks(count)
    try:
        sinks.wait_ready()
        yield sinks
    finally:
        for process in sinks.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@dataclass
class Usage:
    """Wall-clock seconds, this process's CPU seconds and each sink process's CPU seconds."""

    wall: float
    cpu: float
    sink: list[float]

    @classmethod
    def now(cls, sinks: Sinks) -> Usage:
        return cls(time.perf_counter(), time.process_time(), sinks.cpu())

    def since(self, start: Usage) -> Usage:
        return Usage(self.wall - start.wall, self.cpu - start.cpu,
                     [b - a for a, b in zip(start.sink, self.sink, strict=True)])


def prepare(directory: Path, count: int, rounds: int, port: int, signing: str | None) -> tuple[Context, list[str]]:
    """``count`` schools and ``rounds`` incidents in triage, each affecting every school; the
    dispatcher keeps its default batch size and number of connections; with ``signing`` (a key
    type) it signs with a new DKIM key."""
    signed = {}
    if signing:
        files.write_private(directory / "dkim.pem", dkim.generate(signing)[1], replace=False)
        signed = {"dkim_selector": "bench", "dkim_key_file": directory / "dkim.pem"}
    settings = Settings(data_dir=directory / "var", smtp_host="127.0.0.1", smtp_port=port, **signed)
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


async def breachflow_round(ctx: Context, reference: str, sinks: Sinks) -> tuple[Usage, dict[str, int]]:
    """From confirm to the last message accepted and the connections closed."""
    start = Usage.now(sinks)
    await asyncio.to_thread(service.fire, ctx, reference=reference, trigger="confirm", actor="bench",
                            fields=CONFIRM)
    mailer = mailer_for(ctx.settings)  # signing when configured
    counts = await Dispatcher(ctx, mailer).drain()
    await mailer.close()
    return Usage.now(sinks).since(start), counts


def sent_messages(ctx: Context, reference: str) -> list[tuple[list[str], bytes]]:
    """The serialised messages breachflow sent for ``reference`` (for the raw side to resend)."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox_t.c.recipients, outbox_t.c.sealed, data_key_t.c.wrapped)
            .join(incident_t, incident_t.c.id == outbox_t.c.incident_id)
            .join(data_key_t, data_key_t.c.id == outbox_t.c.data_key_id)  # each school's notices: its own key
            .where(incident_t.c.reference == reference, outbox_t.c.status == "sent")
        ).all()
    opened = []
    for r in rows:
        key = ctx.keys.unwrap(r.wrapped)
        opened.append((crypto.open_sealed(key, r.recipients), crypto.open_bytes(key, r.sealed)))
    return opened


def proper_mime(message: bytes) -> bool:
    """multipart/alternative with UTF-8 text and HTML parts, a Message-ID and a Date, read by the
    standard library's strict parser (any defect raises)."""
    parsed = message_from_bytes(message, policy=policy.strict)
    parts = [p for p in parsed.iter_parts()]
    return (parsed.get_content_type() == "multipart/alternative" and bool(parsed["Message-ID"])
            and bool(parsed["Date"]) and [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
            and all(p.get_content_charset() == "utf-8" for p in parts))


async def raw_round(sinks: Sinks, messages: list[tuple[list[str], bytes]], connections: int) -> Usage:
    """Raw aiosmtplib sending ``messages`` over ``connections`` reused connections, each quit at the end."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in messages:
        queue.put_nowait(item)

    async def connection() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=sinks.port)
        await smtp.connect()
        while not queue.empty():
            recipients, message = queue.get_nowait()
            await smtp.sendmail("privacy@breachflow.localhost", recipients, message)
        await smtp.quit()

    start = Usage.now(sinks)
    await asyncio.gather(*(connection() for _ in range(connections)))
    return Usage.now(sinks).since(start)


def summary(ours: list[Usage], raw: list[Usage], schools: int, sinks: int, received: int,
            settings: Settings) -> dict:
    def per_message_ms(values: list[float]) -> float:
        return round(1000 * statistics.median(values) / schools, 3)

    wall = {"breachflow": statistics.median(u.wall for u in ours), "raw": statistics.median(u.wall for u in raw)}
    return {
        "ratio": round(statistics.median(r.wall / o.wall for r, o in zip(raw, ours, strict=True)), 3),
        "breachflow_seconds": round(wall["breachflow"], 3),
        "raw_seconds": round(wall["raw"], 3),
        "breachflow_messages_per_s": round(schools / wall["breachflow"]),
        "raw_messages_per_s": round(schools / wall["raw"]),
        "cpu_ratio": round(statistics.median(r.cpu / o.cpu for r, o in zip(raw, ours, strict=True)), 3),
        "breachflow_cpu_ms_per_message": per_message_ms([u.cpu for u in ours]),
        "raw_cpu_ms_per_message": per_message_ms([u.cpu for u in raw]),
        # the raw sender's CPU over its wall clock: near 1, it is bounded by itself, not by the sink
        "raw_sender_busy": round(statistics.median(u.cpu / u.wall for u in raw), 3),
        "sink": {
            "processes": sinks,
            "cpu_ms_per_message_raw": per_message_ms([sum(u.sink) for u in raw]),
            "cpu_ms_per_message_breachflow": per_message_ms([sum(u.sink) for u in ours]),
            "busiest_process_busy_raw": round(max(max(u.sink) / u.wall for u in raw), 3),
            "busiest_process_busy_breachflow": round(max(max(u.sink) / u.wall for u in ours), 3),
            "messages_received": received,
        },
        "schools": schools, "rounds": len(ours), "connections": settings.smtp_connections,
        "dispatch_batch": settings.dispatch_batch, "cpus": os.cpu_count(), "target": 0.4,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sinks", type=int, default=SINKS, help="SMTP sink processes")
    parser.add_argument("--dkim", nargs="?", const="rsa", choices=["rsa", "ed25519"],
                        help="breachflow signs with a throwaway DKIM key of this type (default: rsa)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with running_sinks(args.sinks) as sinks, tempfile.TemporaryDirectory(prefix="breachflow-bench-notify-") as tmp:
        ctx, refs = prepare(Path(tmp), args.schools, args.rounds, sinks.port, args.dkim)
        ours: list[Usage] = []
        raw: list[Usage] = []
        mime_ok = True
        for n, ref in enumerate(refs):
            usage, counts = asyncio.run(breachflow_round(ctx, ref, sinks))
            if counts["sent"] != args.schools:
                raise RuntimeError(f"sent {counts} of {args.schools}")
            messages = sent_messages(ctx, ref)
            mime_ok = mime_ok and all(proper_mime(m) for _, m in messages[:: max(1, len(messages) // 50)])
            ours.append(usage)
            raw.append(asyncio.run(raw_round(sinks, messages, ctx.settings.smtp_connections)))
            print(f"  round {n + 1}/{args.rounds}: breachflow {ours[-1].wall:.3f} s, raw {raw[-1].wall:.3f} s; "
                  f"sink CPU {sum(ours[-1].sink):.2f} s, {sum(raw[-1].sink):.2f} s", file=sys.stderr)
        ctx.engine.dispose()
        received = sinks.stop()
    if received != 2 * args.schools * args.rounds:
        raise RuntimeError(f"the sinks accepted {received} of {2 * args.schools * args.rounds} messages")

    result = summary(ours, raw, args.schools, args.sinks, received, ctx.settings) | {"proper_mime": mime_ok, "dkim": args.dkim}
    sink = result["sink"]
    if sink["busiest_process_busy_raw"] > BUSY:
        print(f"warning: a sink process was {sink['busiest_process_busy_raw']:.0%} busy during a raw round; "
              "it may bound the raw side: run with more --sinks", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return
    print(f"breachflow, confirm → last of {args.schools} notices accepted: {result['breachflow_seconds']} s "
          f"({result['breachflow_messages_per_s']}/s), {result['breachflow_cpu_ms_per_message']} ms CPU a message")
    print(f"raw aiosmtplib, {args.schools} serialised messages, {result['connections']} connections: "
          f"{result['raw_seconds']} s ({result['raw_messages_per_s']}/s), "
          f"{result['raw_cpu_ms_per_message']} ms CPU a message, sender {result['raw_sender_busy']:.0%} busy")
    print(f"sink, {args.sinks} processes: {sink['cpu_ms_per_message_raw']} ms CPU a raw message, busiest process "
          f"{sink['busiest_process_busy_raw']:.0%} busy during the raw rounds")
    print(f"ratio (raw time / breachflow time): {result['ratio']} (target ≥ 0.4); "
          f"CPU ratio: {result['cpu_ratio']}; proper MIME: {mime_ok}; DKIM: {args.dkim or 'off'}")


if __name__ == "__main__":
    main()
