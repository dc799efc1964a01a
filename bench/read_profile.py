"""Profile: where the time of one ``GET /incidents/{reference}`` goes.

The application runs in this process and is called as ASGI directly (no client, no sockets), so
what is measured and profiled is the server's work only: the middleware, FastAPI, the token
lookup, the read, decryption, the response. ``--clients`` coroutines read ``--incidents``
incidents round robin (more than a small data-key cache holds, by default). First a timed pass
(CPU of every thread per request, requests per second), then a profiled one: cProfile on the
event loop and one profiler per worker thread, merged. The profiled pass has one client
(``--profile-clients``): with more, a profiler's clock also runs while its thread waits for the
GIL. The loop's wait for work (``epoll``) is left out of the profile's total. Also counted: pool checkouts per request,
and new database connections opened during the passes.

    python bench/read_profile.py [--incidents N] [--requests N] [--clients N] [--database-url URL]
                                 [--top N] [--save FILE] [--json]

With ``--database-url`` (an empty PostgreSQL database) it runs there, else on SQLite in a temporary
directory.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from cryptography.fernet import Fernet
from sqlalchemy import event

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine import fill  # noqa: E402

from breachflow.api.main import create_app  # noqa: E402
from breachflow.workflow import accounts, keystore, schema  # noqa: E402
from breachflow.workflow.config import Settings  # noqa: E402
from breachflow.workflow.context import Context, initialise  # noqa: E402
from breachflow.workflow.db import engine_for  # noqa: E402

IDLE = {"<method 'poll' of 'select.epoll' objects>"}  # the loop waiting for a worker thread
GROUPS = ("breachflow", "sqlalchemy", "sqlite3", "psycopg", "cryptography", "pydantic", "fastapi", "starlette",
          "anyio", "asyncio", "json", "logging", "threading", "concurrent")


def prepare(settings: Settings, count: int) -> tuple[Context, str, list[str]]:
    """An installation with one school, a handler's token and ``count`` reported incidents."""
    initialise(settings)
    ctx = Context.open(settings)
    accounts.add_user(ctx, username="hanna", role="handler")
    token = accounts.create_token(ctx, username="hanna").secret
    return ctx, token, fill(ctx, count)


async def get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One request straight into the ASGI application; its status."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("bench", 80)}
    status = 0

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def drive(app: Any, paths: list[str], clients: int, token: str) -> None:
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    queue = list(reversed(paths))

    async def client() -> None:
        while queue:
            path = queue.pop()
            if (status := await get(app, path, headers)) != 200:
                raise RuntimeError(f"{path}: {status}")

    await asyncio.gather(*(client() for _ in range(clients)))


def paths_for(refs: list[str], requests: int) -> list[str]:
    return [f"/api/v1/incidents/{refs[n % len(refs)]}" for n in range(requests)]


def timed(app: Any, paths: list[str], clients: int, token: str) -> dict[str, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(drive(app, paths, clients, token))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"requests": len(paths), "requests_per_s": round(len(paths) / wall), "cpu_us_per_request":
            round(cpu / len(paths) * 1e6)}


class ThreadProfiles:
    """cProfile on the loop's thread, and one profiler in each worker thread that anyio runs a call in."""

    def __init__(self) -> None:
        self.main, self.local, self.workers = cProfile.Profile(), threading.local(), []
        self._run_sync = anyio.to_thread.run_sync

    def _wrapped(self, fn: Callable) -> Callable:
        def call(*args: Any) -> Any:
            profile = getattr(self.local, "profile", None)
            if profile is None:
                profile = self.local.profile = cProfile.Profile()
                self.workers.append(profile)
            profile.enable()
            try:
                return fn(*args)
            finally:
                profile.disable()
        return call

    def __enter__(self) -> ThreadProfiles:
        original = self._run_sync

        async def run_sync(fn: Callable, *args: Any, **kwargs: Any) -> Any:
            return await original(self._wrapped(fn), *args, **kwargs)

        anyio.to_thread.run_sync = run_sync
        self.main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.main.disable()
        anyio.to_thread.run_sync = self._run_sync

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats(self.main, stream=io.StringIO())
        for profile in self.workers:
            stats.add(profile)
        return stats


def group_of(filename: str) -> str:
    for group in GROUPS:
        if f"/{group}/" in filename or filename.endswith(f"/{group}.py") or f"{group}/" in filename:
            return group
    if "site-packages" in filename:
        return filename.split("site-packages/")[1].split("/")[0]
    if filename == "~":
        return "builtins (C)"
    return "other: " + Path(filename).name


