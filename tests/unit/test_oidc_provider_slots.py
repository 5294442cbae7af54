"""The quota slot an OIDC provider holds (RAM: at most 100 providers an account), on the
in-memory store: recorded in its creation event, released by its deletion with one claim
read; a create tries the slots in its name's order, reading a few claims, not one per
provider already there. The limit itself, under racing writers on both stores, is
tests/integration/test_oidc_provider_limits.py.

Page: CreateOIDCProvider (at most 100 OIDC IdPs in an account),
https://www.alibabacloud.com/help/en/ram/developer-reference/api-ims-2019-08-15-createoidcprovider
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.federation import read_oidc_provider
from mandate.domain.sts.oidc_providers import (
    CLAIM_KIND,
    ISSUER_CLAIM_KIND,
    MAX_PROVIDERS_PER_ACCOUNT,
    SLOT_CLAIM_KIND,
    OIDCProvider,
    check_provider,
    issuer_key,
    slot_order,
)
from tests.oidc_support import CLIENT_ID, jwks


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )


@contextmanager
def counted_claims(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts the claim reads by kind while in the block."""
    reads: Counter[str] = Counter()
    claim = ledger._claim

    def counting(account_id: str, kind: str, name: str) -> NameClaim | None:
        reads[kind] += 1
        return claim(account_id, kind, name)

    with monkeypatch.context() as patch:
        patch.setattr(ledger, "_claim", counting)
        yield reads


def _create(ledger: Ledger, account: str, name: str) -> None:
    ledger.create_oidc_provider(
        account,
        name,
        issuer_url=f"https://{name}.example.test",
        client_ids=[CLIENT_ID],
        jwks=jwks(),
    )


def _held_slots(ledger: Ledger, account: str) -> dict[str, object]:
    held = {}
    for slot in map(str, range(MAX_PROVIDERS_PER_ACCOUNT)):
        claim = ledger._claim(account, SLOT_CLAIM_KIND, slot)
        if claim is not None and claim.entity_id is not None:
            held[slot] = claim.entity_id
    return held


def test_slot_order_tries_every_slot_once_and_spreads_names() -> None:
    for name in ("ci-idp", "github", "k8s-prod", "x"):
        assert sorted(slot_order(name), key=int) == [str(i) for i in range(100)]
    firsts = {slot_order(f"idp-{i}")[0] for i in range(50)}
    assert len(firsts) > 25  # fifty names do not queue up behind one slot


def test_the_slot_is_recorded_and_released_by_the_deletion_with_one_read(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = ledger.open_account("Acme").account_id
    for i in range(50):
        _create(ledger, account, f"idp-{i}")
    held = _held_slots(ledger, account)
    assert len(held) == 50
    provider = read_oidc_provider(ledger, account, "idp-7")
    assert provider.slot is not None
    assert held[provider.slot] == provider.id
    with counted_claims(ledger, monkeypatch) as reads:
        ledger.delete_oidc_provider(account, "idp-7")
    assert reads[SLOT_CLAIM_KIND] == 1  # the recorded slot, not a search of 100
    assert provider.slot not in _held_slots(ledger, account)


def test_a_create_reads_the_slots_its_name_tries_until_a_free_one(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half full: lowest-free probing read 51 slot claims here; this reads as many as the
    name's order meets taken slots, plus the free one (a fixed, small number)."""
    account = ledger.open_account("Acme").account_id
    for i in range(50):
        _create(ledger, account, f"idp-{i}")
    taken = set(_held_slots(ledger, account))
    order = slot_order("probe")
    tried = next(k for k, slot in enumerate(order, start=1) if slot not in taken)
    with counted_claims(ledger, monkeypatch) as reads:
        _create(ledger, account, "probe")
    assert reads[SLOT_CLAIM_KIND] == tried
    assert tried <= 4
    assert read_oidc_provider(ledger, account, "probe").slot == order[tried - 1]


def test_a_provider_created_before_the_slot_was_recorded_still_frees_its_slot(
    ledger: Ledger,
) -> None:
    """Its creation event has no slot (read back as None): its deletion looks the slot up
    among the claims, as every deletion used to."""
    account = ledger.open_account("Acme").account_id
    fields = check_provider(
        provider_name="old-idp",
        issuer_url="https://old.example.test",
        client_ids=[CLIENT_ID],
        jwks=jwks(),
    )
    provider = OIDCProvider(account_id=account, **fields)  # no slot, as such events were
    claims = [
        NameClaim(account_id=account, kind=kind, name=name, entity_id=provider.id)
        for kind, name in (
            (CLAIM_KIND, "old-idp"),
            (ISSUER_CLAIM_KIND, issuer_key("https://old.example.test")),
            (SLOT_CLAIM_KIND, "42"),
        )
    ]
    ledger._commit(*claims, provider)
    assert read_oidc_provider(ledger, account, "old-idp").slot is None
    assert _held_slots(ledger, account) == {"42": provider.id}
    ledger.delete_oidc_provider(account, "old-idp")
    assert _held_slots(ledger, account) == {}
