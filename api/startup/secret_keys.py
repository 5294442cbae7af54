"""The key-encryption keys (KEKs) that wrap the store's data keys, and the process's keyring.

From the settings in production (``MANDATE_SECRET_KEY`` under ``MANDATE_SECRET_KEY_ID``, and
``MANDATE_SECRET_KEYS_PREVIOUS`` during a rotation), else generated once into the state
directory beside the database (mode 0600), like the other local keys — never in the database,
an event or a log line. ``open_keyring`` unwraps the store's data keys with them and refuses
to start, in one line, when they do not open.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Final

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from mandate.api.outages import StoreUnavailable
from mandate.api.settings import Settings
from mandate.api.signing.oss4 import forget_signing_keys, remember_signing_keys
from mandate.api.startup.local_keys import write_private
from mandate.domain.identity.keyring import KeyEncryptionKeys, Keyring, KeyringRefused
from mandate.domain.identity.sealing import KeyEncryptionKey
from mandate.projections.store.data_keys import DataKeysMissing, DataKeyStore

__all__ = ["SECRET_KEYS_FILE", "load_secret_keys", "open_keyring"]

SECRET_KEYS_FILE: Final = "mandate.secret-keys"  # noqa: S105 (a file name, not a secret)


def load_secret_keys(settings: Settings) -> KeyEncryptionKeys:
    """The current KEK and the previous ones still accepted for unwrapping.

    The development file holds ``{"current": "s1", "keys": {"s1": "…", …}}``: to rotate there,
    add a key, make it current, run ``mandate keys rotate``, then remove the old one.
    """
    if settings.secret_key:
        current = KeyEncryptionKey.derive(
            settings.secret_key_id, settings.secret_key, source="MANDATE_SECRET_KEY"
        )
        previous = tuple(
            KeyEncryptionKey.derive(kid, key, source="MANDATE_SECRET_KEYS_PREVIOUS")
            for kid, key in sorted(settings.secret_keys_previous.items())
        )
        return KeyEncryptionKeys(current, previous)
    path = settings.resolved_state_dir / SECRET_KEYS_FILE
    if path.exists():
        stored = json.loads(path.read_text())
    else:
        stored = {"current": "s1", "keys": {"s1": secrets.token_urlsafe(48)}}
        write_private(path, json.dumps(stored))
    return _from_file(path, stored)


def _from_file(path: Path, stored: dict[str, object]) -> KeyEncryptionKeys:
    keys, current = stored.get("keys"), stored.get("current")
    if not isinstance(keys, dict) or not isinstance(current, str) or current not in keys:
        raise StoreUnavailable(f"{path} must hold a current key id and its key")
    try:
        kek = {
            kid: KeyEncryptionKey.derive(kid, str(key), source=str(path))
            for kid, key in keys.items()
        }
    except ValueError as error:  # a bad key id: the message never holds a key
        raise StoreUnavailable(f"{path}: {error}") from None
    return KeyEncryptionKeys(kek[current], tuple(kek[kid] for kid in sorted(kek) if kid != current))


def open_keyring(
    settings: Settings,
    datastore: SQLiteDatastore | PostgresDatastore,
    *,
    create_table: bool,
) -> Keyring:
    """The keyring on the ledger's store; ``StoreUnavailable`` (one line) when the table is
    missing or the configured KEKs do not open its data keys."""
    store = DataKeyStore(datastore)
    if create_table:
        store.create_table()
    try:
        keks = load_secret_keys(settings)
        keyring = Keyring.open(keks, store, opened_secrets=settings.secret_cache_size)
    except (KeyringRefused, DataKeysMissing) as error:
        raise StoreUnavailable(str(error)) from None
    remember_signing_keys(settings.secret_cache_size)  # derived from the opened secrets
    keyring.also_forget(forget_signing_keys)
    return keyring
