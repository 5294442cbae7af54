"""OIDC providers' quotas under racing writers, on both stores (SQLite, then PostgreSQL).

RAM: an account registers at most 100 OIDC providers, and one issuer URL serves at most one
of them (CreateOIDCProvider). The ledger decides both by claims (``domain.sts.oidc_providers``):
concurrent creates collide on one claim's first event and the re-run is refused, so no
interleaving gives an account a 101st provider or two providers of one issuer.

Pages: CreateOIDCProvider (at most 100 OIDC IdPs in an account),
https://www.alibabacloud.com/help/en/ram/developer-reference/api-ims-2019-08-15-createoidcprovider;
managing OIDC IdPs, https://www.alibabacloud.com/help/en/ram/user-guide/manage-an-oidc-idp
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.audit import AuditContext
from mandate.domain.common.errors import Conflict
from mandate.domain.sts.oidc_providers import MAX_PROVIDERS_PER_ACCOUNT, OIDCProvider
from tests.oidc_support import CLIENT_ID, ISSUER, jwks

THREADS = 6
ADMIN = AuditContext(actor="mandate:admin", request_id="req-oidc-race")


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    settings = Settings(
        database_url=store_url,
        admin_token="test-admin-token-" + "a" * 32,
        hash_key="test-hash-key-" + "h" * 32,
        postgres_pool_size=THREADS + 2,
    )
    started = Runtime(settings, create_tables=True)
    started.start()
    try:
        yield started
    finally:
        started.stop()


def _race(command: Callable[[int], Any]) -> list[Any]:
    """``command(i)`` on THREADS threads released together: each result or error."""
    barrier = threading.Barrier(THREADS)
    outcomes: list[Any] = [None] * THREADS

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[i] = command(i)
        except Exception as error:  # judged by the test
            outcomes[i] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def _live_providers(runtime: Runtime, account: str) -> list[OIDCProvider]:
    log = runtime.ledger.recorder.select_notifications(1, 1_000_000)
    ids = {n.originator_id for n in log if n.topic == "mandate:OIDCProviderCreated.v1"}
    found = [runtime.ledger.repository.get(i) for i in ids]
    return [
        p
        for p in found
        if isinstance(p, OIDCProvider) and p.account_id == account and not p.deleted
    ]


def _create(runtime: Runtime, account: str, name: str, issuer: str) -> Any:
    ledger = runtime.ledger
    return runtime.write(
        ADMIN,
        lambda: ledger.create_oidc_provider(
            account, name, issuer_url=issuer, client_ids=[CLIENT_ID], jwks=jwks()
        ),
    )


def _refused(outcome: Any, code: str) -> bool:
    """Refused with ``code`` — or, after the ledger's re-runs all lost, ConcurrentModification
    (which also wrote nothing)."""
    return isinstance(outcome, Conflict) and outcome.code in (code, "ConcurrentModification")


def test_racing_creates_of_one_issuer_leave_one_provider(runtime: Runtime) -> None:
    ledger = runtime.ledger
    account = runtime.write(ADMIN, lambda: ledger.open_account("Acme")).account_id
    outcomes = _race(lambda i: _create(runtime, account, f"idp-{i}", ISSUER))
    created = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(created) == 1, outcomes
    assert all(
        _refused(o, "EntityAlreadyExists.OIDCProvider.IssuerUrl")
        for o in outcomes
        if isinstance(o, Exception)
    ), outcomes
    assert [p.id for p in _live_providers(runtime, account)] == [created[0].entity_id]
    # the same issuer, spelt differently, is the same issuer (the path keeps its case)
    assert ISSUER == "https://idp.example.test/tenant"
    head = ledger.recorder.max_notification_id()
    with pytest.raises(Conflict) as again:
        _create(runtime, account, "other", "https://IdP.Example.Test:443/tenant/")
    assert again.value.code == "EntityAlreadyExists.OIDCProvider.IssuerUrl"
    assert ledger.recorder.max_notification_id() == head  # refused, wrote nothing


def test_racing_creates_at_the_quota_never_exceed_it(runtime: Runtime) -> None:
    ledger = runtime.ledger
    account = runtime.write(ADMIN, lambda: ledger.open_account("Acme")).account_id
    first = MAX_PROVIDERS_PER_ACCOUNT - 2
    for i in range(first):
        _create(runtime, account, f"idp-{i}", f"https://idp{i}.example.test")
    outcomes = _race(lambda i: _create(runtime, account, f"late-{i}", f"https://late{i}.test"))
    created = [o for o in outcomes if not isinstance(o, Exception)]
    assert 1 <= len(created) <= 2, outcomes
    assert all(
        _refused(o, "LimitExceeded.OIDCProvider") for o in outcomes if isinstance(o, Exception)
    ), outcomes
    while len(_live_providers(runtime, account)) < MAX_PROVIDERS_PER_ACCOUNT:
        _create(runtime, account, "filler", "https://filler.example.test")
    head = ledger.recorder.max_notification_id()
    with pytest.raises(Conflict) as full:
        _create(runtime, account, "one-more", "https://more.example.test")
    assert full.value.code == "LimitExceeded.OIDCProvider"
    assert ledger.recorder.max_notification_id() == head  # refused, wrote nothing
    # a delete frees its slot and its issuer: the same issuer may be registered again
    runtime.write(ADMIN, lambda: ledger.delete_oidc_provider(account, "idp-0"))
    _create(runtime, account, "idp-0-again", "https://IDP0.example.test:443/")
    assert len(_live_providers(runtime, account)) == MAX_PROVIDERS_PER_ACCOUNT


def test_racing_one_member_changes_of_one_provider_all_survive(runtime: Runtime) -> None:
    """IMS's AddClientIdToOIDCProvider from six writers at once: each applies its change to
    the provider as it is when saved (a conflicting save re-runs), so no change is lost."""
    ledger = runtime.ledger
    account = runtime.write(ADMIN, lambda: ledger.open_account("Acme")).account_id
    _create(runtime, account, "ci-idp", ISSUER)
    outcomes = _race(
        lambda i: runtime.write(
            ADMIN, lambda: ledger.add_oidc_client_id(account, "ci-idp", f"app-{i}")
        )
    )
    lost = [o for o in outcomes if isinstance(o, Exception)]
    # after every re-run lost, a writer hears ConcurrentModification (and wrote nothing)
    assert all(_refused(o, "ConcurrentModification") for o in lost), outcomes
    (provider,) = _live_providers(runtime, account)
    added = {f"app-{i}" for i, o in enumerate(outcomes) if not isinstance(o, Exception)}
    assert sorted(provider.client_ids) == sorted({CLIENT_ID, *added})
    assert added, outcomes
