"""The data keys in the store and their key-encryption keys, on SQLite and PostgreSQL.

The first open creates ``d1``; a restart unseals what was sealed before; ``mandate keys rotate``
re-wraps every data key under the new KEK (once, however many run at once), after which the old
KEK can go; a process whose KEK does not match refuses in one line; no key or secret reaches a
log record, an error or the commands' output.
"""

from __future__ import annotations

import logging
import os
import pickle
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.utils import Environment

from mandate.api.cli import main
from mandate.api.outages import StoreUnavailable
from mandate.api.settings import Settings, store_config
from mandate.api.startup.secret_keys import SECRET_KEYS_FILE, load_secret_keys, open_keyring
from mandate.domain.identity.keyring import Keyring
from mandate.domain.identity.sealing import SealRefused
from mandate.domain.ledger.application import APPLICATION_NAME
from mandate.projections.store.data_keys import DATA_KEY_TABLE, DataKeyStore

OLD_KEK = "old-key-encryption-key-" + "o" * 24
NEW_KEK = "new-key-encryption-key-" + "n" * 24
OTHER_KEK = "someone-elses-kek-" + "x" * 24
SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEX"
BOUND = "LTAI5tAbCdEfGhIjKlMnOpQr"


@contextmanager
def datastore(url: str, *, create: bool = True) -> Iterator[SQLiteDatastore | PostgresDatastore]:
    """The ledger's datastore on ``url``, as a process opens it (its own pool); ``create``
    makes the log's tables (never at once: PostgreSQL's DDL races with itself)."""
    env = {**store_config(url, create_table=create).env, "CREATE_TABLE": "y" if create else "n"}
    recorder = InfrastructureFactory.construct(Environment(APPLICATION_NAME, env))
    store = recorder.application_recorder().datastore  # type: ignore[attr-defined]
    try:
        yield store
    finally:
        store.close()


def old_settings(url: str) -> Settings:
    return Settings(database_url=url, secret_key=OLD_KEK, secret_key_id="s1")


def rotating_settings(url: str) -> Settings:
    return Settings(
        database_url=url,
        secret_key=NEW_KEK,
        secret_key_id="s2",
        secret_keys_previous={"s1": OLD_KEK},
    )


def new_settings(url: str) -> Settings:
    return Settings(database_url=url, secret_key=NEW_KEK, secret_key_id="s2")


def rows(url: str) -> dict[str, str]:
    with datastore(url) as store:
        return {row.id: row.kek_id for row in DataKeyStore(store).all()}


def test_the_first_open_creates_d1_and_a_restart_unseals(store_url: str) -> None:
    with datastore(store_url) as store:
        keyring = open_keyring(old_settings(store_url), store, create_table=True)
        assert keyring.current_key_id == "d1"
        sealed = keyring.seal(SECRET, bound_to=BOUND)
        stored = DataKeyStore(store).all()
    assert [(row.id, row.kek_id) for row in stored] == [("d1", "s1")]
    assert OLD_KEK not in stored[0].wrapped
    assert stored[0].rewrapped_at is None
    with datastore(store_url) as store:  # a restart: a new process, the same store
        again = open_keyring(old_settings(store_url), store, create_table=False)
        assert again.key_ids == ["d1"]
        assert again.unseal(sealed, bound_to=BOUND) == SECRET
        with pytest.raises(SealRefused):
            again.unseal(sealed, bound_to="LTAI5tSomeoneElse")


