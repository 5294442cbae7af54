"""What-if latency on an account of 1,000 principals, per change kind.

``python -m tests.bench.what_if [--quick] [--users 1000] [--runs 7] [--postgres-dsn DSN]``

The world, written through the ledger as the API writes it (one command per call): account A
with ``--users`` RAM users in 20 groups of equal size, 20 custom policies of 3 statements
(2 per group, 1 attached to each user directly), 5 roles trusting a few users each, and a
contract A → B; account B with as many users in 20 groups, every user holding
``sts:AssumeRole``, and a delegation to each of B's groups and to 10 of its users. So A's
what-if walks 1,000 users' identity layers and 2,000 users' paths into A's roles; B's walks
1,000 users' paths into the contract's managed role.

Each change kind is timed as the route runs it after authorisation: the rehearsed command
(``domain.ledger.rehearsal``), then ``projections.decisions.what_if.what_if`` (a pickled
copy of the index, the reach before, the events applied, the reach after, the diff) — no
HTTP. The copy alone and one reach alone are timed too. Medians of ``--runs`` runs on one
noisy 2-core machine; nothing is written by any of them (checked: the head does not move).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.audit import AuditContext
from mandate.domain.ledger.rehearsal import rehearse
from mandate.projections.decisions.what_if import copy_index, reach_of, what_if
from tests.bench.harness import postgres_schema

ADMIN = AuditContext(actor="mandate:admin", request_id="bench-what-if")
GROUPS = 20
POLICIES = 20
ROLES = 5


def _statement(a: str, n: int, k: int, version: int = 1) -> dict[str, Any]:
    service = ("oss", "ecs", "rds")[k]
    return {
        "Effect": "Allow",
        "Action": [f"{service}:Get*", f"{service}:List*"],
        "Resource": f"acs:{service}:*:{a}:p{n}-v{version}-{k}/*",
    }


def _document(a: str, n: int, version: int = 1) -> dict[str, Any]:
    statements = [_statement(a, n, k, version) for k in range(3)]
    return {"Version": "1", "Statement": statements}


class World:
    def __init__(self, runtime: Runtime, users: int) -> None:
        self.runtime = runtime
        self.users = users
        ledger = runtime.ledger
        self.a = self.do(lambda: ledger.open_account("Acme")).account_id
        self.b = self.do(lambda: ledger.open_account("OpsCo")).account_id
        a, b = self.a, self.b
        for n in range(POLICIES):
            self.do(lambda n=n: ledger.create_policy(a, f"p{n}", _document(a, n)))
        self.do(lambda: ledger.create_policy_version(a, "p0", _document(a, 0, version=7)))
        for account in (a, b):
            for g in range(GROUPS):
                self.do(lambda g=g, account=account: ledger.create_group(account, f"g{g}", None))
        for g in range(GROUPS):
            for n in (g % POLICIES, (g + 1) % POLICIES):
                self.do(
                    lambda g=g, n=n: ledger.attach_policy(a, "group", f"g{g}", "Custom", f"p{n}")
                )
        for i in range(users):
            name, group = f"u{i:04d}", f"g{i % GROUPS}"
            self.do(lambda name=name: ledger.create_user(a, name, None))
            self.do(lambda name=name, group=group: ledger.add_user_to_group(a, group, name))
            self.do(
                lambda name=name, i=i: ledger.attach_policy(
                    a, "user", name, "Custom", f"p{(i * 7) % POLICIES}"
                )
            )
            self.do(lambda name=name: ledger.create_user(b, name, None))
            self.do(lambda name=name, group=group: ledger.add_user_to_group(b, group, name))
            self.do(
                lambda name=name: ledger.attach_policy(
                    b, "user", name, "System", "AliyunSTSAssumeRoleAccess"
                )
            )
        for r in range(ROLES):
            trusted = [f"acs:ram::{a}:user/u{r * (users // ROLES) + k:04d}" for k in range(5)]
            trust = {
                "Version": "1",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": trusted}}
                ],
            }
            self.do(lambda r=r, trust=trust: ledger.create_role(a, f"r{r}", trust))
            self.do(lambda r=r: ledger.attach_policy(a, "role", f"r{r}", "Custom", f"p{r}"))
        for k in range(5):
            self.do(
                lambda k=k: ledger.attach_policy(
                    a, "user", f"u{k * (users // ROLES):04d}", "System", "AliyunSTSAssumeRoleAccess"
                )
            )
        scope = {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "ecs:*", "Resource": f"acs:ecs:*:{a}:instance/*"},
                {"Effect": "Allow", "Action": "oss:*", "Resource": f"acs:oss:*:{a}:ops/*"},
            ],
        }
        granted = self.do(
            lambda: ledger.grant_entrustment(
                a, trustee_account_id=b, scope=scope, contract_ref="MSA-1"
            )
        )
        self.entrustment: UUID = granted.entrustment_id
        self.delegations: list[UUID] = []
        grantees = [f"acs:ram::{b}:group/g{g}" for g in range(GROUPS)]
        grantees += [f"acs:ram::{b}:user/u{k:04d}" for k in range(10)]
        for grantee in grantees:
            delegation = uuid4()
            self.do(
                lambda d=delegation, grantee=grantee: ledger.grant_delegation(
                    b,
                    delegation_id=d,
                    entrustment_id=self.entrustment,
                    grantee=grantee,
                    scope={
                        "Version": "1",
                        "Statement": [
                            {"Effect": "Allow", "Action": "ecs:RebootInstance", "Resource": "*"}
                        ],
                    },
                )
            )
            self.delegations.append(delegation)

    def do(self, command: Callable[[], Any]) -> Any:
        return self.runtime.write(ADMIN, command)

    def changes(self) -> dict[str, tuple[str, Callable[[], Any]]]:
        ledger, a, b = self.runtime.ledger, self.a, self.b
        return {
            "revoke_entrustment": (a, lambda: ledger.revoke_entrustment(a, self.entrustment)),
            "revoke_delegation": (b, lambda: ledger.revoke_delegation(b, self.delegations[0])),
            "detach_policy (group)": (
                a,
                lambda: ledger.detach_policy(a, "group", "g3", "Custom", "p3"),
            ),
            "delete_user": (
                a,
                lambda: ledger.delete_user(a, f"u{self.users // ROLES:04d}", detach=True),
            ),
            "set_default_version": (a, lambda: ledger.set_default_policy_version(a, "p0", "v2")),
        }


def _median_ms(run: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 users, 3 runs")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--postgres-dsn", default=None, help="PostgreSQL (a fresh schema in it) instead of SQLite"
    )
    args = parser.parse_args()
    users, runs = (100, 3) if args.quick else (args.users, args.runs)
    with contextlib.ExitStack() as stack:
        if args.postgres_dsn:
            url = stack.enter_context(postgres_schema(args.postgres_dsn, "mandate_bench_what_if_"))
        else:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="mandate-what-if-"))
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
            started = time.perf_counter()
            world = World(runtime, users)
            built = time.perf_counter() - started
            head = runtime.head()
            print(
                f"# what-if: {users} users in A and in B, {GROUPS} groups each, "
                f"{POLICIES} policies, {ROLES} roles, 1 contract, "
                f"{len(world.delegations)} delegations; {head} events written in {built:.0f} s"
                f" ({'PostgreSQL' if args.postgres_dsn else 'SQLite'}, median of {runs})"
            )
            index = runtime.index
            copy_ms, copy = _median_ms(lambda: copy_index(index), runs)
            now = datetime.now(UTC)
            for label, account in (("A", world.a), ("B", world.b)):
                reach_ms, reach = _median_ms(
                    lambda account=account: reach_of(copy, account, now), runs
                )
                print(f"# reach of {label}: {len(reach)} entries in {reach_ms:.1f} ms")
            print(f"# copy of the index: {copy_ms:.1f} ms")
            print()
            print("| change | first (ms) | median (ms) | lose | gain | rerouted | principals |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for label, (account, command) in world.changes().items():

                def run(account: str = account, command: Callable[[], Any] = command) -> Any:
                    events = rehearse(command)
                    return what_if(index, account, events, datetime.now(UTC))

                first, _ = _median_ms(run, 1)
                ms, found = _median_ms(run, runs)
                print(
                    f"| {label} | {first:.1f} | {ms:.1f} | {len(found.lose)} | {len(found.gain)} | "
                    f"{len(found.rerouted)} | {len(found.principals_affected)} |"
                )
            assert runtime.head() == head, "a what-if wrote to the log"
        finally:
            runtime.stop()


if __name__ == "__main__":
    main()
