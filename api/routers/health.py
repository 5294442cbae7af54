"""Operations: ``/healthz`` is a constant (no I/O), ``/readyz`` checks the store and the index."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import RuntimeDep
from api.runtime import StoreUnavailable

router = APIRouter(tags=["operations"])

_HEALTHY = {"status": "ok"}


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse(_HEALTHY)


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    body: dict[str, Any] = {"index_position": runtime.index.position}
    try:
        head = await anyio.to_thread.run_sync(runtime.head)
    except StoreUnavailable as error:
        return JSONResponse({**body, "status": "store unavailable", "detail": str(error)}, 503)
    lag = max(0, head - runtime.index.position)
    body.update({"head": head, "decision_index_lag_events": lag})
    ready = runtime.follower.last_error is None
    body["status"] = "ready" if ready else "following the log failed"
    return JSONResponse(body, 200 if ready else 503)