def test_rotation_rewraps_so_the_old_kek_can_go(store_url: str) -> None:
    with datastore(store_url) as store:
        before = open_keyring(old_settings(store_url), store, create_table=True)
        sealed = before.seal(SECRET, bound_to=BOUND)
    with datastore(store_url) as store:  # every process now has the new KEK and the old
        serving = open_keyring(rotating_settings(store_url), store, create_table=False)
        done = Keyring.open(load_secret_keys(rotating_settings(store_url)), DataKeyStore(store))
        rotation = done.rotate()
        assert (rotation.kek_id, rotation.rewrapped, rotation.data_keys) == ("s2", 1, 1)
        assert rotation.not_current == ()
        assert done.rotate().rewrapped == 0  # idempotent
        assert serving.unseal(sealed, bound_to=BOUND) == SECRET  # served throughout
        later = serving.seal("another-secret", bound_to="LTAI5tLater")
    assert rows(store_url) == {"d1": "s2"}
    with datastore(store_url) as store:  # the old KEK removed from the configuration
        after = open_keyring(new_settings(store_url), store, create_table=False)
        assert after.unseal(sealed, bound_to=BOUND) == SECRET
        assert after.unseal(later, bound_to="LTAI5tLater") == "another-secret"
        assert DataKeyStore(store).all()[0].rewrapped_at is not None
        # a process still configured with the old KEK only is refused, naming what to do
        with pytest.raises(StoreUnavailable) as refused:
            open_keyring(old_settings(store_url), store, create_table=False)
    message = str(refused.value)
    assert message.startswith(
        "the store's data key d1 is wrapped under key-encryption key s2, which this process "
        "is not given (it has s1)"
    )
    assert "\n" not in message
    assert OLD_KEK not in message
    assert NEW_KEK not in message


def test_a_new_data_key_is_used_for_new_secrets_and_found_by_running_processes(
    store_url: str,
) -> None:
    with datastore(store_url) as store:
        running = open_keyring(old_settings(store_url), store, create_table=True)
        rotating = open_keyring(old_settings(store_url), store, create_table=False)
        rotation = rotating.rotate(new_data_key=True)
        assert (rotation.rewrapped, rotation.data_keys, rotation.new_data_key) == (0, 2, "d2")
        sealed = rotating.seal(SECRET, bound_to=BOUND)
        assert sealed.startswith("v1$d2$")
        assert running.current_key_id == "d1"  # until it restarts …
        assert running.unseal(sealed, bound_to=BOUND) == SECRET  # … but it finds d2
        assert running.key_ids == ["d1", "d2"]
        restarted = open_keyring(old_settings(store_url), store, create_table=False)
        assert restarted.current_key_id == "d2"
        with pytest.raises(SealRefused, match="no data key d7"):
            restarted.unseal(sealed.replace("$d2$", "$d7$", 1), bound_to=BOUND)


