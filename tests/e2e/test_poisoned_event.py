"""An event that a projection cannot apply stalls that projection only, never the service.

The commands refuse such events (``domain/common/instants.py``), so these are written straight
through the ledger, bypassing the guards, as a corrupted or hostile store would hold them.
This module has a server of its own: the audit trail it poisons stays stalled, by design.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from mandate.domain.sts.roles import Role
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.state import HANDLERS
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, Headers, MandateClient

PROBLEM_JSON = "application/problem+json"
OUT_OF_UTC = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
TRUST_ROOT = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": []}}],
}
READ_OSS = [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "*"}]


def _role(api: MandateClient, account_id: str, root: Headers, name: str) -> Role:
    trust = json.loads(json.dumps(TRUST_ROOT))
    trust["Statement"][0]["Principal"]["RAM"] = [f"acs:ram::{account_id}:root"]
    created = api.post(
        f"/v1/accounts/{account_id}/roles",
        json={"role_name": name, "assume_role_policy_document": trust},
        headers=root,
    )
    assert created.status_code == 201, created.text
    role = api.runtime.ledger.repository.get(UUID(created.json()["role_id"]))
    assert isinstance(role, Role)
    return role


def _cli(api: MandateClient, *args: str) -> subprocess.CompletedProcess[str]:
    """``mandate …`` in another process, on this server's store and state."""
    settings = api.runtime.settings
    env = {
        **os.environ,
        "MANDATE_DATABASE_URL": settings.database_url,
        "MANDATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MANDATE_HASH_KEY": HASH_KEY,
        "MANDATE_STATE_DIR": str(settings.state_dir),
    }
    return subprocess.run(  # noqa: S603 (our own CLI)
        [sys.executable, "-m", "mandate.api.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def test_a_poisoned_event_stalls_its_projection_and_the_service_keeps_serving(
    api: MandateClient,
) -> None:
    """An instant outside UTC stalls the audit trail at its position; a handler that raises
    is passed over by the decision index; readyz, status and every other read keep working."""
    victim, victim_root = api.open_account("Victim")
    other, other_root = api.open_account("Other")
    reader = api.create_user(other, other_root, "reader")
    api.create_policy(other, other_root, "Read", READ_OSS)
    api.attach(other, other_root, "users/reader", "Custom", "Read")
    assert api.get(f"/v1/accounts/{other}/audit-events", headers=other_root).status_code == 200

    # 1. The audit trail cannot chain an instant outside UTC: it stops there.
    role = _role(api, victim, victim_root, "poisoned")
    role._sessions_revoked(issued_before=OUT_OF_UTC)  # the guard refuses it: bypassed
    poisoned = api.runtime.ledger._commit(role)
    # 2. The decision index's handler raises on this one (an injected fault).
    index = api.runtime.index
    handler = HANDLERS.handler_for(Role.RoleSessionsRevoked)
    hostile = _role(api, victim, victim_root, "hostile")

    def raising(index: DecisionIndex, event: Role.RoleSessionsRevoked) -> None:
        if event.originator_id == hostile.id:
            raise RuntimeError("injected handler fault")
        handler(index, event)

    HANDLERS._handlers[Role.RoleSessionsRevoked] = raising
    try:
        hostile._sessions_revoked(issued_before=datetime.now(tz=UTC))
        skipped_at = api.runtime.ledger._commit(hostile)
        # A write after both is applied and answered: the index did not stop at either.
        after = api.post(
            f"/v1/accounts/{other}/users", json={"user_name": "later"}, headers=other_root
        )
        assert after.status_code == 201, after.text
    finally:
        HANDLERS._handlers[Role.RoleSessionsRevoked] = handler
    assert isinstance(index, DecisionIndex)
    assert index.position >= after.json()["position"] > skipped_at > poisoned

    # Live decisions go on, for every tenant.
    answer = api.authorize(reader, action="oss:GetObject", resource=f"acs:oss:*:{other}:bucket/x")
    assert answer["allowed"] is True

    # The audit trail: 503 naming the stall, for every account (it is one chain), never 500.
    for account, root in ((victim, victim_root), (other, other_root)):
        for path in ("audit-events", "audit-events/export", "audit/verify"):
            body = _problem(api.get(f"/v1/accounts/{account}/{path}", headers=root), 503)
            assert f"position {poisoned} (RoleSessionsRevoked)" in body["detail"], body
    # The temporal index is another projection: it applied the event and answers.
    as_of = (datetime.now(tz=UTC)).isoformat()
    effective = api.get(
        f"/v1/accounts/{other}/effective-permissions",
        params={"principal": f"acs:ram::{other}:user/reader", "as_of": as_of},
        headers=other_root,
    )
    assert effective.status_code == 200, effective.text

    # /readyz stays 200 and names both: the stalled projection and the skipped event.
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"].startswith("degraded: ")
    assert f"audit stalled at position {poisoned} (RoleSessionsRevoked)" in body["status"]
    stalled = body["projections"]["audit"]["stalled"]
    assert (stalled["position"], stalled["event_type"]) == (poisoned, "RoleSessionsRevoked")
    assert "OverflowError" in stalled["error"] or "range" in stalled["error"]
    assert body["projections"]["temporal"]["stalled"] is None
    assert body["projections"]["temporal"]["lag_events"] == 0
    assert body["decision_index_skipped"] == [
        {
            "position": skipped_at,
            "event_type": "RoleSessionsRevoked",
            "error": "RuntimeError('injected handler fault')",
        }
    ]

    # Another process: `projections status` names the stall; `audit verify` names the position.
    status = _cli(api, "projections", "status")
    assert status.returncode == 0, status.stderr
    named = json.loads(status.stdout)["projections"]["audit"]["stalled"]
    assert named["position"] == poisoned, status.stdout
    verify = _cli(api, "audit", "verify")
    assert verify.returncode == 1, verify.stderr
    result = json.loads(verify.stdout)
    assert (result["ok"], result["first_bad_position"]) == (False, poisoned), result
