"""Access review cost at 10k and 100k events: before and after bounding it.

``python -m tests.bench.access_review [--quick] [--sizes 10000,100000] [--no-before]``

The log is written by batched saves straight through the ledger (``tests.bench.temporal``'s
``History``: 200 users, 10 groups, 20 policies and their churn), plus users created as the
API creates them (a name claim and the user: before, each re-decided every user) and, now
and then, a role's trust edited (an event after which every candidate is decided again).
Reviews of ``oss:GetObject`` on one of the account's objects are timed over three windows —
the whole history, its last tenth, its last 100 events — three ways:

* **before**: the code as of commit 13633c8 (replay from position 0, every user re-decided
  after a name claim, every principal scanned at every instant), loaded from git;
* **after, from 0**: today's review without snapshots;
* **after, snapshot**: today's route path, starting from ``ReviewSnapshots``' latest snapshot
  before the window (the first review in a process builds them: timed apart).

Medians of ``--runs`` runs; one noisy 2-core machine, so read the ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from mandate.api.routers.access_review import MAX_DECISIONS, MAX_INSTANTS
from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.audit import acting_as
from mandate.domain.common.ledger_time import ledger_time_after
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import User
from mandate.domain.sts.roles import Role
from mandate.projections.history.access_review import ReviewTooLarge, logged_events, review_access
from mandate.projections.history.review_snapshots import ReviewSnapshots
from tests.bench.summary import record
from tests.bench.temporal import ACTOR, History, _custom

BEFORE_COMMIT = "13633c8"
SAVE_EVERY = 1  # one save per step, as one API call each: every event its own instant


class ReviewHistory(History):
    """``History``'s churn, plus users created one by one and a role's trust edited."""

    role: Role | None = None
    created: int = 0

    def set_up(self) -> None:
        super().set_up()
        account = self.account_id
        with acting_as(ACTOR):
            self.role = Role(
                account_id=account,
                role_name="ops",
                description=None,
                trust_policy=_trust(account, 0),
                max_session_duration=3600,
            )
            claim = NameClaim(account_id=account, kind="role", name="ops", entity_id=self.role.id)
            self._touch(self.role, claim, events=2)
            self._save()

    def grow_reviewed(
        self, target: int, rng: random.Random, *, save_every: int = SAVE_EVERY
    ) -> None:
        """Grow to ``target`` events: 1 step in 50 creates a user, 1 in 1,000 edits the trust;
        saved every ``save_every`` events (1: each step its own instant, as API calls are)."""
        head = self.head
        steps: list[Callable[[], None]] = [
            self._user_attachment,
            self._group_attachment,
            self._membership,
            self._new_version,
            self._switch_default,
            self._access_key,
        ]
        weights = [0.30, 0.15, 0.30, 0.10, 0.10, 0.05]
        with acting_as(ACTOR):
            while head + self._pending < target:
                draw = rng.random()
                if draw < 0.02:
                    self._create_user()
                elif draw < 0.021:
                    self._edit_trust()
                else:
                    rng.choices(steps, weights)[0]()
                if self._pending >= save_every:
                    pending = self._pending
                    self._save()
                    head += pending
        self._save()

    def _create_user(self) -> None:
        self.created += 1
        user = User(account_id=self.account_id, user_name=f"n{self.created:05d}", display_name=None)
        claim = NameClaim(
            account_id=self.account_id, kind="user", name=user.user_name, entity_id=user.id
        )
        self._touch(user, claim, events=2)
        if self.rng.random() < 0.5:
            user.attach_policy(_custom(self.rng.choice(self.policies)))
            self._touch(user)
        self.users.append(user)

    def _edit_trust(self) -> None:
        assert self.role is not None
        self.role.set_trust_policy(_trust(self.account_id, self.rng.randrange(3)))
        self._touch(self.role)


def _trust(account_id: str, variant: int) -> str:
    names = [f"acs:ram::{account_id}:root"] + [
        f"acs:ram::{account_id}:user/u{i:03d}" for i in range(variant)
    ]
    return (
        '{"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": '
        '{"RAM": [' + ", ".join(f'"{n}"' for n in names) + ']}}], "Version": "1"}'
    )


# Where the modules ``BEFORE_COMMIT``'s access review imports live now.
_MOVED_SINCE = {
    "domain._condition_values": "domain.policy.condition_values",
    "domain.arns": "domain.common.arns",
    "domain.decisions": "domain.policy.decisions",
    "domain.evaluation": "domain.policy.evaluation",
    "domain.patterns": "domain.policy.patterns",
    "domain.policy": "domain.policy.document",
    "domain.secrets": "domain.identity.secrets",
    "projections.decision_index": "projections.decisions.index",
    "projections.ledger_time": "domain.common.ledger_time",
    "projections.views": "projections.decisions.views",
}


# Names ``BEFORE_COMMIT``'s access review imports that were renamed since (module as of now).
_RENAMED_SINCE = {
    ("domain.policy.evaluation", "Request"): "AccessRequest",  # a4c0fcb
}


def _renamed_imports(source: str) -> str:
    """``source`` importing from today's modules, renamed names bound to their old names."""
    for before, now in _MOVED_SINCE.items():
        source = source.replace(f"from {before} import", f"from mandate.{now} import")
    source = re.sub(r"^from (domain|projections)([. ])", r"from mandate.\1\2", source, flags=re.M)

    def rename(line: re.Match[str]) -> str:
        module, names = line.group(1), [n.strip() for n in line.group(2).split(",")]
        local = module.removeprefix("mandate.")
        bound = [
            f"{_RENAMED_SINCE[(local, n)]} as {n}" if (local, n) in _RENAMED_SINCE else n
            for n in names
        ]
        return f"from {module} import {', '.join(bound)}"

    return re.sub(r"^from (mandate\.[\w.]+) import ([\w, ]+)$", rename, source, flags=re.M)


