"""Operating Mandate: each connection failure names the part of the URL at fault.

(Concurrent migrations, the keys' check at start and one-line configuration errors:
test_startup_checks.py.)

Each connection failure is produced for real against the test PostgreSQL (a port nothing
listens on, a database and a role that do not exist, a host that cannot resolve); a wrong
password cannot be produced on a trust-authenticated server, so its libpq message is
classified directly.
"""

from __future__ import annotations

import secrets
import socket
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from mandate.api.settings import store_config
from mandate.api.startup.store_checks import StoreUnreachable, diagnose, probe

HASH_KEY = "operability-hash-key-" + "h" * 32


def _with_netloc(url: str, netloc: str, path: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=netloc, path=parts.path if path is None else path))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _failure(url: str) -> StoreUnreachable:
    with pytest.raises(StoreUnreachable) as caught:
        probe(store_config(url), need_schema=False)
    return caught.value


@pytest.mark.postgres
def test_each_connection_failure_names_its_part(postgres_dsn: str) -> None:
    parts = urlsplit(postgres_dsn)
    user, host = parts.username or "postgres", parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    cases = {
        "port": _with_netloc(postgres_dsn, f"{user}@{host}:{_free_port()}"),
        "database": _with_netloc(postgres_dsn, parts.netloc, "/no_such_db_" + secrets.token_hex(3)),
        "role": _with_netloc(postgres_dsn, f"no_such_role_{secrets.token_hex(3)}@{host}:{port}"),
        "host": _with_netloc(postgres_dsn, f"{user}@no-such-host.invalid:{port}"),
    }
    lines = {}
    for part, url in cases.items():
        failure = _failure(url)
        assert failure.diagnosis.part == part, (part, failure.diagnosis.line)
        lines[part] = failure.diagnosis.line
        assert "\n" not in failure.diagnosis.line
    assert len(set(lines.values())) == 4  # four failures, four different messages
    assert "check the port" in lines["port"]
    assert "no database" in lines["database"]
    assert "refuses role" in lines["role"]
    assert "cannot be resolved" in lines["host"]


def test_a_refused_password_is_named_without_the_password() -> None:
    config = store_config("postgresql://app:s3cret-pw@db.example:5432/mandate")
    error = psycopg.OperationalError(
        'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
        'FATAL:  password authentication failed for user "app"'
    )
    diagnosis = diagnose(error, config)
    assert diagnosis.part == "password"
    assert "s3cret-pw" not in diagnosis.line
    assert "'app'" in diagnosis.line


@pytest.mark.postgres
def test_a_missing_schema_says_run_migrate(postgres_url: str) -> None:
    with pytest.raises(StoreUnreachable, match="run `mandate migrate` first"):
        probe(store_config(postgres_url), need_schema=True)
