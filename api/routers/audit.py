"""The audit trail over HTTP: list, export, verify, checkpoints and the public key.

An account sees the records that concern it (its own chain); the admin sees the global
chain. Reads run in the threadpool (SQL), after the audit projection has reached the head
of the log seen when the request arrived, so a trail never silently misses a committed
event. Exports stream page by page: memory stays flat whatever the selection.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, StreamingResponse

from api.deps import CallerDep, RuntimeDep, authorize_management
from api.presenters import decode_position_cursor, encode_position_cursor
from api.problems import Forbidden, PositionNotReached
from api.routers.history import check_instant
from api.runtime import Runtime
from projections.audit_export import csv_lines
from projections.audit_trail import (
    GLOBAL_SCOPE,
    AuditQuery,
    checkpoints,
    iter_records,
    select_records,
)
from projections.audit_verify import verify_trail

router = APIRouter(tags=["audit"])

Limit = Annotated[int, Query(ge=1, le=1000)]


async def reach_audit_head(runtime: Runtime) -> int:
    head = await anyio.to_thread.run_sync(runtime.head)
    worker = runtime.audit
    reached = await anyio.to_thread.run_sync(
        worker.wait_for, head, runtime.settings.min_position_timeout
    )
    if not reached:
        raise PositionNotReached(head, worker.position)
    return head


def _query(
    account_id: str | None,
    time_from: datetime | None,
    time_to: datetime | None,
    principal: str | None,
    event_type: str | None,
    target: str | None,
    cursor: str | None,
) -> AuditQuery:
    return AuditQuery(
        account_id=account_id,
        time_from=check_instant(time_from, "from") if time_from else None,
        time_to=time_to,
        principal=principal,
        event_type=event_type,
        target_prefix=target,
        after_position=decode_position_cursor(cursor) if cursor else 0,
    )


async def _list(runtime: Runtime, query: AuditQuery, limit: int) -> dict[str, Any]:
    await reach_audit_head(runtime)
    rows = await anyio.to_thread.run_sync(select_records, runtime.audit.store, query, limit + 1)
    items = rows[:limit]
    more = len(rows) > limit
    return {
        "items": items,
        "next_cursor": encode_position_cursor(int(items[-1]["position"])) if more else None,
    }


@router.get("/v1/accounts/{account_id}/audit-events")
async def list_audit_events(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    time_from: Annotated[datetime | None, Query(alias="from")] = None,
    time_to: Annotated[datetime | None, Query(alias="to")] = None,
    principal: str | None = None,
    event_type: Annotated[str | None, Query(alias="type")] = None,
    target: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """The records that concern the account, oldest first, with its chain's hashes."""
    authorize_management(
        runtime,
        caller,
        account_id,
        "ram:ListAuditEvents",
        f"acs:ram::{account_id}:*",
        admin_may=True,
    )
    query = _query(account_id, time_from, time_to, principal, event_type, target, cursor)
    return await _list(runtime, query, limit)


@router.get("/v1/audit-events")
async def list_all_audit_events(
    caller: CallerDep,
    runtime: RuntimeDep,
    time_from: Annotated[datetime | None, Query(alias="from")] = None,
    time_to: Annotated[datetime | None, Query(alias="to")] = None,
    principal: str | None = None,
    event_type: Annotated[str | None, Query(alias="type")] = None,
    target: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Every record, with the global chain's hashes (the platform admin only)."""
    if not caller.is_admin:
        raise Forbidden("the global trail is the platform admin's")
    query = _query(None, time_from, time_to, principal, event_type, target, cursor)
    return await _list(runtime, query, limit)


@router.get("/v1/accounts/{account_id}/audit-events/export")
async def export_audit_events(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    export_format: Annotated[Literal["ndjson", "csv"], Query(alias="format")] = "ndjson",
    time_from: Annotated[datetime | None, Query(alias="from")] = None,
    time_to: Annotated[datetime | None, Query(alias="to")] = None,
    principal: str | None = None,
    event_type: Annotated[str | None, Query(alias="type")] = None,
    target: str | None = None,
) -> StreamingResponse:
    """The whole selection, streamed: NDJSON (one record per line) or CSV."""
    authorize_management(
        runtime,
        caller,
        account_id,
        "ram:ListAuditEvents",
        f"acs:ram::{account_id}:*",
        admin_may=True,
    )
    query = _query(account_id, time_from, time_to, principal, event_type, target, None)
    await reach_audit_head(runtime)
    records = iter_records(runtime.audit.store, query)
    if export_format == "csv":
        return StreamingResponse(
            csv_lines(records),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="audit-{account_id}.csv"'},
        )
    lines = (json.dumps(record, sort_keys=True) + "\n" for record in records)
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="audit-{account_id}.ndjson"'},
    )


@router.get("/v1/accounts/{account_id}/audit/verify")
async def verify_account_trail(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Re-derive the account's records from the log; check its chain and checkpoints."""
    authorize_management(
        runtime,
        caller,
        account_id,
        "ram:ListAuditEvents",
        f"acs:ram::{account_id}:*",
        admin_may=True,
    )
    await reach_audit_head(runtime)
    result = await anyio.to_thread.run_sync(
        verify_trail, runtime.ledger, runtime.audit.store, runtime.audit_public_key, account_id
    )
    return result.as_dict()


@router.get("/v1/audit/verify")
async def verify_global_trail(caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Re-derive every record from the log; check the global chain and its checkpoints."""
    if not caller.is_admin:
        raise Forbidden("verifying the global trail is the platform admin's")
    await reach_audit_head(runtime)
    result = await anyio.to_thread.run_sync(
        verify_trail, runtime.ledger, runtime.audit.store, runtime.audit_public_key, None
    )
    return result.as_dict()


@router.get("/v1/accounts/{account_id}/audit/checkpoints")
async def account_checkpoints(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """The signed heads of the account's chain, to verify an export offline."""
    authorize_management(
        runtime,
        caller,
        account_id,
        "ram:ListAuditEvents",
        f"acs:ram::{account_id}:*",
        admin_may=True,
    )
    signed = await anyio.to_thread.run_sync(checkpoints, runtime.audit.store, account_id)
    return {"items": [c.as_dict() for c in signed]}


@router.get("/v1/audit/checkpoints")
async def global_checkpoints(caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    if not caller.is_admin:
        raise Forbidden("the global trail is the platform admin's")
    signed = await anyio.to_thread.run_sync(checkpoints, runtime.audit.store, GLOBAL_SCOPE)
    return {"items": [c.as_dict() for c in signed]}


@router.get("/v1/audit/public-key", response_class=PlainTextResponse)
async def audit_public_key(runtime: RuntimeDep) -> PlainTextResponse:
    """The Ed25519 public key (PEM) that verifies every checkpoint; public by nature."""
    return PlainTextResponse(runtime.audit_public_key_pem, media_type="application/x-pem-file")
