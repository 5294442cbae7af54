"""The keyring remembers the secrets it opened to verify signatures (``Keyring.open_secret``),
and that memory lets nothing through that the index refuses.

The real app under uvicorn, over the module's store (``conftest.serving``), with its own
runtime at hand to look at its keyring. Each refusal below comes with the secret still
remembered (asserted before the refused call): a deactivated or deleted AccessKey, a revoked
or expired session all answer RAM's code, because the index judges the key or session on
every request after the signature holds. A rotation empties the memory, and the next signed
call opens the secret again.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.identity.keyring import Keyring
from mandate.projections.decisions import authentication
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, Headers, serving
from tests.e2e.rpc_support import Key, RpcServer
from tests.e2e.test_signed_authorize import Tenant, _acs3, _problem, _tenant


@pytest.fixture(scope="module")
def served(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    settings = Settings(
        database_url=store_url,
        admin_token=ADMIN_TOKEN,
        hash_key=HASH_KEY,
        state_dir=Path(tmp_path_factory.mktemp("state")),
    )
    runtime = Runtime(settings, create_tables=True)
    with serving(runtime) as api:
        server = RpcServer(api)
        server.runtime = runtime  # type: ignore[attr-defined]
        yield server


def keyring(server: RpcServer) -> Keyring:
    runtime: Runtime = server.runtime  # type: ignore[attr-defined]
    return runtime.keyring


@pytest.fixture
def tenant(served: RpcServer) -> Tenant:
    return _tenant(served)


def _whoami(server: RpcServer, key: Key, token: str | None = None, **headers: str) -> Any:
    me = "/v1/sts/caller-identity"
    signed = _acs3(server, key, "GET", me, token=token)
    return server.api.get(me, headers={**signed, **headers})


def _remembered(server: RpcServer, key: Key, token: str | None = None) -> None:
    """A signed call succeeds and leaves ``key``'s secret opened: the next one is a hit."""
    ring = keyring(server)
    assert _whoami(server, key, token).status_code == 200
    hits = ring._opened.cache_info().hits
    assert _whoami(server, key, token).status_code == 200
    assert ring._opened.cache_info().hits == hits + 1


def _wrote(response: Any) -> Headers:
    assert response.status_code in (200, 201, 204), response.text
    position = response.json().get("position") if response.content else None
    return {"Min-Position": str(position)} if position is not None else {}


def test_a_deactivated_then_deleted_key_is_refused_though_its_secret_is_remembered(
    served: RpcServer, tenant: Tenant
) -> None:
    api = served.api
    users = f"/v1/accounts/{tenant.account_id}/users"
    issued = api.post(f"{users}/phone/access-keys", headers=tenant.root).json()
    key = Key(issued["access_key_id"], issued["access_key_secret"], tenant.account_id)
    _remembered(served, key)

    path = f"{users}/phone/access-keys/{key.access_key_id}"
    wait = _wrote(api.patch(path, json={"status": "Inactive"}, headers=tenant.root))
    _problem(_whoami(served, key, **wait), "InvalidAccessKeyId.Inactive", key.secret)

    wait = _wrote(api.patch(path, json={"status": "Active"}, headers=tenant.root))
    assert _whoami(served, key, **wait).status_code == 200

    wait = _wrote(api.delete(path, headers=tenant.root))
    _problem(_whoami(served, key, **wait), "InvalidAccessKeyId.NotFound", key.secret)


def test_a_revoked_session_is_refused_though_its_secret_is_remembered(
    served: RpcServer, tenant: Tenant
) -> None:
    session = tenant.session
    key = Key(session["access_key_id"], session["access_key_secret"], tenant.account_id)
    token = session["security_token"]
    _remembered(served, key, token)
    revoked = served.api.post(
        f"/v1/sts/sessions/{key.access_key_id}/revoke", json={}, headers=tenant.root
    )
    wait = _wrote(revoked)
    _problem(_whoami(served, key, token, **wait), "InvalidSecurityToken.Expired", key.secret)


def test_an_expired_session_is_refused_though_its_secret_is_remembered(
    served: RpcServer, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session was issued for 1800 s; the index's clock for sessions moves 2 h on (the
    request itself is freshly signed, so only the session's expiry refuses it)."""
    session = tenant.session
    key = Key(session["access_key_id"], session["access_key_secret"], tenant.account_id)
    token = session["security_token"]
    _remembered(served, key, token)

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(hours=2)

    monkeypatch.setattr(authentication, "datetime", Later)
    _problem(_whoami(served, key, token), "InvalidSecurityToken.Expired", key.secret)


def test_a_rotation_forgets_every_opened_secret(served: RpcServer, tenant: Tenant) -> None:
    ring = keyring(served)
    _remembered(served, tenant.phone)
    assert ring.opened_count >= 1
    rotation = ring.rotate()
    assert rotation.rewrapped == 0  # nothing to re-wrap: the memory goes all the same
    assert ring.opened_count == 0
    misses = ring._opened.cache_info().misses
    assert _whoami(served, tenant.phone).status_code == 200  # opened again
    assert ring._opened.cache_info().misses == misses + 1
    assert ring.opened_count == 1


def test_nothing_opened_is_shown(served: RpcServer, tenant: Tenant) -> None:
    """The keyring's repr never names a secret, and the keyring is never pickled."""
    ring = keyring(served)
    _remembered(served, tenant.phone)
    assert tenant.phone.secret not in repr(ring)
    assert ring.opened_count >= 1
    with pytest.raises(TypeError):
        pickle.dumps(ring)
