"""Database connections of the API: one checkout for a read of one incident, and never more
connections than the pool keeps, however many requests come at once (on PostgreSQL each one would
be a new server session, opened and closed again)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx2
import pytest
from api_support import SCHOOL_A, SCHOOL_B
from sqlalchemy import event
from sqlalchemy.pool import QueuePool


@pytest.fixture
def pool(api) -> Iterator[tuple[QueuePool, Counter]]:
    """The app's pool and a count of what it does: checkouts, connections opened, and the most
    connections beyond its size it ever held (``overflow``: negative while it holds fewer)."""
    watched: QueuePool = api.client.app.state.ctx.engine.pool
    counts: Counter = Counter(overflow=watched.overflow())

    def checkout(*_: object) -> None:
        counts["checkouts"] += 1
        counts["overflow"] = max(counts["overflow"], watched.overflow())

    def connect(*_: object) -> None:
        counts["connects"] += 1

    event.listen(watched, "checkout", checkout)
    event.listen(watched, "connect", connect)
    yield watched, counts
    event.remove(watched, "checkout", checkout)
    event.remove(watched, "connect", connect)


def test_a_read_of_one_incident_checks_out_one_connection(api, pool):
    ref = api.report()
    _pool, counts = pool
    for user in ("handler", "school_a"):
        counts["checkouts"] = 0
        assert api.call(user, "GET", f"/incidents/{ref}").status_code == 200
        assert counts["checkouts"] == 1, user  # the token lookup and the read in one transaction
    counts["checkouts"] = 0
    assert api.call("school_b", "GET", f"/incidents/{ref}").status_code == 404
    assert counts["checkouts"] == 1


def test_many_concurrent_reads_stay_within_the_pool(api, pool):
    refs = [api.report(schools={SCHOOL_A: 3, SCHOOL_B: 4}) for _ in range(4)]
    watched, counts = pool
    size = watched.size()
    requests = 40 * size  # each request more at once than the pool has connections

    async def read_all() -> list[int]:
        transport = httpx2.ASGITransport(app=api.client.app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test/api/v1",
                                      headers=api.headers("manager")) as client:
            paths = [f"/incidents/{refs[n % len(refs)]}" for n in range(requests)]
            paths += ["/incidents", "/deadlines", "/schools"] * size  # long reads share the connections
            responses = await asyncio.gather(*(client.get(path) for path in paths))
        return [r.status_code for r in responses]

    opened_before = counts["connects"]
    assert set(asyncio.run(read_all())) == {200}
    assert counts["checkouts"] >= requests
    assert counts["overflow"] <= 0, f"the pool opened {counts['overflow']} connections beyond its {size}"
    assert counts["connects"] - opened_before <= size
