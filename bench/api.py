"""Benchmark: breachflow's HTTP API against bare FastAPI endpoints, a write and a read.

Both run under uvicorn (one worker each, separate processes) on loopback, on identical copies of
one SQLite database (WAL, synchronous=FULL); this process is the load: 1 and then 16 concurrent
keep-alive clients. The write fires ``begin_triage`` on a fresh incident per request; breachflow's
requests are authenticated (bearer token) and go through guards, hash chain and encryption; its
in-process worker is off (``begin_triage`` queues no mail), so both sides do only the request.
The read is ``GET /api/v1/incidents/{reference}`` against a bare endpoint that selects the same row
with raw SQL and opens it with the same key scheme (bench/bare_app.py).

Every cell (side × clients) runs ``--runs`` times, bare and breachflow in turn, and the median run
is reported, so that neither side is flattered by running while the machine was quieter.

    python bench/api.py [--requests N] [--runs R] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine import prepare  # noqa: E402
from support import cpu_seconds, free_port, wait_for_port  # noqa: E402

from breachflow.workflow import accounts, keystore, service  # noqa: E402
from breachflow.workflow.context import Context  # noqa: E402

CONCURRENCY = (1, 16)
SIDES = ("bare", "breachflow")
READ_SET = 500  # incidents the reads go round: fewer data keys than either side caches
READ_FIELDS = {
    "summary": "Alle ouders konden tijdelijk elkaars berichten in het Ouderportaal zien",
    "nature_how": "Een fout in een update van de berichtenmodule toonde berichten aan de verkeerde ouders",
    "nature_actions": ["read"],
    "affected_systems": ["parent_portal"],
    "affected_groups": [{"group": "parents", "severity": "limited",
                         "consequences": "Berichten over hun kinderen gelezen door andere ouders"}],
    "reporter_name": "J. de Vries",
    "reporter_contact": "j.devries@example.nl",
    "group_size_min": 100,
    "group_size_max": 250,
}


def start(app: str, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning", "--no-access-log"]
        + (["--factory"] if app.endswith("environment") else []),
        env=os.environ | env, cwd=cwd,
    )
    wait_for_port(port, process, app)
    return process


async def client(port: int, method: str, paths: asyncio.Queue, headers: bytes, latencies: list[float]) -> None:
    """One keep-alive HTTP/1.1 connection sending requests until the queue is empty."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not paths.empty():
            path = paths.get_nowait()
            request = (f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n".encode()
                       + headers + b"\r\n")
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status_line:
                raise RuntimeError(f"{method} {path}: {status_line!r}")
    finally:
        writer.close()


async def load(server: subprocess.Popen, port: int, method: str, paths: list[str], clients: int,
               headers: bytes) -> dict[str, float]:
    """Throughput, latencies and the server process's CPU per request."""
    queue: asyncio.Queue = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    latencies: list[float] = []
    started, cpu = time.perf_counter(), cpu_seconds(server.pid)
    await asyncio.gather(*(client(port, method, queue, headers, latencies) for _ in range(clients)))
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(server.pid) - cpu
    latencies.sort()
    return {
        "rps": len(paths) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "server_cpu_ms": 1000 * cpu / len(paths),
    }


def prepare_reads(ctx: Context, count: int) -> list[str]:
    """``count`` incidents in triage with a filled-in disclosure, for the reads."""
    discovered = datetime.now(UTC) - timedelta(hours=1)
    refs = []
    for _ in range(count):
        ref = service.report(ctx, actor="bench", source="monitoring", schools={"12AB": 30},
                             fields=READ_FIELDS | {"discovered_at": discovered}).reference
        service.fire(ctx, reference=ref, trigger="begin_triage", actor="bench")
        refs.append(ref)
    return refs


def same_incident(ports: dict[str, int], reference: str, token: str) -> dict[str, int]:
    """Check both reads open the same sealed fields of ``reference``; the size of each answer."""
    answers = {}
    for side, path, headers in (("bare", f"/incidents/{reference}", {}),
                                ("breachflow", f"/api/v1/incidents/{reference}", {"Authorization": f"Bearer {token}"})):
        with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{ports[side]}{path}",
                                                           headers=headers)) as response:
            answers[side] = response.read()
    bare, ours = json.loads(answers["bare"]), json.loads(answers["breachflow"])["disclosure"]
    for name in ("summary", "affected_groups", "reporter_contact", "nature_actions"):
        if bare[name] != ours[name]:
            raise RuntimeError(f"{reference}: the bare read's {name} differs from breachflow's")
    return {side: len(answer) for side, answer in answers.items()}


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each measure over the runs, and the runs' throughputs."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {"rps_runs": [r["rps"] for r in runs]}


def rounded(results: dict[str, dict[int, dict]]) -> dict:
    def r(value: object) -> object:
        return [round(v, 1) for v in value] if isinstance(value, list) else round(value, 2)
    return {side: {str(c): {k: r(v) for k, v in m.items()} for c, m in by.items()} for side, by in results.items()}