def test_concurrent_rotations_rewrap_each_data_key_once(store_url: str) -> None:
    with datastore(store_url) as store:
        keyring = open_keyring(old_settings(store_url), store, create_table=True)
        keyring.rotate(new_data_key=True)
        keyring.rotate(new_data_key=True)
        sealed = {
            key_id: keyring.seal(f"secret-{key_id}", bound_to=key_id) for key_id in ("a", "b")
        }
    assert rows(store_url) == {"d1": "s1", "d2": "s1", "d3": "s1"}
    runs = 4
    start = threading.Barrier(runs)
    rewrapped: list[int] = []
    failures: list[BaseException] = []

    def rotate() -> None:
        try:
            with datastore(store_url, create=False) as store:
                keks = load_secret_keys(rotating_settings(store_url))
                ring = Keyring.open(keks, DataKeyStore(store))
                start.wait()
                rewrapped.append(ring.rotate().rewrapped)
        except BaseException as error:  # reported below, with the others
            failures.append(error)
            start.abort()  # the others must not wait for this one

    threads = [threading.Thread(target=rotate) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(rewrapped, reverse=True)[0] == 3
    assert sum(rewrapped) == 3
    assert rows(store_url) == {"d1": "s2", "d2": "s2", "d3": "s2"}
    with datastore(store_url) as store:
        after = open_keyring(new_settings(store_url), store, create_table=False)
        for key_id, text in sealed.items():
            assert after.unseal(text, bound_to=key_id) == f"secret-{key_id}"


def test_a_kek_that_does_not_match_is_refused_in_one_line(store_url: str) -> None:
    with datastore(store_url) as store:
        open_keyring(old_settings(store_url), store, create_table=True)
        wrong = Settings(database_url=store_url, secret_key=OTHER_KEK, secret_key_id="s1")
        with pytest.raises(StoreUnavailable) as refused:
            open_keyring(wrong, store, create_table=False)
    message = str(refused.value)
    assert message == (
        "MANDATE_SECRET_KEY (key id s1) is not the key that wrapped the store's data key d1 "
        "(its AES-GCM check fails): start with the original key"
    )


def test_serve_refuses_a_kek_that_does_not_match_before_it_listens(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MANDATE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("MANDATE_SECRET_KEY", OLD_KEK)
    assert main(["migrate"]) == 0
    monkeypatch.setenv("MANDATE_SECRET_KEY", OTHER_KEK)
    assert main(["serve", "--port", "0"]) == 2
    out, err = capsys.readouterr()
    assert err == (
        "mandate: MANDATE_SECRET_KEY (key id s1) is not the key that wrapped the store's data "
        "key d1 (its AES-GCM check fails): start with the original key\n"
    )
    assert "listening" not in out


def test_a_keyring_is_never_pickled(sqlite_url: str) -> None:
    with datastore(sqlite_url) as store:
        keyring = open_keyring(old_settings(sqlite_url), store, create_table=True)
        assert repr(keyring) == "Keyring(current='d1', keys=['d1'])"
        with pytest.raises(TypeError, match="never pickled"):
            pickle.dumps(keyring)


def test_a_store_without_the_table_says_to_migrate(postgres_url: str) -> None:
    with datastore(postgres_url) as store, pytest.raises(StoreUnavailable) as refused:
        open_keyring(old_settings(postgres_url), store, create_table=False)
    assert str(refused.value) == (
        f"the store has no {DATA_KEY_TABLE} table: run `mandate migrate` first"
    )


def test_development_generates_the_kek_beside_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/mandate.db"
    settings = Settings(database_url=url, state_dir=tmp_path / "state")
    with datastore(url) as store:
        sealed = open_keyring(settings, store, create_table=True).seal(SECRET, bound_to=BOUND)
    path = tmp_path / "state" / SECRET_KEYS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    generated = path.read_text()
    with datastore(url) as store:
        again = open_keyring(settings, store, create_table=False)
        assert again.unseal(sealed, bound_to=BOUND) == SECRET
    assert path.read_text() == generated
    assert rows(url) == {"d1": "s1"}


def test_the_commands_migrate_rotate_and_report_without_a_key_in_sight(
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MANDATE_DATABASE_URL", store_url)
    monkeypatch.setenv("MANDATE_SECRET_KEY", OLD_KEK)
    assert main(["migrate"]) == 0  # creates the table and d1 under s1
    assert rows(store_url) == {"d1": "s1"}
    assert main(["keys", "status"]) == 0
    monkeypatch.setenv("MANDATE_SECRET_KEY", NEW_KEK)
    monkeypatch.setenv("MANDATE_SECRET_KEY_ID", "s2")
    assert main(["keys", "status"]) == 1  # d1 is under s1, which it is not given
    assert main(["keys", "rotate"]) == 2  # nor can it rotate without it
    monkeypatch.setenv("MANDATE_SECRET_KEYS_PREVIOUS", f'{{"s1": "{OLD_KEK}"}}')
    assert main(["keys", "rotate", "--new-data-key"]) == 0
    assert main(["keys", "rotate"]) == 0
    assert rows(store_url) == {"d1": "s2", "d2": "s2"}
    monkeypatch.delenv("MANDATE_SECRET_KEYS_PREVIOUS")
    assert main(["keys", "status"]) == 0
    monkeypatch.setenv("MANDATE_SECRET_KEY", OTHER_KEK)
    assert main(["keys", "rotate"]) == 2
    out, err = capsys.readouterr()
    # d1 only: d2 was made under s2
    assert "mandate: 1 of 2 data keys re-wrapped under key-encryption key s2" in out
    assert "new data key d2" in out
    assert "0 of 2 data keys re-wrapped" in out
    refusals = err.strip().splitlines()
    assert refusals[0].startswith("mandate: the store's data key d1 is wrapped under key-")
    assert refusals[-1] == (
        "mandate: MANDATE_SECRET_KEY (key id s2) is not the key that wrapped the store's data "
        "key d1 (its AES-GCM check fails): start with the original key"
    )
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for clear in (OLD_KEK, NEW_KEK, OTHER_KEK):
        assert clear not in out
        assert clear not in err
        assert clear not in logged
