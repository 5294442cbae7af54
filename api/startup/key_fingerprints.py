"""The keys a store was written with, recorded once as fingerprints, checked at every start.

A process started with another ``MANDATE_HASH_KEY`` used to report ready and then refuse every
AccessKey (their stored hashes were made with the other key); another token-signing key
refuses every STS token, another audit key signs checkpoints the old public key cannot verify.
So the first start (or ``mandate migrate``) records, per key id, a fingerprint of each key in
the ledger's own store, and a process whose keys give another fingerprint refuses to start,
naming the key. A key id seen for the first time is recorded (that is how a key rotates in).

A fingerprint is SHA-256 over an HMAC of a fixed label under the key — never the key, and not
a hash an attacker could test guesses of a short key against without the HMAC step — and, for
the audit key, SHA-256 of its *public* key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from mandate.projections.store.ledger_tables import ledger_table

__all__ = ["KEY_TABLE", "Fingerprint", "KeyMismatch", "check_and_record", "fingerprints"]

KEY_TABLE: Final = "mandate_key_fingerprints"
_LABEL: Final = b"mandate key fingerprint v1|"


class KeyMismatch(Exception):
    """A configured key is not the one the store was written with (the message names it)."""


@dataclass(frozen=True)
class Fingerprint:
    """One key's recorded name (``hash_key:k1``), what sets it, and its fingerprint."""

    name: str
    setting: str
    value: str


def _of_secret(name: str, key: bytes) -> str:
    derived = hmac.new(key, _LABEL + name.encode(), hashlib.sha256).digest()
    return hashlib.sha256(derived).hexdigest()


def fingerprints(
    hash_keys: Mapping[str, bytes],
    token_keys: Mapping[str, bytes],
    audit_public_key: Ed25519PublicKey,
    *,
    settings: Mapping[str, str],
) -> list[Fingerprint]:
    """Every key's fingerprint; ``settings`` says what sets each kind (for the message)."""
    found = [
        Fingerprint(
            f"hash_key:{kid}",
            f"{settings['hash_key']} (key id {kid})",
            _of_secret(f"hash_key:{kid}", hash_keys[kid]),
        )
        for kid in sorted(hash_keys)
    ]
    found += [
        Fingerprint(
            f"token_signing_key:{kid}",
            f"{settings['token_signing_key']} (key id {kid})",
            _of_secret(f"token_signing_key:{kid}", token_keys[kid]),
        )
        for kid in sorted(token_keys)
    ]
    raw = audit_public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    found.append(
        Fingerprint(
            "audit_signing_key",
            settings["audit_signing_key"],
            hashlib.sha256(_LABEL + b"audit_signing_key|" + raw).hexdigest(),
        )
    )
    return found


def check_and_record(
    datastore: SQLiteDatastore | PostgresDatastore,
    keys: list[Fingerprint],
    *,
    create_table: bool,
) -> None:
    """Record the fingerprints not yet known; raise ``KeyMismatch`` on the first that differs.

    Without ``create_table`` a missing table is refused (PostgreSQL's schema comes from
    ``mandate migrate``, never from a serving process).
    """
    table = ledger_table(datastore, KEY_TABLE)
    postgres = isinstance(datastore, PostgresDatastore)
    mark = "%s" if postgres else "?"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with datastore.transaction(commit=True) as cursor:
        if create_table:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, "
                "fingerprint TEXT NOT NULL, recorded_at TEXT NOT NULL)"
            )
    try:
        with datastore.transaction(commit=True) as cursor:
            for key in keys:
                cursor.execute(
                    f"INSERT INTO {table} (name, fingerprint, recorded_at) "  # noqa: S608
                    f"VALUES ({mark}, {mark}, {mark}) ON CONFLICT (name) DO NOTHING",
                    (key.name, key.value, now),
                )
            cursor.execute(f"SELECT name, fingerprint, recorded_at FROM {table}")  # noqa: S608
            rows = cursor.fetchall()
            recorded = {row["name"]: (row["fingerprint"], row["recorded_at"]) for row in rows}
    except Exception as error:
        if create_table:
            raise
        raise KeyMismatch(
            f"the store has no record of its keys ({KEY_TABLE}): run `mandate migrate` first "
            f"({type(error).__name__})"
        ) from error
    for key in keys:
        fingerprint, since = recorded[key.name]
        if not hmac.compare_digest(fingerprint, key.value):
            raise KeyMismatch(
                f"{key.setting} is not the key this store was written with (its fingerprint "
                f"differs from the one recorded at {since}): start with the original key"
            )
