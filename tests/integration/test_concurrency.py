"""Many writers racing on one aggregate, on real PostgreSQL (docs/design.md §4: one log, one order).

Eight threads start a command at the same instant, all against the same aggregate. Each
command either succeeds (perhaps after the ledger re-ran it on a version conflict) or is
refused with a domain error; afterwards the whole log is read back and must hold exactly the
acknowledged commands, once each, and the aggregate must be what they imply.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Notification

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.audit import AuditContext
from mandate.domain.common.errors import Conflict, LimitExceeded
from mandate.domain.common.identifiers import name_claim_id
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import MAX_ACCESS_KEYS_PER_USER, User, display_name_binding
from mandate.domain.ledger.application import IssuedKey, Positioned
from mandate.domain.ledger.results import Created

pytestmark = pytest.mark.postgres

THREADS = 8
HASH_KEY = "test-hash-key-" + "h" * 32
ADMIN = AuditContext(actor="mandate:admin", request_id="req-race")
DOCUMENT = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "*"}],
}


@dataclass
class Outcome:
    result: Any = None
    error: BaseException | None = None


@pytest.fixture
def runtime(postgres_url: str) -> Iterator[Runtime]:
    settings = Settings(
        database_url=postgres_url,
        admin_token="test-admin-token-" + "a" * 32,
        hash_key=HASH_KEY,
        postgres_pool_size=THREADS + 2,
    )
    started = Runtime(settings, create_tables=True)
    started.start()
    try:
        yield started
    finally:
        started.stop()


def race(runtime: Runtime, command: Callable[[int], Positioned]) -> list[Outcome]:
    """Run ``command(i)`` for i in 0..THREADS-1 on as many threads, released together."""
    barrier = threading.Barrier(THREADS)
    outcomes = [Outcome() for _ in range(THREADS)]

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[i].result = runtime.write(ADMIN, lambda: command(i))
        except BaseException as error:  # every outcome is judged by the test, none is lost
            outcomes[i].error = error

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"racer-{i}") for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def whole_log(runtime: Runtime) -> list[Notification]:
    notifications = list(runtime.ledger.recorder.select_notifications(1, 100_000))
    ids = [n.id for n in notifications]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids)), "a position appears twice in the log"
    assert ids[-1] == runtime.ledger.recorder.max_notification_id()
    return notifications


def events_of(runtime: Runtime, log: list[Notification], originator: UUID, topic: str) -> list[Any]:
    return [
        runtime.ledger.mapper.to_domain_event(n)
        for n in log
        if n.originator_id == originator and n.topic == topic
    ]


def check_acknowledged(
    runtime: Runtime, log: list[Notification], positions: list[int], topic: str
) -> list[Any]:
    """Each acknowledged position is in the log once, holding an event of ``topic``."""
    assert len(set(positions)) == len(positions), "two commands answered the same position"
    by_position = {n.id: n for n in log}
    events = []
    for position in positions:
        notification = by_position[position]
        assert notification.topic == topic
        events.append(runtime.ledger.mapper.to_domain_event(notification))
    return events


def is_concurrent_modification(error: BaseException | None) -> bool:
    return isinstance(error, Conflict) and error.code == "ConcurrentModification"


def load_user(runtime: Runtime, user_id: UUID) -> User:
    user = runtime.ledger.repository.get(user_id)
    assert isinstance(user, User)
    return user


def user_id_of(runtime: Runtime, account: str, user_name: str) -> UUID:
    claim = runtime.ledger.repository.get(name_claim_id(account, "user", user_name))
    assert isinstance(claim, NameClaim)
    assert claim.entity_id is not None
    return claim.entity_id


def test_racing_access_key_creations_never_give_a_user_more_than_two_keys(
    runtime: Runtime,
) -> None:
    """Of eight concurrent CreateAccessKey, at most two are acknowledged and stored, once each."""
    with_admin = runtime.ledger
    account = runtime.write(ADMIN, lambda: with_admin.open_account("Acme")).account_id
    runtime.write(ADMIN, lambda: with_admin.create_user(account, "alice", None))
    user_id = user_id_of(runtime, account, "alice")

    outcomes = race(runtime, lambda _: with_admin.create_access_key(account, "alice"))

    issued: list[IssuedKey] = [o.result for o in outcomes if o.error is None]
    refused = [o.error for o in outcomes if o.error is not None]
    assert 1 <= len(issued) <= MAX_ACCESS_KEYS_PER_USER
    assert all(isinstance(e, LimitExceeded) or is_concurrent_modification(e) for e in refused), (
        refused
    )

    log = whole_log(runtime)
    acknowledged = check_acknowledged(
        runtime, log, [k.position for k in issued], "mandate:AccessKeyCreated.v1"
    )
    assert [e.access_key_id for e in acknowledged] == [k.access_key_id for k in issued]
    assert all(e.originator_id == user_id for e in acknowledged)
    stored = events_of(runtime, log, user_id, "mandate:AccessKeyCreated.v1")
    assert sorted(e.access_key_id for e in stored) == sorted(k.access_key_id for k in issued)

    user = load_user(runtime, user_id)
    assert sorted(user.access_keys) == sorted(k.access_key_id for k in issued)
    versions = [n.originator_version for n in log if n.originator_id == user_id]
    assert versions == list(range(1, user.version + 1))
    for key in issued:
        assert (
            runtime.index.authenticate(key.access_key_id, key.access_key_secret).user_id == user_id
        )


def test_racing_attachments_to_one_user_are_each_recorded_once_within_the_quota(
    runtime: Runtime,
) -> None:
    """Eight concurrent AttachPolicyToUser on a user holding five Custom policies: ≤ ten total."""
    ledger = runtime.ledger
    account = runtime.write(ADMIN, lambda: ledger.open_account("Acme")).account_id
    runtime.write(ADMIN, lambda: ledger.create_user(account, "alice", None))
    names = [f"P{n:02d}" for n in range(5 + THREADS)]
    for name in names:
        runtime.write(ADMIN, lambda name=name: ledger.create_policy(account, name, DOCUMENT))
    for name in names[:5]:
        runtime.write(
            ADMIN,
            lambda name=name: ledger.attach_policy(account, "user", "alice", "Custom", name),
        )
    user_id = user_id_of(runtime, account, "alice")
    racing = names[5:]

    outcomes = race(
        runtime,
        lambda i: ledger.attach_policy(account, "user", "alice", "Custom", racing[i]),
    )

    won = [racing[i] for i, o in enumerate(outcomes) if o.error is None]
    refused = [o.error for o in outcomes if o.error is not None]
    assert 1 <= len(won) <= 5
    assert all(isinstance(e, LimitExceeded) or is_concurrent_modification(e) for e in refused), (
        refused
    )

    log = whole_log(runtime)
    acknowledged = check_acknowledged(
        runtime,
        log,
        [o.result.position for o in outcomes if o.error is None],
        "mandate:User.PolicyAttached.v1",
    )
    assert [e.policy_name for e in acknowledged] == won
    attached = Counter(
        e.policy_name for e in events_of(runtime, log, user_id, "mandate:User.PolicyAttached.v1")
    )
    assert attached == Counter(names[:5] + won), "an attach was recorded twice or unacknowledged"

    user = load_user(runtime, user_id)
    assert sorted(name for _, name in user.attachments) == sorted(names[:5] + won)
    assert len(user.attachments) <= 10
    view = runtime.index.users[user_id]
    assert view.attachments == user.attachments


def test_racing_creations_of_one_user_name_leave_exactly_one_user(runtime: Runtime) -> None:
    """Eight concurrent CreateUser of one name store one user and one claim; the rest fail."""
    ledger = runtime.ledger
    account = runtime.write(ADMIN, lambda: ledger.open_account("Acme")).account_id
    start = runtime.head()

    outcomes = race(runtime, lambda i: ledger.create_user(account, "alice", f"racer-{i}"))

    winners = [i for i, o in enumerate(outcomes) if o.error is None]
    refused = [o.error for o in outcomes if o.error is not None]
    assert len(winners) == 1
    assert all(isinstance(e, Conflict) for e in refused), refused
    assert all(
        e.code in ("EntityAlreadyExists.User", "ConcurrentModification")
        for e in refused
        if isinstance(e, Conflict)
    )
    (winner,) = winners

    log = whole_log(runtime)
    (created,) = check_acknowledged(
        runtime, log, [outcomes[winner].result.position], "mandate:UserCreated.v1"
    )
    # recorded only sealed under the account's personal-data key (crypto-shredding)
    assert created.display_name is None
    read = runtime.keyring.personal_reader()
    assert read(created.display_name_sealed, display_name_binding(account)) == f"racer-{winner}"
    written = [n for n in log if n.id > start]
    assert [n.topic for n in written] == ["mandate:NameClaimed.v1", "mandate:UserCreated.v1"]

    user_id = user_id_of(runtime, account, "alice")
    assert user_id == created.originator_id
    user = load_user(runtime, user_id)
    assert (user.user_name, user.display_name_sealed) == ("alice", created.display_name_sealed)
    view = runtime.index.user_by_name(account, "alice")
    assert view is not None
    assert view.display_name is None  # lookups keep it sealed; answers open it
    assert runtime.index.shown([view])[0].display_name == f"racer-{winner}"
    assert view.id == user_id
    assert [u.id for u in runtime.index.users_of(account)] == [user_id]


def test_racing_creations_of_distinct_users_share_transactions_each_answered_its_own(
    runtime: Runtime,
) -> None:
    """Group commit: concurrent creates of distinct users all succeed, some saved together in
    one transaction, and each command answers the position of its own ``UserCreated``."""
    ledger = runtime.ledger
    account = runtime.write(ADMIN, lambda: ledger.open_account("Acme")).account_id
    batches_before = ledger._group.batches
    positions: list[int] = []
    for round_ in range(5):  # a few races: at least one of them forms a batch on a busy machine

        def create(i: int, round_: int = round_) -> Created:
            return ledger.create_user(account, f"u{round_}-{i}", None)

        outcomes = race(runtime, create)
        assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
        positions += [o.result.position for o in outcomes]
    log = whole_log(runtime)
    created = check_acknowledged(runtime, log, positions, "mandate:UserCreated.v1")
    assert len({event.originator_id for event in created}) == len(positions)
    assert ledger._group.batches > batches_before
