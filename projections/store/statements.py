"""The read models' SQL, composed per store from typed pieces, never edited as text.

PostgreSQL statements are ``psycopg.sql`` compositions (``SQL``, ``Identifier``,
``Placeholder``), as eventsourcing's own recorders build theirs; for SQLite this module holds
the same few pieces (``SqliteSQL``, ``SqliteIdentifier``, ``SqlitePlaceholder``), rendering
quoted identifiers and ``?`` placeholders. A read model writes each statement once, as a
template: ``{p}_facts`` names one of its copy's tables (schema-qualified on PostgreSQL),
``{i}_facts_kind`` one of its indexes (never qualified: an index lives in its table's
schema), ``?`` a parameter and ``{name}`` a piece the caller composes (a ``VALUES`` list).
``parse`` reads a template into those parts once; ``Dialect.compose`` builds the statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeAlias

from psycopg import sql as pg

__all__ = [
    "Dialect",
    "Fragment",
    "Query",
    "SqliteComposable",
    "SqliteComposed",
    "SqliteIdentifier",
    "SqlitePlaceholder",
    "SqliteSQL",
    "parse",
]


# --- SQLite's pieces: psycopg.sql's shape, SQLite's quoting --------------------------------


class SqliteComposable:
    """A piece of a SQLite statement; ``as_string`` renders it (``context``: unused, as in
    psycopg's when there is no connection)."""

    __slots__ = ()

    def as_string(self, context: object = None) -> str:
        raise NotImplementedError

    def __add__(self, other: SqliteComposable) -> SqliteComposed:
        return SqliteComposed((self, other))


class SqliteComposed(SqliteComposable):
    """A sequence of pieces; rendered once (every piece is immutable)."""

    __slots__ = ("_text", "parts")

    def __init__(self, parts: Iterable[SqliteComposable]) -> None:
        self.parts = tuple(parts)
        self._text: str | None = None

    def as_string(self, context: object = None) -> str:
        if self._text is None:
            self._text = "".join(part.as_string() for part in self.parts)
        return self._text


class SqliteSQL(SqliteComposable):
    """Text of the statement itself (ours, never a value)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def as_string(self, context: object = None) -> str:
        return self.text

    def join(self, parts: Iterable[SqliteComposable]) -> SqliteComposed:
        joined: list[SqliteComposable] = []
        for part in parts:
            if joined:
                joined.append(self)
            joined.append(part)
        return SqliteComposed(joined)


class SqliteIdentifier(SqliteComposable):
    """A (dotted) name, each part double-quoted with its quotes doubled, as SQL says."""

    __slots__ = ("names",)

    def __init__(self, *names: str) -> None:
        self.names = names

    def as_string(self, context: object = None) -> str:
        return ".".join('"' + '""'.join(name.split('"')) + '"' for name in self.names)


class SqlitePlaceholder(SqliteComposable):
    __slots__ = ()

    def as_string(self, context: object = None) -> str:
        return "?"


Fragment: TypeAlias = pg.Composable | SqliteComposable
"""A piece of a statement in either dialect."""
Query: TypeAlias = pg.Composed | pg.SQL | str
"""What a cursor of the store executes: a composition on PostgreSQL, text on SQLite."""


# --- templates ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Table:
    suffix: str


@dataclass(frozen=True, slots=True)
class Index:
    suffix: str


@dataclass(frozen=True, slots=True)
class Param:
    pass


@dataclass(frozen=True, slots=True)
class Slot:
    name: str


Part: TypeAlias = Text | Table | Index | Param | Slot

# A quoted literal first, so that a ``?`` or a brace inside one stays text.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\{p\}(\w*)|\{i\}(\w*)|\{(\w+)\}|\?")


@lru_cache(maxsize=1024)
def parse(template: str) -> tuple[Part, ...]:
    """The parts of a statement template (see the module's docstring)."""
    parts: list[Part] = []
    done = 0
    for match in _TOKEN.finditer(template):
        table, index, slot = match.groups()
        if match.group().startswith("'"):
            continue
        if match.start() > done:
            parts.append(Text(template[done : match.start()]))
        done = match.end()
        if table is not None:
            parts.append(Table(table))
        elif index is not None:
            parts.append(Index(index))
        elif slot is not None:
            parts.append(Slot(slot))
        else:
            parts.append(Param())
    if done < len(template):
        parts.append(Text(template[done:]))
    return tuple(parts)


def created_table(template: str) -> str | None:
    """The table suffix a ``CREATE TABLE`` template creates, else None."""
    parts = parse(template)
    if len(parts) < 2 or not isinstance(parts[0], Text) or not isinstance(parts[1], Table):
        return None
    return parts[1].suffix if parts[0].text.split()[:2] == ["CREATE", "TABLE"] else None


@dataclass(frozen=True, slots=True)
class Dialect:
    """Which store a statement is for, and how its pieces are made there."""

    name: Literal["sqlite", "postgres"]

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"

    def text(self, text: str) -> Fragment:
        return pg.SQL(text) if self.is_postgres else SqliteSQL(text)

    def identifier(self, *names: str) -> Fragment:
        return pg.Identifier(*names) if self.is_postgres else SqliteIdentifier(*names)

    def placeholder(self) -> Fragment:
        return pg.Placeholder() if self.is_postgres else SqlitePlaceholder()

    def join(self, separator: str, parts: Iterable[Fragment]) -> Fragment:
        if self.is_postgres:
            return pg.SQL(separator).join([_pg(part) for part in parts])
        return SqliteSQL(separator).join(_sqlite(part) for part in parts)

    def composed(self, parts: Iterable[Fragment]) -> Fragment:
        if self.is_postgres:
            return pg.Composed([_pg(part) for part in parts])
        return SqliteComposed(_sqlite(part) for part in parts)

    def values(self, rows: int, width: int) -> Fragment:
        """``(?, ?), (?, ?)``: the parameters of ``rows`` rows of a ``VALUES`` list."""
        row = self.composed([self.text("("), self.placeholders(width), self.text(")")])
        return self.join(", ", [row] * rows)

    def placeholders(self, count: int) -> Fragment:
        return self.join(", ", [self.placeholder() for _ in range(count)])

    def compose(
        self,
        template: str,
        *,
        schema: str | None,
        prefix: str,
        slots: Mapping[str, Fragment] | None = None,
    ) -> Fragment:
        """The statement ``template`` names, for the copy ``prefix`` (in ``schema``)."""
        pieces: list[Fragment] = []
        for part in parse(template):
            if isinstance(part, Text):
                pieces.append(self.text(part.text))
            elif isinstance(part, Table):
                name = prefix + part.suffix
                pieces.append(self.identifier(*((schema, name) if schema else (name,))))
            elif isinstance(part, Index):
                pieces.append(self.identifier(prefix + part.suffix))
            elif isinstance(part, Param):
                pieces.append(self.placeholder())
            else:
                if slots is None or part.name not in slots:
                    raise KeyError(f"the statement needs a {{{part.name}}} piece")
                pieces.append(slots[part.name])
        return self.composed(pieces)

    def frozen(self, statement: Fragment) -> Fragment:
        """``statement`` rendered once, for a statement run many times: psycopg would render a
        composition again at every ``execute`` (a SQLite composition keeps its text anyway)."""
        if isinstance(statement, pg.Composable) and not isinstance(statement, pg.SQL):
            return pg.SQL(statement.as_string(None))
        return statement

    def query(self, statement: Fragment) -> Query:
        """What a cursor executes: the composition itself on PostgreSQL, its text on SQLite."""
        if isinstance(statement, SqliteComposable):
            return statement.as_string()
        if isinstance(statement, pg.Composed | pg.SQL):
            return statement
        return pg.Composed([statement])


def _pg(part: Fragment) -> pg.Composable:
    if not isinstance(part, pg.Composable):
        raise TypeError(f"a SQLite piece in a PostgreSQL statement: {part!r}")
    return part


def _sqlite(part: Fragment) -> SqliteComposable:
    if not isinstance(part, SqliteComposable):
        raise TypeError(f"a PostgreSQL piece in a SQLite statement: {part!r}")
    return part
