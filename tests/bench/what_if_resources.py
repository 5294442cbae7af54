"""What-if latency when resource-based policies name the account's principals.

``python -m tests.bench.what_if_resources [--quick] [--users 1000] [--runs 7] [--buckets 20]
[--postgres-dsn DSN]``

The world of ``tests.bench.what_if`` (A: ``--users`` users in 20 groups, 5 roles, a contract
to B; B as many users with delegations), plus ``--buckets`` bucket policies of A, each naming
50 of A's users, B's account and one of A's roles in an Allow and ``*`` in a Deny, and a
quarter as many of B's naming 20 of A's users and A's account: so every user of A is named by
one of A's buckets, and A's reach gains the statements of both accounts' policies on each
user, each path into a named role and each item a policy names
(``projections.decisions.resource_reach``). Timed as ``tests.bench.what_if`` times its
changes (rehearsal, copy, reach before, events, reach after, diff; no HTTP); medians.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.ledger.rehearsal import rehearse
from mandate.projections.decisions.what_if import copy_index, reach_of, what_if
from tests.bench.harness import postgres_schema
from tests.bench.what_if import ROLES, World, _median_ms

NAMED = 50
"""Users of A each bucket of A names."""


def _bucket(owner: str, name: str, principals: list[str], deny: bool) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": ["oss:GetObject", "oss:ListObjects"],
            "Resource": f"acs:oss:*:{owner}:{name}/*",
            "Principal": {"RAM": principals},
        }
    ]
    if deny:
        statements.append(
            {
                "Effect": "Deny",
                "Action": "oss:DeleteObject",
                "Resource": f"acs:oss:*:{owner}:{name}/*",
                "Principal": "*",
            }
        )
    return {"Version": "1", "Statement": statements}


def _named_users(a: str, first: int, count: int, users: int) -> list[str]:
    return [f"acs:ram::{a}:user/u{(first + k) % users:04d}" for k in range(count)]


def _with_buckets(world: World, buckets: int) -> None:
    ledger, a, b, users = world.runtime.ledger, world.a, world.b, world.users
    for k in range(buckets):
        names = [*_named_users(a, k * NAMED, NAMED, users), b, f"acs:ram::{a}:role/r{k % ROLES}"]
        document = _bucket(a, f"data{k}", names, deny=True)
        arn = f"acs:oss:*:{a}:data{k}"
        world.do(lambda arn=arn, document=document: ledger.put_resource_policy(a, arn, document))
    for k in range(max(1, buckets // 4)):
        document = _bucket(b, f"shared{k}", [*_named_users(a, k * 20, 20, users), a], deny=False)
        arn = f"acs:oss:*:{b}:shared{k}"
        world.do(lambda arn=arn, document=document: ledger.put_resource_policy(b, arn, document))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 users, 4 buckets, 3 runs")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--buckets", type=int, default=20)
    parser.add_argument(
        "--postgres-dsn", default=None, help="PostgreSQL (a fresh schema in it) instead of SQLite"
    )
    args = parser.parse_args()
    users, runs, buckets = (100, 3, 4) if args.quick else (args.users, args.runs, args.buckets)
    with contextlib.ExitStack() as stack:
        if args.postgres_dsn:
            url = stack.enter_context(postgres_schema(args.postgres_dsn, "mandate_bench_wir_"))
        else:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="mandate-wir-"))
            url = f"sqlite:///{Path(directory) / 'mandate.db'}"
        runtime = Runtime(
            Settings(
                database_url=url,
                hash_key="k" * 40,
                admin_token="t" * 40,
                run_projections=False,
                term_watch_interval=3600.0,
            ),
            create_tables=True,
        )
        runtime.start()
        try:
            world = World(runtime, users)
            index, a = runtime.index, world.a
            now = datetime.now(UTC)
            bare = copy_index(index)
            plain_ms, plain = _median_ms(lambda: reach_of(bare, a, now), runs)
            _with_buckets(world, buckets)
            head = runtime.head()
            copy = copy_index(index)
            reach_ms, reach = _median_ms(lambda: reach_of(copy, a, now), runs)
            through = sum(1 for r in reach if r.layer == "resource")
            store = "PostgreSQL" if args.postgres_dsn else "SQLite"
            print(
                f"# what-if with resource policies: {users} users in A and B, {buckets} buckets "
                f"of A, {max(1, buckets // 4)} of B; {head} events ({store}, median of {runs})"
            )
            print(f"# reach of A without them: {len(plain)} entries in {plain_ms:.1f} ms")
            print(
                f"# reach of A with them: {len(reach)} entries ({through} resource) in "
                f"{reach_ms:.1f} ms"
            )
            print()
            print("| change | first (ms) | median (ms) | lose | gain | rerouted | principals |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            ledger = runtime.ledger
            fresh = f"acs:oss:*:{a}:fresh"
            named = [*_named_users(a, 0, NAMED, users), "*"]
            changes = {
                "put_resource_policy": lambda: ledger.put_resource_policy(
                    a, fresh, _bucket(a, "fresh", named, deny=False)
                ),
                "delete_resource_policy": lambda: ledger.delete_resource_policy(
                    a, f"acs:oss:*:{a}:data0"
                ),
                "delete_user (named)": lambda: ledger.delete_user(a, "u0001", detach=True),
                "detach_policy (group)": lambda: ledger.detach_policy(
                    a, "group", "g3", "Custom", "p3"
                ),
            }
            for label, command in changes.items():

                def run(command: Any = command) -> Any:
                    return what_if(index, a, rehearse(command), datetime.now(UTC))

                first, _ = _median_ms(run, 1)
                ms, found = _median_ms(run, runs)
                print(
                    f"| {label} | {first:.1f} | {ms:.1f} | {len(found.lose)} | "
                    f"{len(found.gain)} | {len(found.rerouted)} | "
                    f"{len(found.principals_affected)} |"
                )
            assert runtime.head() == head, "a what-if wrote to the log"
        finally:
            runtime.stop()


if __name__ == "__main__":
    main()
