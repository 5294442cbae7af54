"""Operations: ``/healthz`` is a constant (no I/O), ``/readyz`` checks the store and the index,
``/metrics`` exposes both, requests, writes and decisions, in Prometheus' text format.

An event a projection cannot apply is *named* here (``degraded: …``, with its position, type
and error) but does not make the process unready: every process meets the same event, live
decisions and the other projections keep serving, and taking every instance out of rotation
would turn one bad event into an outage of the whole service.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from mandate.api.deps import RuntimeDep
from mandate.api.observability.metrics import RuntimeCollector, exposition
from mandate.api.runtime import Runtime, StoreUnavailable

router = APIRouter(tags=["operations"])
T = TypeVar("T")

_HEALTHY = {"status": "ok"}


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse(_HEALTHY)


# /readyz answers within a second even while the database is down: its store calls share
# this budget, after which they are abandoned (the thread finishes later, bounded by
# MANDATE_STORE_TIMEOUT) and the answer names the part that did not answer.
_READY_BUDGET_S = 0.8
_METRICS_BUDGET_S = 0.3


async def _within(budget: float, call: Callable[[], T]) -> T:
    """``call`` in a worker thread, given up after ``budget`` seconds (TimeoutError)."""
    with anyio.fail_after(budget):
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)


@router.get(
    "/readyz",
    responses={503: {"description": "Not ready: the part that did not answer, and why"}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    body: dict[str, Any] = {"index_position": runtime.index.position}
    deadline = time.monotonic() + _READY_BUDGET_S
    try:
        head = await _within(_READY_BUDGET_S, runtime.head)
    except (StoreUnavailable, TimeoutError) as error:
        why = str(error) or f"no answer within {_READY_BUDGET_S} s"
        return JSONResponse(
            {**body, "status": "store unreachable: the event store (log head)", "detail": why},
            503,
        )
    lag = max(0, head - runtime.index.position)
    body.update({"head": head, "decision_index_lag_events": lag})
    try:
        projections = await _within(
            max(0.05, deadline - time.monotonic()),
            functools.partial(runtime.projection_lags, head),
        )
    except Exception as error:  # the read models' store is down
        why = str(error) or f"no answer within {_READY_BUDGET_S} s"
        return JSONResponse(
            {**body, "status": "store unreachable: the projections' copies", "detail": why},
            503,
        )
    body["projections"] = projections
    bound = runtime.settings.max_projection_lag_seconds
    problems = [
        f"{name} lags {lag['lag_seconds']} s (bound {bound} s)"
        for name, lag in projections.items()
        if lag.get("stalled") is None and float(str(lag["lag_seconds"])) > bound
    ]
    if runtime.follower.last_error is not None:
        problems.insert(0, "following the log failed")
    skipped = list(runtime.follower.skipped)
    body["decision_index_skipped"] = [stall.as_dict() for stall in skipped]
    stalls = [stall_text(name, lag["stalled"]) for name, lag in projections.items()]
    degraded = [text for text in stalls if text is not None]
    if skipped:
        degraded.append(f"the decision index passed over {skipped[-1]}")
    replica = await _replica(runtime, head, deadline)
    if replica is not None:
        body["replica"] = replica
        if "status" in replica:
            degraded.append(f"the read replica is {replica['status']}")
        elif float(replica["lag_seconds"]) > bound:
            degraded.append(f"the read replica lags {replica['lag_seconds']} s (bound {bound} s)")
    if problems:
        body["status"] = "; ".join(problems + degraded)
    else:
        body["status"] = "degraded: " + "; ".join(degraded) if degraded else "ready"
    return JSONResponse(body, 503 if problems else 200)


async def _replica(runtime: Runtime, head: int, deadline: float) -> dict[str, Any] | None:
    """The read replica's lag behind ``head`` (positions and seconds), apart from the rest.

    A replica that lags or cannot be reached degrades this process but does not make it
    unready: writes and live decisions never touch it; the reads it serves answer 503.
    """
    if runtime.replica is None:
        return None
    try:
        return await _within(
            max(0.05, deadline - time.monotonic()), functools.partial(runtime.replica_lags, head)
        )
    except Exception as error:
        return {"status": "unreachable", "detail": str(error) or "no answer in time"}


def stall_text(projection: str, stalled: object) -> str | None:
    """``audit stalled at position 7 (RoleSessionsRevoked): <error>``, or None."""
    if not isinstance(stalled, dict):
        return None
    return (
        f"{projection} stalled at position {stalled['position']} "
        f"({stalled['event_type']}): {stalled['error']}"
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus' text format, through ``prometheus-client`` (``api.observability.metrics``).

    Bounded: the store's figures are given up after a budget, so a scrape answers at once
    while the store is down (``mandate_store_up 0``), or the read replica is
    (``mandate_read_replica_up 0``); the rest (the memo's size is a pass over
    memory) is read in a thread.
    """
    try:
        head: int | None = await _within(_METRICS_BUDGET_S, runtime.head)
    except (StoreUnavailable, TimeoutError):
        head = None
    lags: dict[str, dict[str, object]] = {}
    if head is not None:
        try:
            lags = await _within(
                _METRICS_BUDGET_S, functools.partial(runtime.projection_lags, head)
            )
        except Exception:  # the read models' store is down: say nothing rather than guess
            lags = {}
    replica: dict[str, Any] | None = None
    if head is not None and runtime.replica is not None:
        try:
            replica = await _within(
                _METRICS_BUDGET_S, functools.partial(runtime.replica_lags, head)
            )
        except Exception:  # the replica is down or slow: mandate_read_replica_up 0
            replica = {}
    collector = RuntimeCollector(runtime, head, lags, replica)
    body = await anyio.to_thread.run_sync(exposition, collector)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