def _before_module() -> ModuleType | None:
    """``projections/access_review.py`` as of ``BEFORE_COMMIT`` (imports renamed), else None.

    None when git or the commit is not there (a shallow clone): the table says so. An old
    name the code no longer has fails here, naming it: add it to ``_RENAMED_SINCE``
    (``tests/unit/test_bench_before.py`` loads it, so CI notices a rename the day it lands).
    """
    try:
        source = subprocess.run(  # noqa: S603 (a fixed git command, no input)
            ["git", "show", f"{BEFORE_COMMIT}:projections/access_review.py"],  # noqa: S607
            capture_output=True,
            check=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    source = _renamed_imports(source)
    spec = importlib.util.spec_from_loader("access_review_before", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    exec(compile(source, "access_review_before.py", "exec"), module.__dict__)  # noqa: S102
    return module


def _median_ms(run: Callable[[], Any], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def bench_size(
    runtime: Runtime,
    history: ReviewHistory,
    size: int,
    args: argparse.Namespace,
    before: ModuleType | None,
) -> list[list[str]]:
    history.grow_reviewed(size, random.Random(args.seed + size))
    ledger, hasher, head = runtime.ledger, runtime.hasher, history.head
    events = list(logged_events(ledger, head))
    times: list[datetime] = []
    moment: datetime | None = None
    for _, event in events:
        moment = ledger_time_after(moment, event.timestamp)
        times.append(moment)
    account = history.account_id
    end = datetime.now(UTC) + timedelta(seconds=1)
    query: dict[str, Any] = {
        "max_instants": MAX_INSTANTS,
        "max_decisions": MAX_DECISIONS,
        "account_id": account,
        "resource": f"acs:oss:cn-hangzhou:{account}:team-1/report.csv",
        "action": "oss:GetObject",
        "end": end,
        "position": head,
    }
    snapshots = ReviewSnapshots(hasher)
    started = time.perf_counter()
    snapshots.start_for(times[0], head, lambda after: logged_events(ledger, head, after=after))
    first_ms = (time.perf_counter() - started) * 1000
    rows = []
    windows = [
        ("whole history", times[0] - timedelta(seconds=1), len(events)),
        ("last tenth", times[-len(events) // 10], len(events) // 10),
        ("last 100 events", times[-100], 100),
    ]
    for label, start, in_window in windows:

        def from_zero(start: datetime = start) -> Any:
            return review_access(logged_events(ledger, head), hasher, start=start, **query)

        def from_snapshot(start: datetime = start) -> Any:
            begin = snapshots.start_for(
                start, head, lambda after: logged_events(ledger, head, after=after)
            )
            after = 0 if begin is None else begin.index.position
            return review_access(
                logged_events(ledger, head, after=after),
                hasher,
                start=start,
                start_from=begin,
                **query,
            )

        print(f"  {size:,} events, {label} ...", file=sys.stderr, flush=True)
        try:
            answer = from_zero()
        except ReviewTooLarge as refused:
            rows.append([f"{head:,}", label, f"{in_window:,}", "", "", "", str(refused), ""])
            continue
        before_ms = "—"
        if before is not None and size <= args.before_up_to:

            def old_code(start: datetime = start, old: Any = before.review_access) -> Any:
                limits = ("max_instants", "max_decisions")
                plain = {k: v for k, v in query.items() if k not in limits}
                return old(logged_events(ledger, head), hasher, start=start, **plain)

            before_ms = f"{_median_ms(old_code, 1):,.0f}"
        same = [i.intervals for i in from_snapshot().items] == [i.intervals for i in answer.items]
        assert same, "a review from a snapshot differs from one from position 0"
        zero_ms = _median_ms(from_zero, args.runs)
        snap_ms = _median_ms(from_snapshot, args.runs)
        record(
            f"review of the {label} of {head:,} events, from a snapshot",
            f"{snap_ms:,.0f} ms ({answer.decisions:,} decisions; from 0: {zero_ms:,.0f} ms)",
            source="access_review",
        )
        rows.append(
            [
                f"{head:,}",
                label,
                f"{in_window:,}",
                f"{answer.instants:,}",
                f"{answer.decisions:,}",
                before_ms,
                f"{zero_ms:,.0f}",
                f"{snap_ms:,.0f}",
            ]
        )
    rows.append(
        [
            f"{head:,}",
            "first review in a process (builds the snapshots)",
            "",
            "",
            "",
            "",
            "",
            f"{first_ms:,.0f}",
        ]
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.access_review", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="10,000 events only, one run")
    parser.add_argument("--sizes", help="comma-separated log sizes (default 10000,100000)")
    parser.add_argument("--runs", type=int, help="runs per measure (default 3; --quick 1)")
    parser.add_argument(
        "--no-before", dest="before", action="store_false", help="skip the old code"
    )
    parser.add_argument(
        "--before-up-to",
        type=int,
        default=10_000,
        help="time the old code only up to this size (it is quadratic; default 10,000)",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("10000" if args.quick else "10000,100000")).split(",")]
    args.runs = args.runs or (1 if args.quick else 3)
    before = _before_module() if args.before else None
    before_note = f"before: one run, from commit {BEFORE_COMMIT}"
    if before is None:
        before_note = "before: not run" if not args.before else f"before: no commit {BEFORE_COMMIT}"
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="mandate-bench-review-") as tmp:
        workdir = Path(tmp)
        settings = Settings(
            database_url=f"sqlite:///{workdir}/ledger.db",
            hash_key="k" * 40,
            admin_token="t" * 40,
            run_projections=False,
            state_dir=workdir,
        )
        runtime = Runtime(settings, create_tables=True)
        try:
            history = ReviewHistory(runtime, random.Random(args.seed))
            started = time.perf_counter()
            history.set_up()
            for size in sorted(sizes):
                rows += bench_size(runtime, history, size, args, before)
            users = len(history.users)
            seconds = time.perf_counter() - started
        finally:
            runtime.stop()
    header = [
        "events in log",
        "window",
        "events in window",
        "instants",
        "decisions",
        "before (ms)",
        "after, from 0 (ms)",
        "after, snapshot (ms)",
    ]
    out = [
        f"## Access review benchmark{' (quick)' if args.quick else ''}",
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
        f"SQLite; one account, {users:,} users at the end; medians of {args.runs} run(s) "
        f"({before_note}); {seconds:,.0f} s in all.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|",
    ]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
