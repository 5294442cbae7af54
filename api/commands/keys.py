"""``mandate keys rotate | status``: the data keys that seal secrets, and their wrapping;
``mandate account erase-personal-data``: destroy an account's personal-data keys.

Rotating the key-encryption key (KEK) without downtime: give every process the new key as
``MANDATE_SECRET_KEY`` (new ``MANDATE_SECRET_KEY_ID``) and the old one in
``MANDATE_SECRET_KEYS_PREVIOUS``; run ``mandate keys rotate`` (re-wraps every data key under the
new KEK in one transaction; safe to run twice or at once); then drop the old key. Sealed
secrets in the log never change. Both commands open only the store's data key table, not a
whole runtime (no index replay).

Erasing personal data (crypto-shredding) destroys the account's personal-data keys in the same
table: the log's events, projections and audit chains are untouched (they hold only the sealed
values) and still verify, and every process reads the values as erased from its next answer on. The
erasure itself is ``Keyring.erase_personal``, which ``POST /v1/accounts/{a}/personal-data/erase``
(``api.routers.accounts``) calls on the server's keyring: one implementation for both. When
it destroyed a key, each then records ``PersonalDataErased`` in the ledger — who erased: the
caller over HTTP, the platform admin (``mandate:admin``, credential ``cli``) here — so the audit
trail shows who erased and when; a repeated erasure destroys nothing and records nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final
from uuid import uuid4

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from mandate.api.outages import StoreUnavailable
from mandate.api.settings import Settings, StoreConfig, store_config
from mandate.api.startup.local_keys import load_hasher
from mandate.api.startup.secret_keys import load_secret_keys
from mandate.api.startup.store_checks import StoreUnreachable, probe
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import NotFound
from mandate.domain.identity.keyring import Keyring, KeyringRefused
from mandate.domain.ledger.application import APPLICATION_NAME, Ledger
from mandate.projections.store.data_keys import DataKeysMissing, DataKeyStore

__all__ = ["account_erase_personal_data", "keys_rotate", "keys_status"]

_ACCOUNT_ID = re.compile(r"[1-9][0-9]{15}")


class _Refused(Exception):
    """The store or the keys cannot be used; the message is the one line to print."""


CLI_ACTOR: Final = "mandate:admin"
"""Who an operator's command acts as in the ledger: the platform admin (it needs the store and
the key-encryption key, as the admin does), credential ``cli``."""


def _operator_store(settings: Settings) -> StoreConfig:
    config = store_config(
        settings.database_url,
        store_timeout=max(settings.store_timeout, 5.0),  # an operator's command may wait
        reconnect_window=settings.store_reconnect_window,
    )
    config.env["CREATE_TABLE"] = "n"
    if config.sqlite_path is not None and not Path(config.sqlite_path).exists():
        raise _Refused(f"there is no store at {config.display}: run `mandate migrate` first")
    try:
        probe(config, need_schema=True)
    except StoreUnreachable as error:
        raise _Refused(str(error)) from None
    return config


@contextmanager
def _data_keys(settings: Settings) -> Iterator[DataKeyStore]:
    config = _operator_store(settings)
    factory = InfrastructureFactory.construct(Environment(APPLICATION_NAME, config.env))
    datastore = factory.application_recorder().datastore  # type: ignore[attr-defined]
    try:
        yield DataKeyStore(datastore)
    finally:
        datastore.close()


def keys_rotate(args: argparse.Namespace) -> int:
    """Re-wrap every data key under the current KEK; exit 1 if one is left under another."""
    settings = Settings()
    try:
        with _data_keys(settings) as store:
            keyring = Keyring.open(load_secret_keys(settings), store)
            done = keyring.rotate(new_data_key=args.new_data_key)
    except (_Refused, KeyringRefused, DataKeysMissing, StoreUnavailable) as error:
        print(f"mandate: {error}", file=sys.stderr)
        return 2
    line = (
        f"mandate: {done.rewrapped} of {done.data_keys} data keys re-wrapped under "
        f"key-encryption key {done.kek_id} (the others already were)"
    )
    if done.new_data_key is not None:
        line += f"; new secrets are sealed under the new data key {done.new_data_key}"
    print(line)
    if done.not_current:
        print(
            f"mandate: still under another key-encryption key: {', '.join(done.not_current)} "
            "(added during the rotation): run it again",
            file=sys.stderr,
        )
        return 1
    return 0


def keys_status(_: argparse.Namespace) -> int:
    """Each data key: its KEK id, when it was made and re-wrapped, whether it opens here."""
    settings = Settings()
    try:
        keks = load_secret_keys(settings)
        with _data_keys(settings) as store:
            rows = store.all()
    except (_Refused, DataKeysMissing, StoreUnavailable) as error:
        print(f"mandate: {error}", file=sys.stderr)
        return 2
    report = []
    for row in rows:
        opens = "erased" if row.erased else "yes"
        try:
            if not row.erased:
                keks.unwrap(row)
        except KeyringRefused as refused:
            opens = str(refused)
        report.append(
            {
                "data_key": row.id,
                "kek_id": row.kek_id,
                "created_at": row.created_at,
                "rewrapped_at": row.rewrapped_at,
                "opens": opens,
            }
        )
    summary = {"current_kek_id": keks.current.id, "configured_kek_ids": keks.ids}
    print(json.dumps({**summary, "data_keys": report}, indent=2))
    return 0 if all(item["opens"] in ("yes", "erased") for item in report) else 1


def account_erase_personal_data(args: argparse.Namespace) -> int:
    """Destroy the account's personal-data keys; idempotent (a second run erases nothing)."""
    account_id = args.account_id
    if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id):
        print("mandate: an account id is 16 digits, not starting with 0", file=sys.stderr)
        return 2
    settings = Settings()
    try:
        with _data_keys(settings) as store:
            keyring = Keyring.open(load_secret_keys(settings), store)
            erased = keyring.erase_personal(account_id)
    except (_Refused, KeyringRefused, DataKeysMissing, StoreUnavailable) as error:
        print(f"mandate: {error}", file=sys.stderr)
        return 2
    if not erased:
        print(
            f"mandate: account {account_id} has no live personal-data key: nothing left to "
            "erase (already erased, or it never sealed personal data)"
        )
        return 0
    print(
        f"mandate: erased the personal data of account {account_id}: destroyed "
        f"personal-data key {', '.join(erased)}; its users' display names now read as "
        "erased everywhere (the log, projections and audit chains still verify)"
    )
    try:
        position = _record_erasure(settings, account_id, erased)
    except (_Refused, StoreUnavailable, NotFound) as error:
        # the keys are gone either way; say loudly that the ledger does not show who did it
        print(
            f"mandate: the erasure is done but not recorded in the ledger: {error}",
            file=sys.stderr,
        )
        return 1
    print(f"mandate: recorded who erased as PersonalDataErased at position {position}")
    return 0


def _record_erasure(settings: Settings, account_id: str, erased: list[str]) -> int:
    """Record ``PersonalDataErased`` as the operator (``CLI_ACTOR``): the ledger opened on
    the store for this one command (no index, no replay); the position it was written at."""
    ledger = Ledger(_operator_store(settings).env, hasher=load_hasher(settings))
    audit = AuditContext(
        actor=CLI_ACTOR,
        credential="cli",
        request_id=f"cli-{uuid4().hex}",
        reason="mandate account erase-personal-data",
    )
    try:
        with acting_as(audit):
            return ledger.record_personal_data_erasure(account_id, erased).position
    finally:
        ledger.close()
