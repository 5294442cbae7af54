"""``tests.bench.summary`` and ``python -m tests.bench``'s table: what is recorded, and how
a module that crashed or recorded nothing still gets a row. No timing is measured here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.__main__ import MODULES, QUICK_OPTIONS, Outcome, command, rows
from tests.bench.summary import ENV, Figure, read, record, table, verdict


def test_record_is_a_no_op_without_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    record("x", "1", source="decide")
    assert list(tmp_path.iterdir()) == []


def test_record_appends_one_line_per_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "summary.jsonl"
    monkeypatch.setenv(ENV, str(path))
    record("decision", "2.7 µs", "≤ 10 µs", True, source="decide")
    record("memo", "0.3 µs", source="decide")
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert read(path) == [
        Figure("decide", "decision", "2.7 µs", "≤ 10 µs", True),
        Figure("decide", "memo", "0.3 µs", "", None),
    ]


def test_read_skips_lines_that_are_not_figures(tmp_path: Path) -> None:
    path = tmp_path / "summary.jsonl"
    path.write_text('not json\n[1, 2]\n{"source": "sts", "figure": "f", "value": "1"}\n')
    assert read(path) == [Figure("sts", "f", "1")]
    assert read(tmp_path / "absent.jsonl") == []


def test_table_shows_the_verdict_and_escapes_pipes() -> None:
    lines = table(
        [
            Figure("decide", "ratio", "0.92", "≥ 0.8", True),
            Figure("writes", "a | b", "0.05", "≥ 1.0", False),
            Figure("patterns", "worst", "10 µs"),
        ]
    )
    assert lines[0] == "| figure | value | target | pass/fail |"
    assert lines[2] == "| decide: ratio | 0.92 | ≥ 0.8 | ✅ pass |"
    assert lines[3] == "| writes: a \\| b | 0.05 | ≥ 1.0 | ❌ fail |"
    assert lines[4] == "| patterns: worst | 10 µs |  |  |"
    assert verdict(None) == ""


def test_rows_say_which_module_crashed_or_recorded_nothing(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    outcomes = [
        Outcome("decide", 0, 1.0, log),
        Outcome("sts", 2, 1.0, log),
        Outcome("startup", 0, 1.0, log),
    ]
    figures = [Figure("sts", "ratio", "1.0", "≤ 1.2", True), Figure("decide", "d", "1 µs")]
    out = rows(outcomes, figures)
    assert [(f.source, f.figure) for f in out[:2]] == [("decide", "d"), ("sts", "ratio")]
    assert out[2].source == "sts"
    assert "crashed (exit 2" in out[2].figure
    assert out[2].ok is False
    assert (out[3].source, out[3].figure) == ("startup", "no figures recorded")


def test_every_module_has_a_quick_command() -> None:
    assert set(QUICK_OPTIONS) == set(MODULES)
    argv = command("temporal", quick=True, postgres="postgresql://h/db")
    assert argv[1:3] == ["-m", "tests.bench.temporal"]
    assert argv[-2:] == ["--postgres-url", "postgresql://h/db"]
    assert "--postgres-dsn" not in command("decide", quick=False, postgres="postgresql://h/db")