def breakdown(stats: pstats.Stats, requests: int, top: int) -> dict[str, Any]:
    """Own time by package, and the functions with the most own and cumulative time, in µs per request."""
    per_request = 1e6 / requests
    groups: Counter = Counter()
    rows = []
    for (filename, line, name), (_calls, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        if name in IDLE:
            continue
        groups[group_of(filename)] += tottime
        where = name if filename == "~" else f"{Path(filename).parent.name}/{Path(filename).name}:{line}({name})"
        rows.append((where, ncalls / requests, tottime * per_request, cumtime * per_request))
    total = sum(groups.values()) * per_request
    own = sorted(rows, key=lambda r: -r[2])[:top]
    cumulative = sorted((r for r in rows if "{" not in r[0]), key=lambda r: -r[3])[:top]
    return {
        "profiled_us_per_request": round(total),
        "own_time_by_package_us": {g: round(t * per_request, 1) for g, t in groups.most_common() if t * per_request >= 1},
        "own_time_top": [{"function": w, "calls": round(c, 2), "own_us": round(t, 1), "cum_us": round(cu, 1)}
                         for w, c, t, cu in own],
        "cumulative_top": [{"function": w, "calls": round(c, 2), "own_us": round(t, 1), "cum_us": round(cu, 1)}
                           for w, c, t, cu in cumulative],
    }


def counted(ctx: Context, app: Any, paths: list[str], clients: int, token: str) -> dict[str, float]:
    """Pool checkouts per request and new connections opened, over one pass."""
    counts: Counter = Counter()

    def checkout(*_: object) -> None:
        counts["checkouts"] += 1

    def connect(*_: object) -> None:
        counts["connects"] += 1

    event.listen(ctx.engine.pool, "checkout", checkout)
    event.listen(ctx.engine.pool, "connect", connect)
    try:
        asyncio.run(drive(app, paths, clients, token))
    finally:
        event.remove(ctx.engine.pool, "checkout", checkout)
        event.remove(ctx.engine.pool, "connect", connect)
    return {"checkouts_per_request": round(counts["checkouts"] / len(paths), 3), "connections_opened": counts["connects"]}


def run(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    ctx, token, refs = prepare(settings, args.incidents)
    app = create_app(settings.model_copy(update={"in_process_worker": False}))
    warm = paths_for(refs, len(refs))
    asyncio.run(drive(app, warm, args.clients, token))  # every statement compiled, every key seen once
    paths = paths_for(refs, args.requests)
    result: dict[str, Any] = {"backend": ctx.engine.dialect.name, "incidents": len(refs), "clients": args.clients,
                              **counted(ctx, app, warm, args.clients, token), **timed(app, paths, args.clients, token),
                              "one_client": timed(app, paths, 1, token)}
    with ThreadProfiles() as profiles:
        asyncio.run(drive(app, paths, args.profile_clients, token))
    stats = profiles.stats()
    if args.save:
        stats.dump_stats(args.save)
    result |= breakdown(stats, len(paths), args.top)
    ctx.engine.dispose()
    return result


def show(result: dict[str, Any]) -> None:
    print(f"{result['backend']}: {result['incidents']} incidents, {result['clients']} clients, "
          f"{result['requests']} requests: {result['requests_per_s']} requests/s, "
          f"{result['cpu_us_per_request']} µs CPU per request (unprofiled); "
          f"{result['checkouts_per_request']} pool checkouts per request, "
          f"{result['connections_opened']} connections opened in {result['incidents']} requests; one client: "
          f"{result['one_client']['requests_per_s']} requests/s, {result['one_client']['cpu_us_per_request']} µs CPU")
    print(f"\nprofiled: {result['profiled_us_per_request']} µs per request; own time by package (µs per request):")
    for group, us in result["own_time_by_package_us"].items():
        print(f"  {us:8.1f}  {group}")
    for title, key in (("own time", "own_time_top"), ("cumulative time", "cumulative_top")):
        print(f"\nby {title} (µs per request; calls per request):")
        for row in result[key]:
            print(f"  {row['own_us']:8.1f} own {row['cum_us']:8.1f} cum {row['calls']:7.2f}×  {row['function']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite in a temporary directory)")
    parser.add_argument("--profile-clients", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--save", help="write the merged profile here (pstats; snakeviz and pstats read it)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="breachflow-read-profile-") as tmp:
        if args.database_url:
            if schema.status(engine_for(args.database_url)).state != "empty":
                parser.error("the database holds breachflow tables or a schema revision: give an empty database")
            settings = Settings(data_dir=Path(tmp) / "var", database_url=args.database_url,
                                master_keys=Fernet.generate_key().decode(),
                                audit_key=keystore.AUDIT.generate().decode(),
                                checkpoint_key=keystore.CHECKPOINT.generate().decode())
        else:
            settings = Settings(data_dir=Path(tmp) / "var")
        result = run(settings, args)
    print(json.dumps(result, indent=2) if args.json else "", end="\n" if args.json else "")
    if not args.json:
        show(result)


if __name__ == "__main__":
    main()
