"""What the audit console's browser tests stand on: headless Chromium, a server, two accounts.

* **Chromium** is Debian's (``/usr/bin/chromium``, or ``MANDATE_CHROMIUM``), driven by
  Playwright for Python with ``executable_path``: ``playwright install`` downloads browsers and
  is not used. Without it the tests skip, except under ``CI=true``, where they fail loudly
  (``.ci/run`` installs the package).
* **The server** is the real app under uvicorn (``conftest.serving``) over one SQLite store.
* **A large account**: 100,000 ledger events written in bulk straight through the ledger
  (``tests.bench.temporal.History``: genuine events, many aggregates per save, ~7 s) and
  projected into the audit trail and the temporal index before the server starts, so the
  console's first paint is measured against an account with 100,000 audit records.
* **Scenario 2** (README, "between enterprises") through the HTTP API, its contract revoked,
  with the instants on either side of the revocation.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.audit import acting_as
from tests.bench.temporal import ACTOR, History
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, MandateClient

CHROMIUM = os.environ.get("MANDATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LARGE_EVENTS = int(os.environ.get("MANDATE_CONSOLE_AUDIT_RECORDS", "100000"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def chromium_or_skip() -> str:
    """The browser's path; a skip here, a failure under CI (which must run these tests)."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = None
    if found:
        return found
    message = (
        f"Chromium ({CHROMIUM}) or the playwright package is missing: apt-get install chromium"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def settings_for(url: str, state_dir: Path, **more: Any) -> Settings:
    return Settings(
        database_url=url,
        admin_token=ADMIN_TOKEN,
        hash_key=HASH_KEY,
        state_dir=state_dir,
        audit_checkpoint_every_events=1000,
        **more,
    )


@dataclass(frozen=True)
class Key:
    account_id: str
    access_key_id: str
    access_key_secret: str

    @property
    def basic(self) -> dict[str, str]:
        pair = f"{self.access_key_id}:{self.access_key_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def build_large_account(url: str, state_dir: Path) -> tuple[Key, float]:
    """Write ``LARGE_EVENTS`` events of one account and project them; (its root key, seconds)."""
    started = time.perf_counter()
    runtime = Runtime(settings_for(url, state_dir, run_projections=False), create_tables=True)
    try:
        history = History(runtime, random.Random(15))
        history.set_up()
        history.grow(LARGE_EVENTS)
        with acting_as(ACTOR):
            issued = runtime.ledger.rotate_root_access_key(history.account_id)
        runtime.audit.catch_up()
        runtime.temporal.catch_up()
        key = Key(history.account_id, issued.access_key_id, issued.access_key_secret)
    finally:
        runtime.stop()
    return key, time.perf_counter() - started


def open_account(api: MandateClient, name: str) -> Key:
    response = api.post("/v1/accounts", json={"name": name}, headers=api.admin)
    assert response.status_code == 201, response.text
    body = response.json()
    root = body["root_access_key"]
    return Key(body["account_id"], root["access_key_id"], root["access_key_secret"])


def post(api: MandateClient, path: str, key: Key | dict[str, str], body: Any = None) -> Any:
    headers = key.basic if isinstance(key, Key) else key
    response = api.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


@dataclass(frozen=True)
class Scenario2:
    acme: Key
    opsco: Key
    entrustment: dict[str, Any]
    delegation: dict[str, Any]
    session_key_id: str
    before_revocation: datetime
    after_revocation: datetime

    @property
    def instance(self) -> str:
        return f"acs:ecs:cn-hangzhou:{self.acme.account_id}:instance/i-bp67acfmxazb4p"


def scenario_2(api: MandateClient) -> Scenario2:
    """Acme entrusts O&M to OpsCo, OpsCo delegates restarts to ravi.k, who assumes the role;
    then Acme revokes the contract (README, "Scenario 2, by hand")."""
    acme, opsco = open_account(api, "Acme"), open_account(api, "OpsCo")
    a, b = acme.account_id, opsco.account_id
    entrustment = post(
        api,
        f"/v1/accounts/{a}/entrustments",
        acme,
        {
            "trustee_account_id": b,
            "contract_ref": "MSA-2026-117",
            "description": "O&M of the ECS fleet and the ops bucket",
            "scope": {
                "Version": "1",
                "Statement": [
                    {"Effect": "Allow", "Action": "ecs:*", "Resource": f"acs:ecs:*:{a}:instance/*"},
                    {
                        "Effect": "Allow",
                        "Action": "oss:*",
                        "Resource": f"acs:oss:*:{a}:ops-bucket/*",
                    },
                ],
            },
        },
    )
    ravi = api.create_user(b, opsco.basic, "ravi.k")
    api.create_user(b, opsco.basic, "lee.w")
    for name in ("ravi.k", "lee.w"):
        api.attach(b, opsco.basic, f"users/{name}", "System", "AliyunSTSAssumeRoleAccess")
    delegation = post(
        api,
        f"/v1/accounts/{b}/delegations",
        opsco,
        {
            "entrustment_id": entrustment["entrustment_id"],
            "grantee": f"acs:ram::{b}:user/ravi.k",
            "scope": {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "ecs:RebootInstance",
                        "Resource": f"acs:ecs:*:{a}:instance/*",
                    }
                ],
            },
        },
    )
    session = post(
        api,
        "/v1/sts/assume-role",
        ravi,
        {"role_arn": entrustment["role_arn"], "role_session_name": "ravi-oncall"},
    )
    time.sleep(1.1)  # the slider moves by whole seconds: one on each side of the revocation
    before = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    post(
        api,
        f"/v1/accounts/{a}/entrustments/{entrustment['entrustment_id']}/revoke",
        acme,
        {"reason": "contract terminated"},
    )
    time.sleep(1.1)
    after = datetime.now(UTC).replace(microsecond=0)
    return Scenario2(
        acme,
        opsco,
        entrustment,
        delegation,
        session["credentials"]["access_key_id"],
        before,
        after,
    )


def wait_for_projections(api: MandateClient, timeout: float = 60.0) -> None:
    """Until /readyz reports the projections caught up (the trail and the temporal index)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get("/readyz").status_code == 200:
            return
        time.sleep(0.1)
    pytest.fail("the projections did not catch up", pytrace=False)


def screenshot_dir() -> Iterator[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS
