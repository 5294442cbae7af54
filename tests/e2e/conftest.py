"""The real HTTP app for end-to-end tests: uvicorn on a loopback socket, over SQLite and PostgreSQL.

One server runs per test module and store (``store_url`` is overridden here at module scope,
so that a server and its store live as long as the module); every test opens its own account,
so tests sharing a server never see each other's entities. Requests travel over TCP through
uvicorn exactly as a client's would: no ``TestClient``, no ASGI shortcut.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import uvicorn
from psycopg import sql

from mandate.api.app import create_app
from mandate.api.runtime import Runtime
from mandate.api.settings import Settings

ADMIN_TOKEN = "e2e-admin-token-" + "a" * 32
HASH_KEY = "e2e-hash-key-" + "h" * 32
SCHEMA_PREFIX = "mandate_e2e_"
STARTUP_TIMEOUT = 30.0

Headers = dict[str, str]


class MandateClient(httpx.Client):
    """An ``httpx.Client`` bound to the running server, with the credentials tests need."""

    def __init__(
        self, base_url: str, runtime: Runtime, *, verify: ssl.SSLContext | bool = True
    ) -> None:
        super().__init__(base_url=base_url, timeout=30.0, verify=verify)
        self.runtime = runtime
        self.admin: Headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @staticmethod
    def basic(access_key_id: str, access_key_secret: str) -> Headers:
        """HTTP Basic headers for an AccessKey."""
        pair = f"{access_key_id}:{access_key_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def open_account(self, name: str = "Acme") -> tuple[str, Headers]:
        """Open an account as the admin; return its id and its root's headers."""
        response = self.post("/v1/accounts", json={"name": name}, headers=self.admin)
        assert response.status_code == 201, response.text
        body = response.json()
        key = body["root_access_key"]
        return body["account_id"], self.basic(key["access_key_id"], key["access_key_secret"])

    def create_user(self, account_id: str, headers: Headers, user_name: str) -> Headers:
        """Create a user and an AccessKey for it as ``headers``; return the key's headers."""
        users = f"/v1/accounts/{account_id}/users"
        created = self.post(users, json={"user_name": user_name}, headers=headers)
        assert created.status_code == 201, created.text
        key = self.post(f"{users}/{user_name}/access-keys", headers=headers)
        assert key.status_code == 201, key.text
        issued = key.json()
        return self.basic(issued["access_key_id"], issued["access_key_secret"])

    def create_policy(
        self, account_id: str, headers: Headers, policy_name: str, statements: list[Any]
    ) -> dict[str, Any]:
        """Create a custom policy of ``statements``; return the answer."""
        response = self.post(
            f"/v1/accounts/{account_id}/policies",
            json={
                "policy_name": policy_name,
                "policy_document": {"Version": "1", "Statement": statements},
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def attach(
        self,
        account_id: str,
        headers: Headers,
        principal: str,
        policy_type: str,
        policy_name: str,
    ) -> int:
        """Attach a policy to ``principal`` (``users/<name>`` or ``groups/<name>``)."""
        response = self.put(
            f"/v1/accounts/{account_id}/{principal}/policies/{policy_type}/{policy_name}",
            headers=headers,
        )
        assert response.status_code == 200, response.text
        position: int = response.json()["position"]
        return position

    def authorize(self, headers: Headers, **body: Any) -> dict[str, Any]:
        """``POST /v1/authorize`` (always 200 when the call itself is valid)."""
        response = self.post("/v1/authorize", json=body, headers=headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def log_head(self) -> int:
        """The head of the log, as ``/readyz`` reports it."""
        response = self.get("/readyz")
        assert response.status_code == 200, response.text
        position: int = response.json()["head"]
        return position


def _with_schema(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("schema", schema)])))


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Return a fresh SQLite file, then a fresh PostgreSQL schema, each for one whole module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e')}/mandate.db"
        return
    dsn: str = request.getfixturevalue("postgres_dsn")
    name = SCHEMA_PREFIX + secrets.token_hex(6)
    schema = sql.Identifier(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    try:
        yield _with_schema(dsn, name)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '30s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


@pytest.fixture(scope="module")
def api(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MandateClient]:
    """Serve the real app over ``store_url`` on a loopback port; yield a client bound to it."""
    state_dir: Path = tmp_path_factory.mktemp("state")
    settings = Settings(
        database_url=store_url,
        admin_token=ADMIN_TOKEN,
        hash_key=HASH_KEY,
        state_dir=state_dir,
        audit_checkpoint_every_events=5,
    )
    with serving(Runtime(settings, create_tables=True)) as client:
        yield client


@contextlib.contextmanager
def serving(runtime: Runtime, *, tls: tuple[Path, Path] | None = None) -> Iterator[MandateClient]:
    """Serve the real app of ``runtime`` under uvicorn on a loopback port; yield a client.

    ``tls``: (certificate, key) PEM files to serve HTTPS with (the client trusts that
    certificate). The runtime is stopped when the server is."""
    # The socket is bound here and handed to uvicorn, so no other process can take the
    # port between choosing it and listening on it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(runtime=runtime),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="mandate-e2e-server", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                pytest.fail("the e2e server exited before it started", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"the e2e server did not start in {STARTUP_TIMEOUT} s", pytrace=False)
            time.sleep(0.01)
        scheme = "https" if tls else "http"
        verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True
        with MandateClient(f"{scheme}://127.0.0.1:{port}", runtime, verify=verify) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
        runtime.stop()
        sock.close()
        assert not thread.is_alive(), "the e2e server did not shut down"
