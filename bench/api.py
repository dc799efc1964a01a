"""Benchmark: firing triggers through breachflow's HTTP API against a bare FastAPI endpoint.

Both run under uvicorn (one worker each, separate processes) on loopback, on identical copies of
one SQLite database (WAL, synchronous=FULL); this process is the load: 1 and then 16 concurrent
keep-alive clients, each request firing ``begin_triage`` on a fresh incident. breachflow's
requests are authenticated (bearer token) and go through guards, hash chain and encryption; its
in-process worker is off (``begin_triage`` queues no mail), so both sides do only the request.

    python bench/api.py [--requests N] [--json]
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine import prepare  # noqa: E402
from support import free_port, wait_for_port  # noqa: E402

from breachflow.workflow import accounts  # noqa: E402
from breachflow.workflow.context import Context  # noqa: E402

CONCURRENCY = (1, 16)


def start(app: str, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning", "--no-access-log"]
        + (["--factory"] if app.endswith("environment") else []),
        env=os.environ | env, cwd=cwd,
    )
    wait_for_port(port, process, app)
    return process


async def client(port: int, paths: asyncio.Queue, headers: bytes, latencies: list[float]) -> None:
    """One keep-alive HTTP/1.1 connection firing until the queue is empty."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not paths.empty():
            path = paths.get_nowait()
            request = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n".encode()
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
                raise RuntimeError(f"{path}: {status_line!r}")
    finally:
        writer.close()


async def load(port: int, paths: list[str], clients: int, headers: bytes) -> dict[str, float]:
    queue: asyncio.Queue = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(client(port, queue, headers, latencies) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(paths) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per side and concurrency")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="breachflow-bench-api-") as tmp:
        root = Path(tmp)
        settings, refs = prepare(root, args.requests * len(CONCURRENCY))
        ctx = Context.open(settings)
        accounts.add_user(ctx, username="bench", role="handler")
        token = accounts.create_token(ctx, username="bench").secret
        ctx.engine.dispose()
        shutil.copy(settings.data_dir / "breachflow.db", root / "bare.db")

        ours_port, bare_port = free_port(), free_port()
        servers = [
            start("breachflow.api.main:app_from_environment", ours_port,
                  {"BREACHFLOW_DATA_DIR": str(settings.data_dir), "BREACHFLOW_IN_PROCESS_WORKER": "false"},
                  HERE.parent),
            start("bare_app:app", bare_port, {"BENCH_DB": str(root / "bare.db")}, HERE),
        ]
        results: dict[str, dict[int, dict[str, float]]] = {"bare": {}, "breachflow": {}}
        try:
            for n, clients in enumerate(CONCURRENCY):
                batch = refs[n * args.requests:(n + 1) * args.requests]
                results["bare"][clients] = asyncio.run(
                    load(bare_port, [f"/incidents/{r}/fire" for r in batch], clients, b""))
                results["breachflow"][clients] = asyncio.run(
                    load(ours_port, [f"/api/v1/incidents/{r}/triggers/begin_triage" for r in batch], clients,
                         f"Authorization: Bearer {token}\r\n".encode()))
                print(f"  {clients:>2} clients: bare {results['bare'][clients]['rps']:.0f}/s, "
                      f"breachflow {results['breachflow'][clients]['rps']:.0f}/s", file=sys.stderr)
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)

    ratios = {c: results["breachflow"][c]["rps"] / results["bare"][c]["rps"] for c in CONCURRENCY}
    summary = {
        "ratio": round(min(ratios.values()), 3),
        "ratio_by_clients": {str(c): round(r, 3) for c, r in ratios.items()},
        "p99_ratio": round(results["breachflow"][16]["p99_ms"] / results["bare"][16]["p99_ms"], 2),
        "targets": {"ratio": 0.25, "p99_ratio": 4.0},
        "requests": args.requests,
        "results": {side: {str(c): {k: round(v, 2) for k, v in r.items()} for c, r in by.items()}
                    for side, by in results.items()},
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{'':12}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for side in ("bare", "breachflow"):
        for c in CONCURRENCY:
            r = results[side][c]
            print(f"{side:12}{c:>8}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}")
    print(f"throughput ratio (worst of 1 and 16 clients): {summary['ratio']} (target ≥ 0.25)")
    print(f"p99 ratio at 16 clients: {summary['p99_ratio']} (target ≤ 4)")


if __name__ == "__main__":
    main()
