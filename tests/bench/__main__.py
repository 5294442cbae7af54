"""Every benchmark in one command, and one table of their headline figures.

``python -m tests.bench [--quick] [--only decide,sts] [--postgres DSN] [--verbose]`` runs each
benchmark module as a subprocess (``python -m tests.bench.<name>``, its own interpreter, as
when run alone) with ``MANDATE_BENCH_SUMMARY`` naming a file that the modules' ``record``
calls (``tests.bench.summary``) append their headline figures to. A module's own tables go
to a log file (shown with ``--verbose``); a module that crashes gets a row saying so and the
run goes on. Then one markdown table: figure, value, target, pass/fail, followed by the
machine, the commit and the load average.

The exit status is 1 only when a module crashed: a missed target is a finding, reported in
the table, not a failure of the command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.summary import ENV, Figure, read, table

# The options each module takes for ``--postgres`` (None: it needs no PostgreSQL).
POSTGRES_OPTION = {
    "decide": None,
    "patterns": None,
    "temporal": "--postgres-url",
    "sts": "--postgres-dsn",
    "entrustments": "--postgres-dsn",
    "processes": "--postgres-dsn",
    "access_review": None,
    "writes": "--postgres-dsn",
    "startup": "--postgres-url",
    "signing": None,
    "signed_authorize": None,
}
MODULES = tuple(POSTGRES_OPTION)

# ``--quick`` plus what keeps each module's quick run short enough for all of them to finish
# in about two minutes on a 2-core machine (one round where a module allows it).
QUICK_OPTIONS = {
    "decide": ["--quick", "--skip-concurrency-1"],
    "patterns": ["--quick", "--old-timeout", "0.5"],
    "temporal": ["--quick", "--events", "2000", "--samples", "200", "--skip-postgres"],
    "sts": ["--quick", "--rounds", "1", "--toggle-users", "8", "--concurrencies", "32"],
    "entrustments": ["--quick", "--rounds", "1", "--trials", "20", "--concurrencies", "32"],
    "processes": ["--quick", "--rounds", "1"],
    "access_review": ["--quick", "--sizes", "1500", "--no-before"],
    "writes": ["--quick"],
    "startup": ["--quick", "--events", "20000"],
    "signing": ["--quick"],
    "signed_authorize": ["--quick"],
}


@dataclass
class Outcome:
    """How one module's run ended."""

    name: str
    returncode: int
    seconds: float
    log: Path


def command(name: str, *, quick: bool, postgres: str | None) -> list[str]:
    """The subprocess's command line for module ``name``."""
    argv = [sys.executable, "-m", f"tests.bench.{name}"]
    if quick:
        argv += QUICK_OPTIONS[name]
    option = POSTGRES_OPTION[name]
    if postgres and option:
        argv += [option, postgres]
    return argv


def run_module(name: str, argv: list[str], *, summary: Path, log: Path, verbose: bool) -> Outcome:
    """Run one module, its output (stdout and stderr) into ``log`` and, if ``verbose``, here."""
    env = {**os.environ, ENV: str(summary)}
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            bufsize=1,
        )
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            if verbose:
                sys.stdout.write(line)
                sys.stdout.flush()
        returncode = process.wait()
    return Outcome(name, returncode, time.monotonic() - started, log)


def rows(outcomes: list[Outcome], figures: list[Figure]) -> list[Figure]:
    """The figures in module order, with a row for a module that crashed or recorded none."""
    out: list[Figure] = []
    for outcome in outcomes:
        mine = [f for f in figures if f.source == outcome.name]
        out += mine
        if outcome.returncode != 0:
            out.append(
                Figure(
                    outcome.name,
                    f"crashed (exit {outcome.returncode}; log {outcome.log})",
                    "",
                    ok=False,
                )
            )
        elif not mine:
            out.append(Figure(outcome.name, "no figures recorded", ""))
    known = {o.name for o in outcomes}
    out += [f for f in figures if f.source not in known]
    return out


def footer(outcomes: list[Outcome], *, quick: bool, load_before: str, seconds: float) -> list[str]:
    """The run's circumstances: when, what code, which machine, how loaded, how long."""
    from tests.bench.harness import code_version, load_average, machine

    times = ", ".join(f"{o.name} {o.seconds:.0f} s" for o in outcomes)
    return [
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `python -m tests.bench"
        f"{' --quick' if quick else ''}`, code {code_version()}. Machine: {machine()}; "
        f"load average before {load_before}, after {load_average()}. "
        f"Total {seconds:.0f} s ({times}).",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (about 2 minutes)")
    parser.add_argument(
        "--only", help=f"comma-separated modules to run (default all: {','.join(MODULES)})"
    )
    parser.add_argument("--postgres", help="DSN passed to the modules that use PostgreSQL")
    parser.add_argument("--verbose", action="store_true", help="show each module's own output")
    args = parser.parse_args(argv)
    names = list(MODULES)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - set(MODULES))
        if unknown or not names:
            parser.error(f"--only takes a comma-separated subset of {', '.join(MODULES)}")

    from tests.bench.harness import load_average

    load_before = load_average()
    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="mandate-bench-logs-"))
    summary = logs / "summary.jsonl"
    summary.touch()
    outcomes: list[Outcome] = []
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        argv_ = command(name, quick=args.quick, postgres=args.postgres)
        outcome = run_module(
            name, argv_, summary=summary, log=logs / f"{name}.log", verbose=args.verbose
        )
        outcomes.append(outcome)
        state = "ok" if outcome.returncode == 0 else f"crashed (exit {outcome.returncode})"
        print(f"{name}: {state}, {outcome.seconds:.0f} s", file=sys.stderr, flush=True)
    seconds = time.monotonic() - started
    title = f"## Mandate benchmarks{' (--quick)' if args.quick else ''}"
    lines = [
        title,
        "",
        *table(rows(outcomes, read(summary))),
        "",
        *footer(outcomes, quick=args.quick, load_before=load_before, seconds=seconds),
    ]
    print("\n".join(lines))
    print(f"\nEach module's own output: {logs}/<module>.log", file=sys.stderr)
    return 0 if all(o.returncode == 0 for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
