"""The audit trail over HTTP: filters, pagination, exports, verification, visibility."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from mandate.projections.audit.chain import SignedCheckpoint
from tests.e2e.conftest import Headers, MandateClient


def _trail(api: MandateClient, account: str, headers: Headers, **params: str) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        query = {**params, "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/v1/accounts/{account}/audit-events", params=query, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def test_an_account_lists_filters_and_pages_its_own_records(api: MandateClient) -> None:
    account, root = api.open_account()
    start = datetime.now(UTC).isoformat()
    api.create_user(account, root, "ana")
    api.create_user(account, root, "bo")
    other, other_root = api.open_account("Other")
    api.create_user(other, other_root, "zed")
    records = _trail(api, account, root)
    assert records, "the account's own events are listed"
    assert [r["position"] for r in records] == sorted(r["position"] for r in records)
    assert all(account in r["accounts"] for r in records)
    assert not any("zed" in r["target"] for r in records)
    ana = f"acs:ram::{account}:user/ana"
    created = _trail(api, account, root, type="UserCreated")
    assert [r["target"] for r in created] == [ana, f"acs:ram::{account}:user/bo"]
    assert created[0]["actor"] == f"acs:ram::{account}:root"
    assert created[0]["request_id"]
    about_ana = _trail(api, account, root, principal=ana)
    # As actor or as target: ana acted on nothing, so only her name's claim and her
    # creation name her (her key's events target the key, under her ARN).
    assert [r["event_type"] for r in about_ana] == ["NameClaimed", "UserCreated"]
    keys = _trail(api, account, root, target=f"{ana}/accesskey/")
    assert [r["event_type"] for r in keys] == ["AccessKeyCreated"]
    since = _trail(api, account, root, **{"from": start})
    assert all(r["time"] >= start[:19] for r in since)
    # Another account's trail is refused before anything is looked up.
    refused = api.get(f"/v1/accounts/{other}/audit-events", headers=root)
    assert refused.status_code == 403


def test_exports_stream_the_whole_selection(api: MandateClient) -> None:
    account, root = api.open_account()
    api.create_user(account, root, "ana")
    listed = _trail(api, account, root)
    base = f"/v1/accounts/{account}/audit-events/export"
    ndjson = api.get(base, params={"format": "ndjson"}, headers=root)
    assert ndjson.status_code == 200, ndjson.text
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    exported = [json.loads(line) for line in ndjson.text.splitlines()]
    assert exported == listed
    as_csv = api.get(base, params={"format": "csv"}, headers=root)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(r["position"]) for r in rows] == [r["position"] for r in listed]
    assert json.loads(rows[0]["accounts"]) == [account]
    bad = api.get(base, params={"format": "xml"}, headers=root)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "format"


def test_verify_and_checkpoints_for_an_account_and_for_the_admin(api: MandateClient) -> None:
    account, root = api.open_account()
    for name in ("ana", "bo", "cy"):  # more than the server's 5 events between checkpoints
        api.create_user(account, root, name)
    mine = api.get(f"/v1/accounts/{account}/audit/verify", headers=root)
    assert mine.status_code == 200, mine.text
    assert mine.json()["ok"] is True
    assert mine.json()["first_bad_position"] is None
    everything = api.get("/v1/audit/verify", headers=api.admin)
    assert everything.json()["ok"] is True
    assert everything.json()["checked"] >= mine.json()["checked"]
    assert api.get("/v1/audit/verify", headers=root).status_code == 403
    pem = api.get("/v1/audit/public-key")
    assert pem.status_code == 200
    key = load_pem_public_key(pem.content)
    signed = api.get(f"/v1/accounts/{account}/audit/checkpoints", headers=root).json()["items"]
    assert signed, "the e2e server checkpoints every few events"
    for checkpoint in signed:
        assert checkpoint["scope"] == account
        assert SignedCheckpoint.from_dict(checkpoint).verify(key)  # type: ignore[arg-type]
