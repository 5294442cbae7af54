"""Start-up checks, through the ``mandate`` command: concurrent migrations all succeed; a
configuration error is one line; a process refuses to start with keys other than those its
store was written with, naming the key; a serve that cannot reach PostgreSQL says why.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from mandate.api.runtime import Runtime, StoreUnavailable
from mandate.api.settings import Settings
from tests.conftest import SCHEMA_PREFIX

HASH_KEY = "operability-hash-key-" + "h" * 32


def _mandate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own CLI)
        [sys.executable, "-m", "mandate.api.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.postgres
def test_three_concurrent_migrates_on_a_fresh_schema_all_succeed(
    postgres_dsn: str, tmp_path: Path
) -> None:
    name = SCHEMA_PREFIX + secrets.token_hex(6)  # not created: migrate creates it
    parts = urlsplit(postgres_dsn)
    url = urlunsplit(parts._replace(query=f"schema={name}"))
    env = {"MANDATE_DATABASE_URL": url, "MANDATE_HASH_KEY": HASH_KEY}
    env["MANDATE_STATE_DIR"] = str(tmp_path)
    try:
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "mandate.api.cli", "migrate"],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outcomes = [(run.wait(timeout=120), *run.communicate()) for run in runs]
        assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes
        assert all("schema ready" in out for _, out, _ in outcomes)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MANDATE_MAX_BODY_BYTES": "lots"}, "MANDATE_MAX_BODY_BYTES"),
        ({"MANDATE_HASH_KEY": "short-secret"}, "MANDATE_HASH_KEY must be at least 32"),
        ({"MANDATE_DATABASE_URL": "mysql://db/x"}, "MANDATE_DATABASE_URL"),
        ({"MANDATE_ENV": "production"}, "production needs"),
    ],
)
def test_a_configuration_error_is_one_line(env: dict[str, str], named: str) -> None:
    run = _mandate("migrate", env=env)
    err = run.stderr
    assert run.returncode == 2
    assert err.startswith("mandate: invalid configuration:"), err
    assert err.strip().count("\n") == 0, err
    assert named in err
    assert "short-secret" not in err  # a value may be a secret: never echoed


def _runtime(url: str, **overrides: object) -> Runtime:
    settings: dict[str, object] = {
        "database_url": url,
        "hash_key": HASH_KEY,
        "admin_token": "t" * 40,
        "token_signing_key": "token-key-" + "t" * 32,
        "run_projections": False,
        **overrides,
    }
    return Runtime(Settings(**settings), create_tables=True)  # type: ignore[arg-type]


def test_keys_other_than_the_stores_refuse_to_start(store_url: str, tmp_path: Path) -> None:
    _runtime(store_url).stop()  # the first start records the keys' fingerprints
    _runtime(store_url).stop()  # the same keys start again
    with pytest.raises(StoreUnavailable, match=r"^MANDATE_HASH_KEY \(key id k1\) is not the key"):
        _runtime(store_url, hash_key="another-hash-key-" + "x" * 32)
    with pytest.raises(StoreUnavailable, match=r"^MANDATE_TOKEN_SIGNING_KEY \(key id t1\)"):
        _runtime(store_url, token_signing_key="another-token-key-" + "x" * 32)
    with pytest.raises(StoreUnavailable, match=r"mandate\.audit-signing-key\.pem is not the key"):
        _runtime(store_url, state_dir=tmp_path / "elsewhere")  # another generated audit key
    # a new key id is a rotation: recorded, then held to as well
    _runtime(store_url, hash_key_id="k2", hash_key="rotated-hash-key-" + "r" * 32).stop()
    with pytest.raises(StoreUnavailable, match=r"key id k2"):
        _runtime(store_url, hash_key_id="k2", hash_key="not-the-rotated-" + "r" * 32)


@pytest.mark.postgres
def test_a_process_with_another_hash_key_exits_with_one_line(
    postgres_url: str, tmp_path: Path
) -> None:
    _runtime(postgres_url).stop()
    env = {
        "MANDATE_DATABASE_URL": postgres_url,
        "MANDATE_HASH_KEY": "another-hash-key-" + "x" * 32,
        "MANDATE_TOKEN_SIGNING_KEY": "token-key-" + "t" * 32,
    }
    run = _mandate("serve", env=env)
    err = run.stderr
    assert run.returncode == 2
    assert err.strip().count("\n") == 0, err
    assert "MANDATE_HASH_KEY (key id k1) is not the key this store was written with" in err
    assert "another-hash-key" not in err


@pytest.mark.postgres
def test_serve_on_a_wrong_port_prints_one_line(postgres_dsn: str, tmp_path: Path) -> None:
    parts = urlsplit(postgres_dsn)
    netloc = f"{parts.username or 'postgres'}@127.0.0.1:{_free_port()}"
    url = urlunsplit(parts._replace(netloc=netloc))
    run = _mandate("serve", env={"MANDATE_DATABASE_URL": url, "MANDATE_STATE_DIR": str(tmp_path)})
    err = run.stderr
    assert run.returncode == 2
    assert err.strip().count("\n") == 0, err
    assert "nothing accepts connections" in err
    assert "Traceback" not in err
