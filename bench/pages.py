"""Benchmark: whether the dashboard's first page grows with the number of incidents in progress.

Two SQLite installations are filled, one with 100 and one with 10,000 incidents in progress (of
every four: one reported with a running clock, one in triage, one confirmed, and one reported
without a discovery time, so with no clock running; their clocks spread over five days, overdue
ones included), over 50 schools. Each is served by breachflow's own application, in this process,
through Starlette's TestClient: a real HTTP request with a signed-in handler's session cookie,
through the middleware, the session check, the read and the template.

The two are measured in turn, ``--rounds`` times (interleaved, so neither is flattered by a
quieter moment of the machine), ``--requests`` requests each per round; each size's figure is the
median of all its requests' wall times (and, beside it, of their CPU in this process, client and
application together). The target is ``t10000 / t100`` ≤ 2.

The incidents are loaded through breachflow's own service layer with SQLite's ``synchronous=OFF``
on the loading connection only (as bench/scale.py does); the measured application runs with
breachflow's settings.

    python bench/pages.py [--rounds 7] [--requests 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scale import CONFIRM, loading_context  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from breachflow.api.main import create_app  # noqa: E402
from breachflow.api.web.auth import SESSION_COOKIE  # noqa: E402
from breachflow.workflow import accounts, schools, service, sessions  # noqa: E402
from breachflow.workflow.config import Settings  # noqa: E402
from breachflow.workflow.context import initialise  # noqa: E402

SIZES = (100, 10_000)
SCHOOLS = 50
TARGET = 2.0
PASSWORD = "bench password of the handler"
ROW = re.compile(r'<th scope="row"><a href="/incidents/')


def brin(n: int) -> str:
    return f"{n % 100:02d}B{'ABCDEFGHIJ'[n // 100]}"


def fill(directory: Path, size: int, now: datetime) -> Settings:
    """An installation with ``size`` incidents in progress and a handler with a password."""
    settings = Settings(data_dir=directory / "var", in_process_worker=False)
    initialise(settings)
    ctx = loading_context(settings)
    for n in range(SCHOOLS):
        schools.add(ctx, brin=brin(n), name=f"School {n}", contacts=[f"office@school{n}.example.nl"])
    accounts.add_user(ctx, username="handler", role="handler")
    sessions.set_password(ctx, username="handler", password=PASSWORD)
    for n in range(size):
        kind = n % 4
        fields = {"summary": f"Report {n}"}
        if kind != 3:
            fields["discovered_at"] = now - timedelta(hours=(n * 7919) % (24 * 5) + 1)
        ref = service.report(ctx, actor="loader", source="monitoring", schools={brin(n % SCHOOLS): 25},
                             fields=fields).reference
        if kind in (1, 2):
            service.fire(ctx, reference=ref, trigger="begin_triage", actor="hanna")
        if kind == 2:
            service.fire(ctx, reference=ref, trigger="confirm", actor="hanna", fields=CONFIRM)
        if (n + 1) % 2000 == 0:
            print(f"  loaded {n + 1} of {size} incidents", file=sys.stderr)
    ctx.engine.dispose()
    return settings


def signed_in(settings: Settings) -> TestClient:
    """A client of the installation's application with the handler's session cookie."""
    app = create_app(settings)
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    secret = sessions.sign_in(app.state.ctx, username="handler", password=PASSWORD)
    client.cookies.set(SESSION_COOKIE, secret)
    return client


def first_page(client: TestClient) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process: client and application) of one GET of the
    dashboard's first page."""
    started, cpu = time.perf_counter(), time.process_time()
    response = client.get("/dashboard")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if response.status_code != 200 or len(ROW.findall(response.text)) != 50:
        raise RuntimeError(f"/dashboard: {response.status_code}, {len(ROW.findall(response.text))} rows")
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--requests", type=int, default=20, help="requests per size and round")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="breachflow-bench-pages-") as tmp:
        clients, loaded_s = {}, {}
        for size in SIZES:
            started = time.perf_counter()
            clients[size] = signed_in(fill(Path(tmp) / str(size), size, now))
            loaded_s[size] = round(time.perf_counter() - started, 1)
            first_page(clients[size])  # warm: templates compiled, connections open
        times: dict[int, list[tuple[float, float]]] = {size: [] for size in SIZES}
        for round_ in range(args.rounds):
            for size in SIZES if round_ % 2 == 0 else SIZES[::-1]:
                times[size] += [first_page(clients[size]) for _ in range(args.requests)]
        for client in clients.values():
            client.app.state.ctx.engine.dispose()

    small, large = (1000 * statistics.median(wall for wall, _ in times[size]) for size in SIZES)
    cpu_small, cpu_large = (1000 * statistics.median(cpu for _, cpu in times[size]) for size in SIZES)
    summary = {"ratio": round(large / small, 2), "t100_ms": round(small, 2), "t10000_ms": round(large, 2),
               "cpu_ratio": round(cpu_large / cpu_small, 2), "cpu100_ms": round(cpu_small, 2),
               "cpu10000_ms": round(cpu_large, 2), "target": TARGET, "requests_per_size": args.rounds * args.requests,
               "load_s": loaded_s}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"dashboard first page: {small:.2f} ms at {SIZES[0]}, {large:.2f} ms at {SIZES[1]} open incidents; "
          f"ratio {summary['ratio']} ({'ok' if summary['ratio'] <= TARGET else 'ABOVE TARGET'} ≤ {TARGET}); "
          f"CPU {cpu_small:.2f} ms and {cpu_large:.2f} ms, ratio {summary['cpu_ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
