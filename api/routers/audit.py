"""The audit trail over HTTP: list, export, verify, checkpoints and the public key.

An account sees the records that concern it (its own chain); the admin sees the global
chain. Lists and exports show display names opened, or erased once the account's personal
data was (``projections.audit.shown``); verification reads the records as stored. Reads run
in the threadpool (SQL), after the audit projection has reached the head of the log seen when
the request arrived, so a trail never silently misses a committed event. Exports stream page
by page: memory stays flat whatever the selection.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, StreamingResponse

from mandate.api.abuse import spend_read_budget
from mandate.api.deps import (
    Caller,
    CallerDep,
    RuntimeDep,
    reach_projection_head,
)
from mandate.api.presenters import decode_position_cursor, encode_position_cursor
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.problems import Forbidden
from mandate.api.reads import Paging, PagingDep, authorize_read
from mandate.api.routers.history import check_instant, with_zone
from mandate.api.runtime import Runtime
from mandate.domain.common.instants import EPOCH_REFUSED
from mandate.projections.audit.export import csv_lines
from mandate.projections.audit.shown import shown_records
from mandate.projections.audit.trail import (
    GLOBAL_SCOPE,
    AuditQuery,
    checkpoints,
    iter_records,
    select_records,
)
from mandate.projections.audit.verify import verify_trail

router = APIRouter(tags=["audit"], responses=PROBLEM_RESPONSES)
"""Every route but the public key's states ``dependencies=AUTHENTICATED``."""


class AuditFilters:
    """The filters of every trail query: ``from``, ``to``, ``principal``, ``type``, ``target``."""

    def __init__(
        self,
        time_from: Annotated[datetime | None, Query(alias="from"), EPOCH_REFUSED] = None,
        time_to: Annotated[datetime | None, Query(alias="to"), EPOCH_REFUSED] = None,
        principal: str | None = None,
        event_type: Annotated[str | None, Query(alias="type")] = None,
        target: Annotated[str | None, Query(description="a prefix of the target ARN")] = None,
    ) -> None:
        self.time_from = check_instant(time_from, "from") if time_from else None
        self.time_to = with_zone(time_to, "to") if time_to else None
        self.principal = principal
        self.event_type = event_type
        self.target = target

    def query(self, account_id: str | None, after_position: int = 0) -> AuditQuery:
        return AuditQuery(
            account_id=account_id,
            time_from=self.time_from,
            time_to=self.time_to,
            principal=self.principal,
            event_type=self.event_type,
            target_prefix=self.target,
            after_position=after_position,
        )


Filters = Annotated[AuditFilters, Depends()]


def may_read_trail(runtime: Runtime, caller: Caller, account_id: str | None) -> None:
    """An account's trail: its root, ``ram:ListAuditEvents``, or the admin; the global: admin."""
    if account_id is None:
        if not caller.is_admin:
            raise Forbidden("the global trail is the platform admin's")
        return
    authorize_read(runtime, caller, account_id, "ram:ListAuditEvents")


async def _page(
    runtime: Runtime, caller: Caller, account_id: str | None, paging: Paging, filters: AuditFilters
) -> dict[str, Any]:
    """A page of the account's trail (``account_id``) or of the global one (``None``)."""
    may_read_trail(runtime, caller, account_id)
    query = filters.query(account_id, _after(paging.cursor))
    limit = paging.limit
    await reach_projection_head(runtime, runtime.audit)
    rows = await anyio.to_thread.run_sync(_shown_page, runtime, query, limit + 1)
    items = rows[:limit]
    more = len(rows) > limit
    return {
        "items": items,
        "next_cursor": encode_position_cursor(int(items[-1]["position"])) if more else None,
    }


def _shown_page(runtime: Runtime, query: AuditQuery, limit: int) -> list[dict[str, Any]]:
    """Records as answers show them: display names opened, or marked erased (never sealed)."""
    rows = select_records(runtime.audit_reads, query, limit)
    return list(shown_records(rows, runtime.keyring.personal_reader()))


def _after(cursor: str | None) -> int:
    return decode_position_cursor(cursor) if cursor else 0


async def _verified(runtime: Runtime, caller: Caller, account_id: str | None) -> dict[str, Any]:
    """``verify_trail`` of the account's chain (``account_id``) or of the global one."""
    may_read_trail(runtime, caller, account_id)
    spend_read_budget(runtime, caller.arn, "trail verification")
    await reach_projection_head(runtime, runtime.audit)
    result = await anyio.to_thread.run_sync(
        verify_trail, runtime.log_reads, runtime.audit_reads, runtime.audit_public_key, account_id
    )
    return result.as_dict()


@router.get("/v1/accounts/{account_id}/audit-events", dependencies=AUTHENTICATED)
async def list_audit_events(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
    filters: Filters,
) -> dict[str, Any]:
    """The records that concern the account, oldest first, with its chain's hashes."""
    return await _page(runtime, caller, account_id, paging, filters)


@router.get("/v1/audit-events", dependencies=AUTHENTICATED)
async def list_all_audit_events(
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
    filters: Filters,
) -> dict[str, Any]:
    """Every record, with the global chain's hashes (the platform admin only)."""
    return await _page(runtime, caller, None, paging, filters)


@router.get(
    "/v1/accounts/{account_id}/audit-events/export",
    dependencies=AUTHENTICATED,
    responses={
        200: {
            "description": "The records, streamed: one JSON object a line, or CSV",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        }
    },
)
async def export_audit_events(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    filters: Filters,
    export_format: Annotated[Literal["ndjson", "csv"], Query(alias="format")] = "ndjson",
) -> StreamingResponse:
    """The whole selection, streamed: NDJSON (one record per line) or CSV."""
    may_read_trail(runtime, caller, account_id)
    spend_read_budget(runtime, caller.arn, "audit export")
    await reach_projection_head(runtime, runtime.audit)
    stored = iter_records(runtime.audit_reads, filters.query(account_id))
    records = shown_records(stored, runtime.keyring.personal_reader())
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


@router.get("/v1/accounts/{account_id}/audit/verify", dependencies=AUTHENTICATED)
async def verify_account_trail(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Re-derive the account's records from the log; check its chain and checkpoints."""
    return await _verified(runtime, caller, account_id)


@router.get("/v1/audit/verify", dependencies=AUTHENTICATED)
async def verify_global_trail(caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Re-derive every record from the log; check the global chain and its checkpoints."""
    return await _verified(runtime, caller, None)


@router.get("/v1/accounts/{account_id}/audit/checkpoints", dependencies=AUTHENTICATED)
async def account_checkpoints(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """The signed heads of the account's chain, to verify an export offline."""
    may_read_trail(runtime, caller, account_id)
    signed = await anyio.to_thread.run_sync(checkpoints, runtime.audit_reads, account_id)
    return {"items": [c.as_dict() for c in signed]}


@router.get("/v1/audit/checkpoints", dependencies=AUTHENTICATED)
async def global_checkpoints(caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    may_read_trail(runtime, caller, None)
    signed = await anyio.to_thread.run_sync(checkpoints, runtime.audit_reads, GLOBAL_SCOPE)
    return {"items": [c.as_dict() for c in signed]}


@router.get(
    "/v1/audit/public-key",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}}}},
)
async def audit_public_key(runtime: RuntimeDep) -> PlainTextResponse:
    """The Ed25519 public key (PEM) that verifies every checkpoint; public by nature."""
    return PlainTextResponse(runtime.audit_public_key_pem, media_type="application/x-pem-file")
