"""The store fixtures give each test a private, working store and clean up only what they made."""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

SCHEMA_PATTERN = re.compile(r"mandate_t_[0-9a-f]+")


def _split_schema(url: str) -> tuple[str, str]:
    """Return the libpq DSN without ``?schema=`` and the schema it named (as settings code does)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = dict(query)["schema"]
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def _schema_exists(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return row is not None


def _tables(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    ).fetchall()
    return {str(name) for (name,) in rows}


@pytest.mark.postgres
def test_postgres_url_names_a_fresh_schema_that_a_connection_can_work_in(
    postgres_url: str,
) -> None:
    """A connection using the URL's schema creates its tables there, not in public."""
    dsn, schema = _split_schema(postgres_url)
    assert SCHEMA_PATTERN.fullmatch(schema)
    assert dsn.startswith(("postgresql://", "postgres://"))

    with psycopg.connect(dsn, options=f"-c search_path={schema}", autocommit=True) as conn:
        assert conn.execute("SELECT current_schema()").fetchone() == (schema,)
        assert _tables(conn, schema) == set()
        conn.execute("CREATE TABLE fixture_probe (id integer PRIMARY KEY)")
        conn.execute("INSERT INTO fixture_probe VALUES (1)")
        assert _tables(conn, schema) == {"fixture_probe"}
        assert conn.execute("SELECT count(*) FROM fixture_probe").fetchone() == (1,)


@pytest.mark.postgres
def test_postgres_url_teardown_drops_only_the_tests_own_schema(
    request: pytest.FixtureRequest, postgres_dsn: str
) -> None:
    """Teardown drops the test's schema and leaves public and a look-alike neighbour intact."""
    neighbour = f"mandate_t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        public_existed = _schema_exists(conn, "public")
        public_before = _tables(conn, "public")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(neighbour)))
        conn.execute(
            sql.SQL("CREATE TABLE {}.fixture_probe (id integer)").format(sql.Identifier(neighbour))
        )

    dropped: list[str] = []

    def check_after_fixture_teardown() -> None:
        # Registered before postgres_url is requested, so it runs after that fixture's teardown.
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            try:
                assert not _schema_exists(conn, dropped[0])
                assert _tables(conn, neighbour) == {"fixture_probe"}
                assert _schema_exists(conn, "public") == public_existed
                assert _tables(conn, "public") >= public_before
            finally:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(neighbour))
                )

    request.addfinalizer(check_after_fixture_teardown)
    url: str = request.getfixturevalue("postgres_url")
    dsn, schema = _split_schema(url)
    dropped.append(schema)
    assert schema != neighbour

    # Same table name as the neighbour's: only the schema tells them apart.
    with psycopg.connect(dsn, options=f"-c search_path={schema}", autocommit=True) as conn:
        conn.execute("CREATE TABLE fixture_probe (id integer)")
        conn.execute("CREATE TABLE fixture_other (id integer)")
        assert _tables(conn, schema) == {"fixture_probe", "fixture_other"}
        assert _tables(conn, neighbour) == {"fixture_probe"}


def test_store_url_offers_each_store_once(request: pytest.FixtureRequest, store_url: str) -> None:
    """The sqlite case is a file in tmp_path; the postgres case is marked and names a schema."""
    store = request.node.callspec.id
    marked = request.node.get_closest_marker("postgres") is not None
    if store == "sqlite":
        assert store_url.startswith("sqlite:///")
        assert store_url.endswith("/mandate.db")
        assert not marked
    else:
        assert store == "postgres"
        assert SCHEMA_PATTERN.fullmatch(_split_schema(store_url)[1])
        assert marked
