"""Prometheus metrics (``prometheus-client``) and the per-request observer.

Two kinds of figures. What *happens* — requests by route template, method and status with
their latency, writes by outcome with theirs, store errors — is counted as it happens, in this
process's default registry (a scrape reads counters, never recomputes them). What the process
*is* — its index position, the log head and lags, the projections' lags, the decision memo,
the connection pool, decisions by outcome and layer, the read replica's lag — is read from the
runtime at scrape time by ``RuntimeCollector``, so the metrics of one app never mix with
another's in the same process (tests build many).

``RequestObserver`` is a plain ASGI middleware on the hot path of ``POST /v1/authorize``: two
clock reads, one dictionary lookup of the labelled histogram (children are cached, so the
labels are resolved once per route, method and status) and one ``observe``; the log line is
built only when the ``mandate.requests`` logger would write it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from eventsourcing.persistence import InterfaceError, OperationalError
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mandate.api.middleware.http_only import HttpOnlyMiddleware
from mandate.api.middleware.request_ids import SCOPE_KEY as REQUEST_ID_KEY
from mandate.api.observability.logs import CALLER_KEY, REQUESTS, log_request
from mandate.api.outages import StoreUnavailable, WriteNotApplied
from mandate.domain.common.errors import Conflict, DomainError

if TYPE_CHECKING:
    from mandate.api.runtime import Runtime

__all__ = [
    "HTTP_SECONDS",
    "STORE_ERRORS",
    "WRITE_SECONDS",
    "RequestObserver",
    "RuntimeCollector",
    "exposition",
    "observe_write",
]

# ``*_created`` series (one per label set) double the exposition and no alert reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

HTTP_SECONDS: Final = Histogram(
    "mandate_http_request_duration_seconds",
    "HTTP requests by route template, method and status, and how long they took "
    "(rate(..._count) is the request rate).",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
)
WRITE_SECONDS: Final = Histogram(
    "mandate_write_duration_seconds",
    "Commands through Runtime.write, from the command to its own index applying it, by "
    "outcome (written, refused, conflict, store_error, not_applied).",
    ["outcome"],
    buckets=_LATENCY_BUCKETS,
)
STORE_ERRORS: Final = Counter(
    "mandate_store_errors",
    "Requests answered 503 because the store could not be reached, by the error's kind.",
    ["error"],
)


def observe_write(started: float, error: BaseException | None) -> None:
    """Record one ``Runtime.write`` that began at ``started`` (``perf_counter``)."""
    WRITE_SECONDS.labels(_write_outcome(error)).observe(time.perf_counter() - started)


def _write_outcome(error: BaseException | None) -> str:
    if error is None:
        return "written"
    if isinstance(error, WriteNotApplied):
        return "not_applied"
    if isinstance(error, StoreUnavailable | InterfaceError | OperationalError):
        return "store_error"
    if isinstance(error, Conflict) and getattr(error, "code", None) == "ConcurrentModification":
        return "conflict"  # every retry of the command met a concurrent change
    if isinstance(error, DomainError):
        return "refused"
    return "error"


UNMATCHED: Final = "unmatched"
"""The route label of a request no route matched (a 404 or 405): never the raw path."""


class RequestObserver(HttpOnlyMiddleware):
    """Times every HTTP request into ``HTTP_SECONDS`` and writes its one log line."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self._children: dict[tuple[str, str, int], Any] = {}
        self._paths: dict[object, str] | None = None

    def _template(self, scope: Scope) -> str:
        """The path of a plain Starlette route (FastAPI records only its own routes' in the
        scope; ``POST /v1/authorize`` is a plain route), from the endpoint it chose."""
        if self._paths is None:
            routes = getattr(scope.get("app"), "routes", ())
            self._paths = {
                r.endpoint: r.path for r in routes if hasattr(r, "endpoint") and hasattr(r, "path")
            }
        return self._paths.get(scope.get("endpoint"), UNMATCHED)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler is answered 500 by the server

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            template = getattr(scope.get("route"), "path", None) or self._template(scope)
            method = scope["method"]
            key = (template, method, status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = HTTP_SECONDS.labels(template, method, str(status))
            child.observe(seconds)
            if REQUESTS.isEnabledFor(20) and not REQUESTS.disabled:  # INFO
                log_request(
                    scope.get(REQUEST_ID_KEY),
                    scope.get(CALLER_KEY),
                    method,
                    template,
                    status,
                    seconds,
                )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class RuntimeCollector(Collector):
    """What one runtime is at scrape time; ``head``, ``lags`` and ``replica`` (``replica_lags``;
    ``{}``: the replica did not answer; None: no replica, or the primary did not answer) were
    read just before, each within the scrape's budget."""

    def __init__(
        self,
        runtime: Runtime,
        head: int | None,
        lags: dict[str, dict[str, object]],
        replica: dict[str, Any] | None = None,
    ) -> None:
        self.runtime = runtime
        self.head = head
        self.lags = lags
        self.replica = replica

    def collect(self) -> Iterator[Any]:
        runtime, head = self.runtime, self.head
        position = runtime.index.position
        yield _gauge(
            "mandate_index_position",
            "Last ledger position applied by this process's index.",
            position,
        )
        yield _gauge(
            "mandate_store_up",
            "Whether the event store answered this scrape.",
            0 if head is None else 1,
        )
        if head is not None:
            yield _gauge("mandate_log_head", "Highest ledger position in the store.", head)
            yield _gauge(
                "mandate_index_lag_events",
                "Events in the store not yet applied by this process's decision index.",
                max(0, head - position),
            )
        if self.lags:
            events = GaugeMetricFamily(
                "mandate_projection_lag_events",
                "Events a SQL projection has not applied.",
                labels=["projection"],
            )
            seconds = GaugeMetricFamily(
                "mandate_projection_lag_seconds",
                "How long its oldest unapplied event waited.",
                labels=["projection"],
            )
            for name, lag in self.lags.items():
                events.add_metric([name], float(str(lag["lag_events"])))
                seconds.add_metric([name], float(str(lag["lag_seconds"])))
            yield events
            yield seconds
        yield from self._replica()
        yield from self._decisions()
        yield from self._memo()
        yield from self._pool()

    def _replica(self) -> Iterator[Any]:
        """How far the read replica (``MANDATE_READ_DATABASE_URL``) is behind the primary.

        A projection's lag is the primary's copy's tracking position minus the replica's copy's
        (both replicated rows): what a read served there misses of what the primary's copy
        holds, apart from how far the primary's own worker lags.
        """
        if self.replica is None:
            return
        yield _gauge(
            "mandate_read_replica_up",
            "Whether the read replica answered this scrape.",
            1 if self.replica else 0,
        )
        if not self.replica:
            return
        yield _gauge(
            "mandate_read_replica_log_lag_events",
            "Events of the primary's log the read replica has not replayed.",
            float(self.replica["lag_events"]),
        )
        yield _gauge(
            "mandate_read_replica_log_lag_seconds",
            "How long the oldest event the read replica's log lacks has been in the primary's.",
            float(self.replica["lag_seconds"]),
        )
        events = GaugeMetricFamily(
            "mandate_read_replica_lag_events",
            "The primary's copy of a projection ahead of the read replica's, in events "
            "(the primary's tracking position minus the replica's).",
            labels=["projection"],
        )
        for name, copy in self.replica.get("projections", {}).items():
            primary = self.lags.get(name, {}).get("position")
            if isinstance(primary, int):
                events.add_metric([name], float(max(0, primary - int(copy["position"]))))
        yield events

    def _decisions(self) -> Iterator[Any]:
        by_outcome = CounterMetricFamily(
            "mandate_decisions",
            "Decisions answered by /v1/authorize, by outcome.",
            labels=["decision"],
        )
        by_layer = CounterMetricFamily(
            "mandate_decisions_by_layer",
            "Decisions answered by /v1/authorize, by outcome and the policy layer of the "
            "first statement that matched (root: an account root's Allow; none: nothing matched).",
            labels=["decision", "layer"],
        )
        totals: dict[str, int] = dict.fromkeys(("Allow", "ExplicitDeny", "ImplicitDeny"), 0)
        for (outcome, layer), count in list(self.runtime.decision_counts.items()):
            totals[outcome] = totals.get(outcome, 0) + count
            by_layer.add_metric([outcome, layer], count)
        for outcome, count in totals.items():
            by_outcome.add_metric([outcome], count)
        yield by_outcome
        yield by_layer

    def _memo(self) -> Iterator[Any]:
        entries, estimated = self.runtime.index.memo_size  # O(entries): read in a thread
        yield _gauge("mandate_decision_memo_entries", "Answers held in the decision memo.", entries)
        yield _gauge(
            "mandate_decision_memo_bytes",
            "The memo's estimated memory (bounded by MANDATE_DECISION_MEMO_BYTES).",
            estimated,
        )

    def _pool(self) -> Iterator[Any]:
        """The event store's connection pool (PostgreSQL only; psycopg_pool's own figures)."""
        pool = getattr(getattr(self.runtime.ledger.recorder, "datastore", None), "pool", None)
        stats: Callable[[], dict[str, int]] | None = getattr(pool, "get_stats", None)
        if stats is None:
            return
        figures = stats()
        size, available = figures.get("pool_size", 0), figures.get("pool_available", 0)
        yield _gauge("mandate_pool_connections", "Connections the store's pool holds.", size)
        yield _gauge(
            "mandate_pool_connections_in_use",
            "Connections of the store's pool lent out now.",
            max(0, size - available),
        )
        yield _gauge(
            "mandate_pool_requests_waiting",
            "Callers waiting for a connection of the store's pool now.",
            figures.get("requests_waiting", 0),
        )


def exposition(collector: RuntimeCollector) -> bytes:
    """The text format: this process's counters and histograms, then the runtime's state."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(collector)
    return generate_latest(REGISTRY) + generate_latest(scrape)
