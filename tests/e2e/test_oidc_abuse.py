"""AssumeRoleWithOIDC is anonymous, so it is throttled like a failed authentication.

An address that presents refused tokens is limited as one that presents wrong secrets
(``api/abuse.py``): past its burst it is answered 429 (``Throttling.User``, limit
``source_ip``) before anything is checked — even a valid token — while other addresses
still exchange theirs. Refusals write nothing. A low burst is configured for this module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, MandateClient, serving
from tests.oidc_support import CLIENT_ID, ISSUER, federated_trust, jwks, token

IP_BURST = 4


@pytest.fixture(scope="module")
def api(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MandateClient]:
    settings = Settings(
        database_url=store_url,
        admin_token=ADMIN_TOKEN,
        hash_key=HASH_KEY,
        state_dir=tmp_path_factory.mktemp("state"),
        trusted_proxies=["127.0.0.1"],
        auth_failure_burst_per_ip=IP_BURST,
        auth_failures_per_minute_per_ip=1 / 60,
    )
    with serving(Runtime(settings, create_tables=True)) as client:
        yield client


def _exchange(api: MandateClient, account_id: str, oidc_token: str, ip: str) -> Any:
    return api.post(
        "/v1/sts/assume-role-with-oidc",
        json={
            "oidc_provider_arn": f"acs:ram::{account_id}:oidc-provider/ci-idp",
            "role_arn": f"acs:ram::{account_id}:role/deployer",
            "oidc_token": oidc_token,
            "role_session_name": "ci-run",
        },
        headers={"X-Forwarded-For": ip},
    )


def test_an_address_presenting_refused_tokens_is_throttled_before_any_check(
    api: MandateClient,
) -> None:
    account_id, root = api.open_account("Acme")
    created = api.post(
        f"/v1/accounts/{account_id}/oidc-providers",
        json={
            "oidc_provider_name": "ci-idp",
            "issuer_url": ISSUER,
            "client_ids": [CLIENT_ID],
            "jwks": jwks(),
        },
        headers=root,
    )
    assert created.status_code == 201, created.text
    role = api.post(
        f"/v1/accounts/{account_id}/roles",
        json={
            "role_name": "deployer",
            "assume_role_policy_document": federated_trust(account_id, "ci-idp"),
        },
        headers=root,
    )
    assert role.status_code == 201, role.text
    head = api.log_head()
    expired = token(exp=int(time.time()) - 600)
    attacker = "198.51.100.66"
    answers = [_exchange(api, account_id, expired, attacker).status_code for _ in range(IP_BURST)]
    assert answers == [401] * IP_BURST
    throttled = _exchange(api, account_id, expired, attacker)
    assert throttled.status_code == 429, throttled.text
    assert throttled.json()["code"] == "Throttling.User"
    assert throttled.json()["limit"] == "source_ip"
    # now even a valid token from that address is refused before it is looked at
    assert _exchange(api, account_id, token(), attacker).status_code == 429
    assert api.log_head() == head  # no refusal wrote anything
    # another address is not concerned
    assert _exchange(api, account_id, token(), "198.51.100.67").status_code == 201
    assert 'mandate_auth_failures_total{surface="v1"}' in api.get("/metrics").text
