"""The security log over HTTP: an account's refused calls and failed authentications.

Read like the audit trail: by the account's root, a caller allowed ``ram:ListSecurityEvents``
on the account, or the platform admin; paged by ``cursor``/``limit`` (oldest first), or
exported whole as NDJSON (an expensive read: it spends the caller's read budget). The writer
is flushed first, so a refusal made before the question is in the answer. Nothing here is a
ledger event, and nothing here is a secret (``projections.store.security_log``).
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from mandate.api.abuse import spend_read_budget
from mandate.api.deps import Caller, CallerDep, RuntimeDep
from mandate.api.presenters import decode_position_cursor, encode_position_cursor
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import PagingDep, authorize_read
from mandate.api.runtime import Runtime

router = APIRouter(tags=["security"], responses=PROBLEM_RESPONSES, dependencies=AUTHENTICATED)

READ_ACTION = "ram:ListSecurityEvents"


async def _readable(runtime: Runtime, caller: Caller, account_id: str) -> None:
    authorize_read(runtime, caller, account_id, READ_ACTION)
    await anyio.to_thread.run_sync(runtime.security_events.flush)


@router.get("/v1/accounts/{account_id}/security-events")
async def list_security_events(
    account_id: str, caller: CallerDep, runtime: RuntimeDep, paging: PagingDep
) -> dict[str, Any]:
    """The account's refused management calls and failed authentications, oldest first."""
    await _readable(runtime, caller, account_id)
    after = decode_position_cursor(paging.cursor) if paging.cursor else 0
    limit = paging.limit
    rows = await anyio.to_thread.run_sync(
        lambda: runtime.security_events.log.page(account_id, after_id=after, limit=limit + 1)
    )
    items = rows[:limit]
    more = len(rows) > limit
    return {
        "items": items,
        "next_cursor": encode_position_cursor(int(items[-1]["id"])) if more else None,
    }


@router.get(
    "/v1/accounts/{account_id}/security-events/export",
    responses={
        200: {
            "description": "The rows, streamed: one JSON object a line",
            "content": {"application/x-ndjson": {}},
        }
    },
)
async def export_security_events(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> StreamingResponse:
    """Every row the account's security log holds, streamed as NDJSON (one per line)."""
    await _readable(runtime, caller, account_id)
    spend_read_budget(runtime, caller.arn, "security-log export")
    rows = runtime.security_events.log.iterate(account_id)
    lines = (json.dumps(row, sort_keys=True) + "\n" for row in rows)
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="security-{account_id}.ndjson"'},
    )