def ratios(results: dict[str, dict[int, dict]]) -> dict[int, float]:
    return {c: results["breachflow"][c]["rps"] / results["bare"][c]["rps"] for c in CONCURRENCY}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per run of a cell")
    parser.add_argument("--runs", type=int, default=3, help="runs of each cell, bare and breachflow in turn")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="breachflow-bench-api-") as tmp:
        root = Path(tmp)
        settings, refs = prepare(root, args.requests * len(CONCURRENCY) * args.runs)
        ctx = Context.open(settings)
        read_refs = prepare_reads(ctx, READ_SET)
        accounts.add_user(ctx, username="bench", role="handler")
        token = accounts.create_token(ctx, username="bench").secret
        master_keys = b",".join(keystore.read(settings, keystore.MASTER).value).decode()
        ctx.engine.dispose()
        shutil.copy(settings.data_dir / "breachflow.db", root / "bare.db")

        ports = {"breachflow": free_port(), "bare": free_port()}
        servers = {
            "breachflow": start("breachflow.api.main:app_from_environment", ports["breachflow"],
                                {"BREACHFLOW_DATA_DIR": str(settings.data_dir),
                                 "BREACHFLOW_IN_PROCESS_WORKER": "false"}, HERE.parent),
            "bare": start("bare_app:app", ports["bare"],
                          {"BENCH_DB": str(root / "bare.db"), "BENCH_MASTER_KEYS": master_keys}, HERE),
        }
        headers = {"bare": b"", "breachflow": f"Authorization: Bearer {token}\r\n".encode()}
        prefix = {"bare": "/incidents", "breachflow": "/api/v1/incidents"}
        fire_path = {"bare": "fire", "breachflow": "triggers/begin_triage"}
        runs: dict[str, dict[str, dict[int, list]]] = {
            kind: {side: {c: [] for c in CONCURRENCY} for side in SIDES} for kind in ("fire", "read")}
        batches = iter([refs[i:i + args.requests] for i in range(0, len(refs), args.requests)])
        reads = [read_refs[i % READ_SET] for i in range(args.requests)]
        try:
            read_bytes = same_incident(ports, read_refs[0], token)
            for run in range(args.runs):
                for clients in CONCURRENCY:
                    batch = next(batches)
                    for side in SIDES:
                        paths = [f"{prefix[side]}/{r}/{fire_path[side]}" for r in batch]
                        runs["fire"][side][clients].append(
                            asyncio.run(load(servers[side], ports[side], "POST", paths, clients, headers[side])))
                    for side in SIDES:
                        paths = [f"{prefix[side]}/{r}" for r in reads]
                        runs["read"][side][clients].append(
                            asyncio.run(load(servers[side], ports[side], "GET", paths, clients, headers[side])))
                    print(f"  run {run + 1}/{args.runs}, {clients:>2} clients: " + "; ".join(
                        f"{kind} bare {runs[kind]['bare'][clients][-1]['rps']:.0f}/s, "
                        f"breachflow {runs[kind]['breachflow'][clients][-1]['rps']:.0f}/s"
                        for kind in ("fire", "read")), file=sys.stderr)
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=30)

    fire, read = ({side: {c: median_run(runs[kind][side][c]) for c in CONCURRENCY} for side in SIDES}
                  for kind in ("fire", "read"))
    fire_ratios, read_ratios = ratios(fire), ratios(read)
    summary = {
        "ratio": round(min(fire_ratios.values()), 3),
        "ratio_by_clients": {str(c): round(r, 3) for c, r in fire_ratios.items()},
        "p99_ratio": round(fire["breachflow"][16]["p99_ms"] / fire["bare"][16]["p99_ms"], 2),
        "read_ratio": round(min(read_ratios.values()), 3),
        "read_ratio_by_clients": {str(c): round(r, 3) for c, r in read_ratios.items()},
        "read_p99_ms": {side: {str(c): round(read[side][c]["p99_ms"], 2) for c in CONCURRENCY} for side in SIDES},
        "read_bytes": read_bytes,
        "read_server_cpu_ms": {side: {str(c): round(read[side][c]["server_cpu_ms"], 3) for c in CONCURRENCY}
                               for side in SIDES},
        # robust where the machine is shared: bare server CPU per read / breachflow's (worse of 1 and 16 clients)
        "read_cpu_ratio": round(min(read["bare"][c]["server_cpu_ms"] / read["breachflow"][c]["server_cpu_ms"]
                                    for c in CONCURRENCY), 3),
        "read_p99_ratio": round(read["breachflow"][16]["p99_ms"] / read["bare"][16]["p99_ms"], 2),
        "targets": {"ratio": 0.25, "p99_ratio": 4.0, "read_ratio": 0.5},
        "requests": args.requests,
        "runs": args.runs,
        "results": rounded(fire),
        "read_results": rounded(read),
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"median of {args.runs} runs of {args.requests} requests each")
    print(f"{'':8}{'':12}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'server CPU ms':>15}")
    for kind, results in (("fire", fire), ("read", read)):
        for side in SIDES:
            for c in CONCURRENCY:
                r = results[side][c]
                print(f"{kind:8}{side:12}{c:>8}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                      f"{r['server_cpu_ms']:>15.3f}")
    print(f"fire throughput ratio (worst of 1 and 16 clients): {summary['ratio']} (target ≥ 0.25)")
    print(f"fire p99 ratio at 16 clients: {summary['p99_ratio']} (target ≤ 4)")
    print(f"read answers: bare {read_bytes['bare']} bytes (the row), breachflow {read_bytes['breachflow']} bytes "
          "(with schools, AP notifications and deadlines)")
    print(f"read throughput ratio (worst of 1 and 16 clients): {summary['read_ratio']} (target ≥ 0.5); "
          f"p99 ratio at 16 clients: {summary['read_p99_ratio']}; server CPU ratio (bare / breachflow): "
          f"{summary['read_cpu_ratio']}")


if __name__ == "__main__":
    main()
