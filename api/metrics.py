"""Prometheus metrics of one process, served at ``/metrics``.

Figures of the register, the outbox and the workers are read from the database at each scrape
(``DatabaseCollector``: plain columns and indexed counts, nothing decrypted), so every process
reports the same. Requests (by route template, never the raw path) and deliveries are counted by
this process alone: scrape each process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from breachflow.notifications import dispatcher, heartbeat, outbox
from breachflow.workflow import counts
from breachflow.workflow.context import Context
from breachflow.workflow.db import read_transaction

log = logging.getLogger("breachflow.metrics")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no route: the raw path would give every scanner's probe a series of its own


def delivery_registry() -> CollectorRegistry:
    """A registry of this process's delivery counters alone (``breachflow worker --metrics-port``)."""
    registry = CollectorRegistry()
    registry.register(dispatcher.SENT)
    registry.register(dispatcher.FAILED)
    return registry


class DatabaseCollector:
    """Gauges read from the database when scraped, in one read transaction."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        up = GaugeMetricFamily("breachflow_database_up", "Whether the database answered this scrape")
        try:
            with read_transaction(self.ctx.engine) as conn:
                states = counts.incidents_by_state(conn)
                clocks = counts.open_deadlines(conn, self.ctx.periods, now)
                backlog = outbox.backlog(conn, now)
                beats = heartbeat.last_beats(conn)
        except Exception as exc:  # noqa: BLE001  (the scrape still answers, saying the database did not)
            log.warning("metrics: the database could not be read: %s: %s", type(exc).__name__, exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        incidents = GaugeMetricFamily("breachflow_incidents", "Incidents in the register by state", labels=["state"])
        for state, n in states.items():
            incidents.add_metric([state], n)
        yield incidents
        deadlines = GaugeMetricFamily(
            "breachflow_deadlines_open", "Unmet deadlines of incidents in progress by kind and status (ok, due_soon, "
            "overdue)", labels=["kind", "status"])
        for (kind, status), n in clocks.items():
            deadlines.add_metric([kind, status], n)
        yield deadlines
        messages = GaugeMetricFamily("breachflow_outbox_messages", "Messages in the outbox by status (sent ones "
                                     "are counted by breachflow_messages_sent_total)", labels=["status"])
        for status, n in backlog.by_status.items():
            messages.add_metric([status], n)
        yield messages
        yield GaugeMetricFamily("breachflow_outbox_oldest_due_seconds",
                                "How long the longest-due pending message has waited (0: none due)",
                                value=backlog.oldest_due_seconds)
        yield GaugeMetricFamily("breachflow_outbox_expired_claims",
                                "Messages held by a dispatcher past their lease", value=backlog.expired_claims)
        stale = self.ctx.settings.worker_stale_seconds
        yield GaugeMetricFamily("breachflow_workers", f"Workers that beat in the last {stale:g} s",
                                value=sum((now - beat).total_seconds() <= stale for beat in beats))


class Metrics:
    """One application's registry: the database's figures, this process's requests and deliveries."""

    def __init__(self, ctx: Context) -> None:
        self.registry = delivery_registry()
        self.registry.register(DatabaseCollector(ctx))
        self.requests = Counter("breachflow_http_requests", "HTTP requests by method, route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("breachflow_http_request_duration_seconds",
                                 "Time to answer an HTTP request, by method and route template",
                                 ["method", "route"], registry=self.registry)

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """Count one answered request."""
        method = method if method in METHODS else "OTHER"
        route = route or UNMATCHED
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """The exposition text (queries the database)."""
        return generate_latest(self.registry)
