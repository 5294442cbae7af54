"""``Keyring.open_secret``: what it opens is what ``unseal`` opens, remembered in a bounded LRU
that a rotation and an erasure empty; 0 entries remembers nothing."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from mandate.domain.identity.keyring import KeyEncryptionKeys, Keyring, WrappedDataKey
from mandate.domain.identity.sealing import KeyEncryptionKey, SealRefused

KEK = KeyEncryptionKey.derive("s1", "k" * 40, source="test")


class Rows:
    """An in-memory ``DataKeySource``."""

    def __init__(self) -> None:
        self.rows: dict[str, WrappedDataKey] = {}

    def all(self) -> list[WrappedDataKey]:
        return list(self.rows.values())

    def get(self, key_id: str) -> WrappedDataKey | None:
        return self.rows.get(key_id)

    def add(self, key_id: str, kek_id: str, wrapped: str) -> bool:
        if key_id in self.rows:
            return False
        self.rows[key_id] = WrappedDataKey(key_id, kek_id, wrapped, "now")
        return True

    def rewrap(self, change: Callable[[WrappedDataKey], tuple[str, str] | None]) -> int:
        done = 0
        for row in list(self.rows.values()):
            changed = change(row)
            if changed is not None:
                self.rows[row.id] = WrappedDataKey(row.id, *changed, row.created_at, "now")
                done += 1
        return done

    def erase(self, key_id: str) -> bool:
        row = self.rows.get(key_id)
        if row is None or row.erased:
            return False
        self.rows[key_id] = WrappedDataKey(key_id, "erased", "", row.created_at)
        return True


def ring(opened: int = 3) -> Keyring:
    return Keyring.open(KeyEncryptionKeys(KEK), Rows(), opened_secrets=opened)


def test_an_opened_secret_is_the_unsealed_one_and_remembered() -> None:
    keyring = ring()
    sealed = keyring.seal("secret-a", bound_to="LTAIa")
    assert keyring.open_secret(sealed, bound_to="LTAIa") == "secret-a"
    assert keyring.open_secret(sealed, bound_to="LTAIa") == "secret-a"
    assert keyring._opened.cache_info().hits == 1
    assert keyring.opened_count == 1
    with pytest.raises(SealRefused):  # bound to another id: refused, and nothing remembered
        keyring.open_secret(sealed, bound_to="LTAIb")
    assert keyring.opened_count == 1


def test_the_memory_is_bounded_least_recently_used_first_out() -> None:
    keyring = ring(opened=2)
    sealed = {name: keyring.seal(f"secret-{name}", bound_to=name) for name in "abc"}
    keyring.open_secret(sealed["a"], bound_to="a")
    keyring.open_secret(sealed["b"], bound_to="b")
    keyring.open_secret(sealed["a"], bound_to="a")  # a is now the most recent
    keyring.open_secret(sealed["c"], bound_to="c")  # b goes
    assert keyring.opened_count == 2
    misses = keyring._opened.cache_info().misses
    keyring.open_secret(sealed["a"], bound_to="a")
    assert keyring._opened.cache_info().misses == misses
    keyring.open_secret(sealed["b"], bound_to="b")
    assert keyring._opened.cache_info().misses == misses + 1


def test_zero_remembers_nothing() -> None:
    keyring = ring(opened=0)
    sealed = keyring.seal("secret-a", bound_to="a")
    assert keyring.open_secret(sealed, bound_to="a") == "secret-a"
    assert keyring.open_secret(sealed, bound_to="a") == "secret-a"
    assert keyring.opened_count == 0


def test_a_rotation_and_an_erasure_forget_every_opened_secret() -> None:
    keyring = ring()
    sealed = keyring.seal("secret-a", bound_to="a")
    keyring.open_secret(sealed, bound_to="a")
    assert keyring.opened_count == 1
    keyring.rotate(new_data_key=True)
    assert keyring.opened_count == 0
    assert keyring.open_secret(sealed, bound_to="a") == "secret-a"  # opens again
    assert keyring.opened_count == 1
    keyring.seal_personal("acct1", "Alice", bound_to="display")
    keyring.erase_personal("acct1")
    assert keyring.opened_count == 0


def test_nothing_opened_is_in_the_repr() -> None:
    keyring = ring()
    sealed = keyring.seal("secret-visible?", bound_to="a")
    keyring.open_secret(sealed, bound_to="a")
    assert "secret-visible?" not in repr(keyring)
    with pytest.raises(TypeError):
        pickle.dumps(keyring)
