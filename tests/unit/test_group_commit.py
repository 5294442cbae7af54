"""Group commit: batches form under concurrency, each command hears only its own outcome."""

from __future__ import annotations

import threading
import time

import pytest
from eventsourcing.persistence import IntegrityError

from mandate.domain.ledger.group_commit import GroupCommitter

Batch = list[str]  # one command's events


class Store:
    """Records events in one "transaction" per call; a name already taken fails the call."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def record(self, batch: Batch) -> list[int]:
        time.sleep(0.005)  # long enough for others to queue up
        with self.lock:
            if len(set(batch)) < len(batch) or set(batch) & set(self.log):
                raise IntegrityError("taken")
            self.calls.append(len(batch))
            self.log.extend(batch)
            return list(range(len(self.log) - len(batch) + 1, len(self.log) + 1))


def flatten(batches: list[Batch]) -> Batch:
    return [e for b in batches for e in b]


def committer(store: Store) -> GroupCommitter[Batch, int]:
    return GroupCommitter(store.record, flatten, len)


def run_all(group: GroupCommitter[Batch, int], batches: list[Batch]) -> list[object]:
    out: list[object] = [None] * len(batches)

    def one(i: int) -> None:
        try:
            out[i] = group.commit(batches[i])
        except IntegrityError as error:
            out[i] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def test_a_lone_command_is_saved_alone_at_once() -> None:
    store = Store()
    assert committer(store).commit(["a", "b"]) == [1, 2]
    assert store.calls == [2]


def test_concurrent_commands_share_transactions_and_each_gets_its_own_positions() -> None:
    store = Store()
    group = committer(store)
    batches = [[f"e{i}", f"f{i}"] for i in range(40)]
    out = run_all(group, batches)
    assert len(store.calls) < 40
    assert group.batches > 0
    for batch, positions in zip(batches, out, strict=True):
        assert isinstance(positions, list)
        assert [store.log[p - 1] for p in positions] == batch


def test_a_conflict_in_a_batch_reaches_only_its_own_command() -> None:
    store = Store()
    group = committer(store)
    store.log.append("taken")
    batches = [[f"e{i}"] for i in range(30)] + [["taken"]] + [[f"g{i}"] for i in range(30)]
    out = run_all(group, batches)
    failed = [b for b, o in zip(batches, out, strict=True) if isinstance(o, IntegrityError)]
    assert failed == [["taken"]]
    saved = [e for b in batches if b != ["taken"] for e in b]
    assert sorted(store.log) == sorted(["taken", *saved])


def test_a_store_failure_reaches_every_command_of_the_batch_and_the_next_batch_runs() -> None:
    calls = []

    def record(batch: Batch) -> list[int]:
        calls.append(batch)
        if "down" in batch:
            raise OSError("the store is down")
        return list(range(len(batch)))

    group: GroupCommitter[Batch, int] = GroupCommitter(record, flatten, len)
    with pytest.raises(OSError, match="down"):
        group.commit(["down"])
    assert group.commit(["x"]) == [0]
