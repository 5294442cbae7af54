"""What the shared nonce store costs a signed request on PostgreSQL (issue 14).

Run ``python -m tests.bench.shared_nonces [--dsn postgresql://…] [--calls N]`` (the DSN
defaults to ``MANDATE_TEST_POSTGRES_DSN``). Two runtimes are opened with their tables, each on
a throwaway schema ``mandate_bench_nonces_<hex>`` (dropped at the end, only they); then, one
call at a time, ``ReplayGuard.remember_nonce`` of fresh nonces four ways, the sides alternating
in blocks so that a busy neighbour weighs on each alike:

- ``process cache``: the in-process ``NonceCache`` only (SQLite's path, and a read's under
  ``MANDATE_SHARED_NONCES=writes``);
- ``cache + table``: the cache, then the claim in ``mandate_signature_nonces`` (a write's
  path; every signed request's under ``all``);
- ``cache + UNLOGGED table``: the same, the table ``ALTER``-ed ``UNLOGGED`` on a second
  throwaway schema — the alternative weighed and not chosen (``projections.store.nonces``);
- ``replay, same process``: a nonce the cache already holds (refused without I/O).

It prints a markdown table of the median and p99 per call in microseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import time
import uuid
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.api.signing import ReplayGuard, SignatureNonceUsed
from mandate.projections.store.nonces import NONCE_TABLE
from tests.bench.harness import code_version, load_average, machine

BLOCK = 200


class _Signed:
    def __init__(self, nonce: str) -> None:
        self.access_key_id = "LTAI5tBenchKey000001"
        self.security_token = None
        self.nonce = nonce
        self.timestamp = datetime.now(UTC)
        self.expires = None

    def verify(self, secret: str) -> None:
        return None


def _with_schema(dsn: str, schema: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.shared_nonces")
    parser.add_argument("--dsn", default=os.environ.get("MANDATE_TEST_POSTGRES_DSN"))
    parser.add_argument("--calls", type=int, default=4000, help="per side (default 4000)")
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error("a PostgreSQL DSN is needed (--dsn or MANDATE_TEST_POSTGRES_DSN)")
    schemas = ["mandate_bench_nonces_" + secrets.token_hex(4) for _ in range(2)]
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    runtimes: list[Runtime] = []
    try:
        for schema in schemas:
            settings = Settings(
                database_url=_with_schema(args.dsn, schema),
                hash_key="k" * 40,
                admin_token="t" * 40,
            )
            runtimes.append(Runtime(settings, create_tables=True))
        with psycopg.connect(args.dsn, autocommit=True) as conn:  # the alternative weighed
            conn.execute(
                sql.SQL("ALTER TABLE {} SET UNLOGGED").format(
                    sql.Identifier(schemas[1], NONCE_TABLE)
                )
            )
        times = _measure(runtimes[0], runtimes[1], args.calls)
    finally:
        for runtime in runtimes:
            runtime.stop()
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    print("## Shared nonces: a signed request's nonce check\n")
    print(f"{machine()}; code {code_version()}; load {load_average()}.\n")
    print("| path | calls | p50 µs | p99 µs |")
    print("|---|---:|---:|---:|")
    for name, samples in times.items():
        ordered = sorted(samples)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        print(f"| {name} | {len(samples)} | {statistics.median(samples):.1f} | {p99:.1f} |")
    return 0


def _measure(logged: Runtime, unlogged: Runtime, calls: int) -> dict[str, list[float]]:
    local = ReplayGuard()
    guards = {
        "cache + table": ReplayGuard(shared=logged.nonces),
        "cache + UNLOGGED table (not chosen)": ReplayGuard(shared=unlogged.nonces),
    }
    seen = _Signed(uuid.uuid4().hex)
    local.remember_nonce(seen)
    times: dict[str, list[float]] = {
        "process cache": [],
        "cache + table": [],
        "cache + UNLOGGED table (not chosen)": [],
        "replay, same process": [],
    }
    for _ in range(max(1, calls // BLOCK)):
        for name in times:
            for _ in range(BLOCK):
                signed = seen if name.startswith("replay") else _Signed(uuid.uuid4().hex)
                guard = guards.get(name, local)
                started = time.perf_counter()
                with contextlib.suppress(SignatureNonceUsed):
                    guard.remember_nonce(signed, writes=True)
                times[name].append((time.perf_counter() - started) * 1e6)
    return times


if __name__ == "__main__":
    raise SystemExit(main())
