"""``Idempotency-Key`` over real HTTP, on SQLite and PostgreSQL (issue 14, item 2).

A retry with the same key and request is answered the original answer (status, body,
position; ``Idempotency-Replayed: true``) and writes nothing; the key with another request is
422; a refused write records nothing (its retry runs again); concurrent requests with one key
write once; a secret-bearing answer is kept only sealed and answered again whole; a new
process on the same store answers the original; a malformed key is 400. Expiry and the
transaction the key shares with its events: ``tests/integration/test_idempotency_keys.py``.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import pytest

from mandate.api.runtime import Runtime
from tests.e2e.conftest import ADMIN_TOKEN, Headers, MandateClient, serving


def keyed(headers: Headers, key: str | None = None) -> Headers:
    return {**headers, "Idempotency-Key": key or f"k-{uuid.uuid4()}"}


def same(first: httpx.Response, again: httpx.Response) -> None:
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers["idempotency-replayed"] == "true"
    assert "idempotency-replayed" not in first.headers


def stored_bodies(runtime: Runtime) -> list[str]:
    table = runtime.idempotency.keys._table
    with runtime.ledger.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        cursor.execute(f"SELECT body FROM {table} WHERE body IS NOT NULL")  # noqa: S608
        return [str(row["body"]) for row in cursor.fetchall()]


def test_a_retry_is_answered_the_original_and_writes_nothing(api: MandateClient) -> None:
    account, root = api.open_account()
    users = f"/v1/accounts/{account}/users"
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", users, {"user_name": "alice", "display_name": "Alice"}),
        ("PATCH", f"{users}/alice", {"new_display_name": "Alice L."}),
        ("PUT", f"{users}/alice/policies/System/AliyunOSSReadOnlyAccess", None),
        ("DELETE", f"{users}/alice/policies/System/AliyunOSSReadOnlyAccess", None),
        ("DELETE", f"{users}/alice", None),
    ]
    for method, path, body in requests:
        headers = keyed(root)
        first = api.request(method, path, json=body, headers=headers)
        assert first.status_code in (200, 201), first.text
        head = api.log_head()
        assert first.json()["position"] == head
        again = api.request(method, path, json=body, headers=headers)
        same(first, again)
        assert api.log_head() == head


def test_the_key_with_another_request_is_422_and_writes_nothing(api: MandateClient) -> None:
    account, root = api.open_account()
    users = f"/v1/accounts/{account}/users"
    headers = keyed(root)
    assert api.post(users, json={"user_name": "alice"}, headers=headers).status_code == 201
    head = api.log_head()
    for method, path, body in [
        ("POST", users, {"user_name": "bob"}),  # another body
        ("POST", users, {"user_name": "alice", "display_name": "A"}),
        ("PATCH", f"{users}/alice", {"new_display_name": "A"}),  # another method, path
    ]:
        refused = api.request(method, path, json=body, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["header"] == "Idempotency-Key"
        assert problem["code"] == "IdempotencyKeyReused"
        assert "Idempotency-Key" in problem["detail"]
    assert api.log_head() == head
    assert api.get(f"{users}/bob", headers=root).status_code == 404


def test_a_key_is_the_callers_own(api: MandateClient) -> None:
    """The same key from another caller is another key: both writes are made."""
    account, root = api.open_account()
    alice = api.create_user(account, root, "alice")
    api.attach(account, root, "users/alice", "System", "AliyunRAMFullAccess")
    users = f"/v1/accounts/{account}/users"
    key = f"shared-{uuid.uuid4()}"
    first = api.post(users, json={"user_name": "bob"}, headers=keyed(root, key))
    second = api.post(users, json={"user_name": "carol"}, headers=keyed(alice, key))
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert "idempotency-replayed" not in second.headers


def test_a_refused_write_records_nothing_and_its_retry_runs_again(api: MandateClient) -> None:
    account, root = api.open_account()
    users = f"/v1/accounts/{account}/users"
    assert api.post(users, json={"user_name": "bob"}, headers=root).status_code == 201
    headers = keyed(root)
    head = api.log_head()
    refused = api.post(users, json={"user_name": "bob"}, headers=headers)
    assert refused.status_code == 409, refused.text  # EntityAlreadyExists.User
    assert api.log_head() == head
    assert api.delete(f"{users}/bob", headers=root).status_code == 200
    retried = api.post(users, json={"user_name": "bob"}, headers=headers)  # runs again
    assert retried.status_code == 201, retried.text
    assert "idempotency-replayed" not in retried.headers
    same(retried, api.post(users, json={"user_name": "bob"}, headers=headers))


@pytest.mark.parametrize(
    "key", ["", "has space", "é-accent", "x" * 256, "tab\there"], ids=lambda k: repr(k[:12])
)
def test_a_malformed_key_is_400_and_writes_nothing(api: MandateClient, key: str) -> None:
    account, root = api.open_account()
    head = api.log_head()
    refused = api.post(
        f"/v1/accounts/{account}/users",
        json={"user_name": "alice"},
        headers={**root, "Idempotency-Key": key.encode()},  # type: ignore[dict-item]
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["header"] == "Idempotency-Key"
    assert api.log_head() == head


def test_concurrent_requests_with_one_key_write_once(api: MandateClient) -> None:
    """Eight clients send the same keyed request at once: one write; every answer is the
    write's own (first or replayed) or 409 in flight with Retry-After."""
    account, root = api.open_account()
    users = f"/v1/accounts/{account}/users"
    headers = keyed(root)
    head = api.log_head()
    answers: list[httpx.Response] = []
    start = threading.Barrier(8)

    def send() -> None:
        with httpx.Client(base_url=api.base_url, timeout=30.0) as client:
            start.wait()
            answers.append(client.post(users, json={"user_name": "alice"}, headers=headers))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8
    written = [a for a in answers if a.status_code == 201]
    busy = [a for a in answers if a.status_code == 409]
    assert len(written) + len(busy) == 8, [a.text for a in answers]
    assert written
    assert len({a.content for a in written}) == 1
    assert all(a.headers["retry-after"] == "1" for a in busy)
    assert all(a.json()["code"] == "IdempotencyKeyInFlight" for a in busy)
    assert api.log_head() == head + 2  # one name claim and one user
    again = api.post(users, json={"user_name": "alice"}, headers=headers)
    assert again.status_code == 201
    assert again.content == written[0].content


