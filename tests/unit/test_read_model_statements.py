"""Read-model statements are composed from typed pieces: names quoted, placeholders per store."""

from __future__ import annotations

import pytest
from psycopg import sql

from mandate.projections.store.statements import (
    Dialect,
    Param,
    Slot,
    SqliteIdentifier,
    Table,
    Text,
    created_table,
    parse,
)

SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgres")


def test_a_template_is_read_into_parts_and_a_quoted_literal_stays_text() -> None:
    parts = parse("SELECT * FROM {p}_facts WHERE kind IN ('a?', '{p}') AND x = ? {values}")
    assert parts == (
        Text("SELECT * FROM "),
        Table("_facts"),
        Text(" WHERE kind IN ('a?', '{p}') AND x = "),
        Param(),
        Text(" "),
        Slot("values"),
    )


def test_sqlite_names_are_quoted_and_parameters_are_question_marks() -> None:
    statement = SQLITE.compose(
        "CREATE INDEX {i}_x ON {p}_facts (kind) WHERE a = ?", schema=None, prefix="t_v1"
    )
    assert SQLITE.query(statement) == 'CREATE INDEX "t_v1_x" ON "t_v1_facts" (kind) WHERE a = ?'
    assert SqliteIdentifier('we"ird').as_string() == '"we""ird"'


def test_postgres_tables_are_schema_qualified_identifiers_and_indexes_are_not() -> None:
    statement = POSTGRES.compose(
        "CREATE INDEX {i}_x ON {p}_facts (kind) WHERE a = ?", schema="s", prefix="t_v1"
    )
    query = POSTGRES.query(statement)
    assert isinstance(query, sql.Composed)
    assert query.as_string(None) == (
        'CREATE INDEX "t_v1_x" ON "s"."t_v1_facts" (kind) WHERE a = %s'
    )


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (SQLITE, "SELECT 1 FROM (VALUES (?, ?), (?, ?)) AS s(a, b)"),
        (POSTGRES, "SELECT 1 FROM (VALUES (%s, %s), (%s, %s)) AS s(a, b)"),
    ],
)
def test_a_values_list_is_composed_not_substituted(dialect: Dialect, expected: str) -> None:
    statement = dialect.compose(
        "SELECT 1 FROM (VALUES {values}) AS s(a, b)",
        schema=None,
        prefix="t",
        slots={"values": dialect.values(2, 2)},
    )
    query = dialect.query(statement)
    text = query if isinstance(query, str) else query.as_string(None)
    assert text == expected


def test_a_missing_piece_is_refused() -> None:
    with pytest.raises(KeyError):
        SQLITE.compose("SELECT {values}", schema=None, prefix="t")


def test_the_table_a_create_statement_makes() -> None:
    assert created_table("CREATE TABLE IF NOT EXISTS {p}_state (k TEXT)") == "_state"
    assert created_table("CREATE INDEX IF NOT EXISTS {i}_x ON {p}_state (k)") is None
