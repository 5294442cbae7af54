"""Per-account personal-data keys in the data key table: made on first use, re-wrapped by a
KEK rotation like the others, destroyed by an erasure (a tombstone row that rotation, a
restart and ``mandate keys status`` all step over), and replaced by the next key after it."""

from __future__ import annotations

import pytest

from mandate.api.cli import main
from mandate.api.startup.secret_keys import load_secret_keys, open_keyring
from mandate.domain.identity.keyring import ERASED_KEK, Keyring
from mandate.projections.store.data_keys import DataKeyStore
from tests.integration.test_secret_keys import (
    NEW_KEK,
    OLD_KEK,
    datastore,
    new_settings,
    old_settings,
    rotating_settings,
    rows,
)

ACCOUNT = "1837465920374651"
OTHER = "1999999999999999"
NAME = f"user display name|{ACCOUNT}"


def test_personal_keys_rotate_erase_and_start_again(
    store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with datastore(store_url) as store:
        keyring = open_keyring(old_settings(store_url), store, create_table=True)
        sealed = keyring.seal_personal(ACCOUNT, "Alice", bound_to=NAME)
        assert sealed.startswith(f"v1$p1-{ACCOUNT}$")
        assert keyring.seal_personal(ACCOUNT, "Bob", bound_to=NAME).startswith(f"v1$p1-{ACCOUNT}$")
        theirs = keyring.seal_personal(OTHER, "Carol", bound_to=f"user display name|{OTHER}")
        read = keyring.personal_reader()
        assert read(sealed, NAME) == "Alice"
        assert read(sealed, "something else") is None  # bound to what it is
        assert keyring.current_key_id == "d1"  # secrets are still sealed under d1
    assert rows(store_url) == {"d1": "s1", f"p1-{ACCOUNT}": "s1", f"p1-{OTHER}": "s1"}

    with datastore(store_url) as store:  # the KEK rotates: personal keys are re-wrapped too
        rotation = Keyring.open(
            load_secret_keys(rotating_settings(store_url)), DataKeyStore(store)
        ).rotate()
        assert (rotation.rewrapped, rotation.data_keys) == (3, 3)
    with datastore(store_url) as store, datastore(store_url, create=False) as elsewhere:
        after = open_keyring(new_settings(store_url), store, create_table=False)
        held = open_keyring(new_settings(store_url), elsewhere, create_table=False)
        assert f"p1-{ACCOUNT}" in held.key_ids  # another process, holding the key unwrapped
        assert held.personal_reader()(sealed, NAME) == "Alice"
        assert after.erase_personal(ACCOUNT) == [f"p1-{ACCOUNT}"]
        assert after.erase_personal(ACCOUNT) == []  # idempotent
        assert after.personal_reader()(sealed, NAME) is None
        assert held.personal_reader()(sealed, NAME) is None  # it asks the table
        assert f"p1-{ACCOUNT}" not in held.key_ids  # and lets the key go
        assert held.personal_reader()(theirs, f"user display name|{OTHER}") == "Carol"
        (row,) = [r for r in DataKeyStore(store).all() if r.id == f"p1-{ACCOUNT}"]
        assert (row.erased, row.kek_id, row.wrapped) == (True, ERASED_KEK, "")
        renewed = held.seal_personal(ACCOUNT, "Alice again", bound_to=NAME)
        assert renewed.startswith(f"v1$p2-{ACCOUNT}$")
        assert after.personal_reader()(renewed, NAME) == "Alice again"

    # a restart, a rotation and the status report step over the tombstone
    monkeypatch.setenv("MANDATE_DATABASE_URL", store_url)
    monkeypatch.setenv("MANDATE_SECRET_KEY", NEW_KEK)
    monkeypatch.setenv("MANDATE_SECRET_KEY_ID", "s2")
    assert main(["keys", "rotate"]) == 0
    assert main(["keys", "status"]) == 0
    assert main(["account", "erase-personal-data", "not-an-account"]) == 2
    # keys of an account the ledger does not hold: erased, but there is no account to record
    # the erasure on, and the exit status says so
    assert main(["account", "erase-personal-data", ACCOUNT]) == 1
    assert main(["account", "erase-personal-data", ACCOUNT]) == 0
    out, err = capsys.readouterr()
    assert "the erasure is done but not recorded in the ledger" in err
    assert f"destroyed personal-data key p2-{ACCOUNT}" in out
    assert f"account {ACCOUNT} has no live personal-data key: nothing left to erase" in out
    assert '"opens": "erased"' in out
    assert "an account id is 16 digits" in err
    for clear in (OLD_KEK, NEW_KEK):
        assert clear not in out + err