def test_secret_bearing_answers_are_kept_sealed_and_answered_whole(
    api: MandateClient,
) -> None:
    account, root = api.open_account()
    api.create_user(account, root, "alice")
    path = f"/v1/accounts/{account}/users/alice/access-keys"
    headers = keyed(root)
    first = api.post(path, headers=headers)
    assert first.status_code == 201, first.text
    head = api.log_head()
    same(first, api.post(path, headers=headers))
    assert api.log_head() == head
    secret = first.json()["access_key_secret"]
    bodies = stored_bodies(api.runtime)
    assert not any(secret in body for body in bodies)
    assert any(body.startswith("sealed:v1$") for body in bodies)
    admin = keyed(api.admin)
    opened = api.post("/v1/accounts", json={"name": "Sealed"}, headers=admin)
    same(opened, api.post("/v1/accounts", json={"name": "Sealed"}, headers=admin))
    root_secret = opened.json()["root_access_key"]["access_key_secret"]
    assert not any(root_secret in body for body in stored_bodies(api.runtime))


def test_a_post_that_writes_nothing_is_answered_afresh(api: MandateClient) -> None:
    """POST /v1/authorize decides: the key is accepted, nothing is recorded, each call is
    answered from the ledger as it is then."""
    account, root = api.open_account()
    body = {"action": "oss:GetObject", "resource": f"acs:oss:*:{account}:b/o"}
    headers = keyed(root)
    first = api.post("/v1/authorize", json=body, headers=headers)
    again = api.post("/v1/authorize", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert "idempotency-replayed" not in again.headers


def test_a_new_process_on_the_store_answers_the_original(api: MandateClient) -> None:
    """The key and its answer are in the store: a retry to a restarted server (a Runtime
    started on the module's store with its keys, stopped, and another started) is answered
    the first answer, and nothing is written."""
    settings = api.runtime.settings
    admin = keyed({"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with serving(Runtime(settings, create_tables=True)) as before:
        first = before.post("/v1/accounts", json={"name": "Restart"}, headers=admin)
        assert first.status_code == 201, first.text
        account = first.json()["account_id"]
        key = first.json()["root_access_key"]
        root = keyed(MandateClient.basic(key["access_key_id"], key["access_key_secret"]))
        created = before.post(
            f"/v1/accounts/{account}/users", json={"user_name": "alice"}, headers=root
        )
        assert created.status_code == 201, created.text
        head = before.log_head()
    with serving(Runtime(settings, create_tables=False)) as after:
        same(first, after.post("/v1/accounts", json={"name": "Restart"}, headers=admin))
        same(
            created,
            after.post(f"/v1/accounts/{account}/users", json={"user_name": "alice"}, headers=root),
        )
        assert after.log_head() == head
