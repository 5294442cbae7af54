"""One client id or fingerprint at a time (IMS's Add/RemoveClientId…, Add/RemoveFingerprint…),
on the in-memory store: the change is applied to the provider as it is when saved.

Pages: AddClientIdToOIDCProvider, RemoveClientIdFromOIDCProvider,
AddFingerprintToOIDCProvider, RemoveFingerprintFromOIDCProvider (IMS 2019-08-15),
https://www.alibabacloud.com/help/en/ram/developer-reference/api-ims-2019-08-15-addclientidtooidcprovider;
the limits (50 client ids, 5 fingerprints) are CreateOIDCProvider's,
https://www.alibabacloud.com/help/en/ram/developer-reference/api-ims-2019-08-15-createoidcprovider
"""

from __future__ import annotations

from typing import Any

import pytest

from mandate.domain.common.errors import Conflict, InvalidInput, NotFound
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.federation import read_oidc_provider
from tests.oidc_support import CLIENT_ID, ISSUER, jwks

PROVIDER = "ci-idp"
PRINT = "a" * 40


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )


@pytest.fixture
def account(ledger: Ledger) -> str:
    account_id = ledger.open_account("Acme").account_id
    ledger.create_oidc_provider(
        account_id, PROVIDER, issuer_url=ISSUER, client_ids=[CLIENT_ID], jwks=jwks()
    )
    return account_id


def _client_ids(ledger: Ledger, account: str) -> list[str]:
    return list(read_oidc_provider(ledger, account, PROVIDER).client_ids)


def _head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def test_a_whole_list_written_from_a_stale_read_loses_a_concurrent_change(
    ledger: Ledger, account: str
) -> None:
    """The old way (read the provider, then UpdateOIDCProvider with the whole list): a change
    saved between the read and the write is lost. The ledger cannot tell, since the writer
    asked for that exact list — which is why Add/Remove no longer work so."""
    stale = _client_ids(ledger, account)
    ledger.update_oidc_provider(account, PROVIDER, client_ids=[*stale, "app-b"])
    ledger.update_oidc_provider(account, PROVIDER, client_ids=[*stale, "app-c"])
    assert _client_ids(ledger, account) == [CLIENT_ID, "app-c"]  # app-b is gone


def test_two_interleaved_one_member_changes_both_survive(
    ledger: Ledger, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding app-c: after it has read the provider and before it saves, another writer adds
    app-b and removes the original client id. The save conflicts, the command re-runs on the
    provider as it now is, and all three changes are kept."""
    commit = ledger._commit
    interleaved: list[Any] = []

    def racing_commit(*aggregates: Any, **kwargs: Any) -> int:
        if not interleaved:  # once, as if another process saved first
            monkeypatch.setattr(ledger, "_commit", commit)
            interleaved.append(ledger.add_oidc_client_id(account, PROVIDER, "app-b"))
            interleaved.append(ledger.remove_oidc_client_id(account, PROVIDER, CLIENT_ID))
            monkeypatch.setattr(ledger, "_commit", racing_commit)
        return commit(*aggregates, **kwargs)

    monkeypatch.setattr(ledger, "_commit", racing_commit)
    written = ledger.add_oidc_client_id(account, PROVIDER, "app-c")
    assert len(interleaved) == 2  # the other writer did save in between
    assert written.position > interleaved[-1].position
    assert _client_ids(ledger, account) == ["app-b", "app-c"]


def test_fingerprints_change_one_at_a_time_too(ledger: Ledger, account: str) -> None:
    ledger.add_oidc_fingerprint(account, PROVIDER, PRINT.upper())  # kept in lower case
    ledger.add_oidc_fingerprint(account, PROVIDER, "b" * 40)
    ledger.remove_oidc_fingerprint(account, PROVIDER, PRINT)
    assert read_oidc_provider(ledger, account, PROVIDER).fingerprints == ["b" * 40]


@pytest.mark.parametrize(
    ("change", "value", "error", "code"),
    [
        ("add_oidc_client_id", CLIENT_ID, Conflict, "EntityAlreadyExists.OIDCProvider.ClientId"),
        ("remove_oidc_client_id", "absent", NotFound, "EntityNotExist.OIDCProvider.ClientId"),
        ("add_oidc_fingerprint", "not-hex", InvalidInput, "InvalidParameter.Fingerprints"),
        ("remove_oidc_fingerprint", PRINT, NotFound, "EntityNotExist.OIDCProvider.Fingerprint"),
        ("add_oidc_client_id", "", InvalidInput, "InvalidParameter.ClientIds"),
        # a provider keeps at least one client id (CreateOIDCProvider's 1 to 50)
        ("remove_oidc_client_id", CLIENT_ID, InvalidInput, "InvalidParameter.ClientIds"),
    ],
)
def test_refusals_carry_ims_codes_and_write_nothing(
    ledger: Ledger, account: str, change: str, value: str, error: type[Exception], code: str
) -> None:
    head = _head(ledger)
    with pytest.raises(error) as refused:
        getattr(ledger, change)(account, PROVIDER, value)
    assert getattr(refused.value, "code", None) == code
    assert _head(ledger) == head


def test_an_added_fingerprint_already_listed_in_another_case_is_refused(
    ledger: Ledger, account: str
) -> None:
    ledger.add_oidc_fingerprint(account, PROVIDER, PRINT)
    head = _head(ledger)
    with pytest.raises(Conflict) as twice:
        ledger.add_oidc_fingerprint(account, PROVIDER, PRINT.upper())
    assert twice.value.code == "EntityAlreadyExists.OIDCProvider.Fingerprint"
    assert _head(ledger) == head


def test_the_lists_limits_hold_and_an_unknown_provider_is_not_found(
    ledger: Ledger, account: str
) -> None:
    ledger.update_oidc_provider(
        account, PROVIDER, client_ids=[f"app-{i}" for i in range(50)], fingerprints=["c" * 40] * 1
    )
    for i in range(4):
        ledger.add_oidc_fingerprint(account, PROVIDER, f"{i}" * 40)
    head = _head(ledger)
    with pytest.raises(InvalidInput) as full:
        ledger.add_oidc_client_id(account, PROVIDER, "app-50")
    assert full.value.code == "InvalidParameter.ClientIds"
    with pytest.raises(InvalidInput) as prints:
        ledger.add_oidc_fingerprint(account, PROVIDER, "d" * 40)
    assert prints.value.code == "InvalidParameter.Fingerprints"
    with pytest.raises(NotFound) as missing:
        ledger.add_oidc_client_id(account, "nope", "x")
    assert missing.value.code == "EntityNotExist.Oidc-provider"
    assert _head(ledger) == head
