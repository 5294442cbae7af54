"""``authenticate_signed``: once a request signature made with the key's secret has verified,
the index refuses exactly as ``authenticate`` does for that right secret — same message, same
typed ``Refusal`` — and RAM's code comes from the type (``refusal_code``), not the words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mandate.api.runtime import Runtime
from mandate.api.signed_requests import refusal_code
from mandate.projections.decisions.credentials import AuthenticationFailed, Refusal
from tests.integration.test_ledger_commands import Client, _runtime


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    started = _runtime(store_url, create_tables=True)
    started.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def client(runtime: Runtime) -> Client:
    return Client(runtime)


def _refusal(call: object) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as refused:
        call()  # type: ignore[operator]
    return refused.value


def test_a_signed_key_is_refused_as_basic_refuses_its_right_secret(
    runtime: Runtime, client: Client
) -> None:
    account = client.open_account("Acme").account_id
    client.create_user(account, "alice", None)
    key = client.create_access_key(account, "alice")
    index = runtime.index
    key_id, secret = key.access_key_id, key.access_key_secret
    assert index.authenticate_signed(key_id, None) == index.authenticate(key_id, secret)

    client.set_access_key_status(account, "alice", key_id, "Inactive")
    basic = _refusal(lambda: index.authenticate(key_id, secret))
    signed = _refusal(lambda: index.authenticate_signed(key_id, None))
    assert (str(signed), signed.reason) == (str(basic), basic.reason)
    assert signed.reason is Refusal.KEY_INACTIVE
    assert refusal_code(signed) == "InvalidAccessKeyId.Inactive"

    client.set_access_key_status(account, "alice", key_id, "Active")
    client.delete_user(account, "alice", detach=True)
    basic = _refusal(lambda: index.authenticate(key_id, secret))
    signed = _refusal(lambda: index.authenticate_signed(key_id, None))
    assert (str(signed), signed.reason) == (str(basic), basic.reason)
    assert signed.reason is Refusal.KEY_DEAD
    assert refusal_code(signed) == "InvalidAccessKeyId.NotFound"

    unknown = _refusal(lambda: index.authenticate_signed("LTAInobodyhasthisid", None))
    assert unknown.reason is Refusal.KEY_REFUSED
    wrong = _refusal(lambda: index.authenticate("LTAInobodyhasthisid", secret))
    assert (str(unknown), unknown.reason) == (str(wrong), wrong.reason)


def test_a_token_that_does_not_verify_is_malformed_whatever_its_words(
    runtime: Runtime, client: Client
) -> None:
    """A token is checked before any session is looked up: RAM's Malformed, from the type."""
    account = client.open_account("Acme").account_id
    client.create_user(account, "bob", None)
    key = client.create_access_key(account, "bob")
    refused = _refusal(lambda: runtime.index.authenticate_signed(key.access_key_id, "v1.x.y"))
    assert refused.reason is Refusal.TOKEN_MALFORMED
    assert refusal_code(refused) == "InvalidSecurityToken.Malformed"


def test_every_refusal_has_a_code() -> None:
    codes = {refusal_code(AuthenticationFailed("why", reason=refusal)) for refusal in Refusal}
    assert codes <= {
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "InvalidSecurityToken.Malformed",
        "InvalidSecurityToken.MismatchWithAccessKey",
        "InvalidSecurityToken.Expired",
    }
