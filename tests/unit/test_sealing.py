"""Sealing secrets (AES-256-GCM under a data key) and wrapping data keys (under a KEK).

What must hold for the wiring to rely on: a sealed secret opens only under its own data key
and for what it was bound to; any change to it is refused; a wrapped data key opens only under
its own KEK and for its own id; no refusal, ``repr`` or pickle ever carries a key or a secret.
The settings' rules for the KEKs are checked here too.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
from pydantic import ValidationError

from mandate.api.settings import Settings
from mandate.domain.identity.keyring import KeyEncryptionKeys, KeyringRefused, WrappedDataKey
from mandate.domain.identity.sealing import (
    DataKey,
    KeyEncryptionKey,
    SealRefused,
    sealed_key_id,
)

SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEX"
KEY_ID = "LTAI5tAbCdEfGhIjKlMnOpQr"


def flip(text: str, at: int) -> str:
    """``text`` with the base64url character at ``at`` replaced by another."""
    replacement = "A" if text[at] != "A" else "B"
    return text[:at] + replacement + text[at + 1 :]


@pytest.fixture
def key() -> DataKey:
    return DataKey.generate("d1")


def test_a_sealed_secret_opens_for_what_it_is_bound_to(key: DataKey) -> None:
    sealed = key.seal(SECRET, bound_to=KEY_ID)
    assert sealed.startswith("v1$d1$")
    assert sealed_key_id(sealed) == "d1"
    assert SECRET not in sealed
    assert key.unseal(sealed, bound_to=KEY_ID) == SECRET
    # a fresh nonce each time: the same secret never seals to the same text
    assert key.seal(SECRET, bound_to=KEY_ID) != sealed
    assert key.unseal(key.seal("ünïcødé ✓", bound_to="x"), bound_to="x") == "ünïcødé ✓"


@pytest.mark.parametrize("at", [6, 10, 30, -1])
def test_any_change_to_a_sealed_secret_is_refused(key: DataKey, at: int) -> None:
    sealed = key.seal(SECRET, bound_to=KEY_ID)
    position = at if at >= 0 else len(sealed) + at
    # (a last character that differs only in bits decoding to nothing is refused as such)
    with pytest.raises(SealRefused, match=r"does not open under data key d1|not canonical"):
        key.unseal(flip(sealed, position), bound_to=KEY_ID)


def test_only_the_canonical_spelling_of_a_sealed_secret_opens(key: DataKey) -> None:
    sealed = key.seal(SECRET, bound_to=KEY_ID)  # 12 + 30 + 16 bytes: 4 idle bits at the end
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    idle_bit_flipped = sealed[:-1] + alphabet[alphabet.index(sealed[-1]) ^ 1]
    with pytest.raises(SealRefused, match="not canonical"):
        key.unseal(idle_bit_flipped, bound_to=KEY_ID)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-4],  # shortened
        lambda s: s[: s.rindex("$") + 10],  # cut below a nonce and a tag
        lambda s: s.replace("v1$", "v2$", 1),  # another version
        lambda s: s.replace("$", "", 1),  # no version
        lambda s: s + "!",  # not base64url
        lambda s: "",
    ],
)
def test_malformed_sealed_secrets_are_refused(key: DataKey, mangle: object) -> None:
    sealed = key.seal(SECRET, bound_to=KEY_ID)
    assert callable(mangle)
    with pytest.raises(SealRefused):
        key.unseal(mangle(sealed), bound_to=KEY_ID)


def test_a_sealed_secret_bound_to_another_key_id_is_refused(key: DataKey) -> None:
    sealed = key.seal(SECRET, bound_to=KEY_ID)
    for other in ("LTAI5tOther", KEY_ID + " ", "", KEY_ID.lower()):
        with pytest.raises(SealRefused):
            key.unseal(sealed, bound_to=other)


def test_a_sealed_secret_does_not_open_under_another_key(key: DataKey) -> None:
    sealed = key.seal(SECRET, bound_to=KEY_ID)
    with pytest.raises(SealRefused, match="does not open"):
        DataKey.generate("d1").unseal(sealed, bound_to=KEY_ID)  # same id, other key
    with pytest.raises(SealRefused, match="another data key"):
        DataKey.generate("d2").unseal(sealed, bound_to=KEY_ID)
    # relabelled to name another key, it does not open under that key either (the id is
    # part of the associated data): a row swap in the key table cannot redirect it
    same_material = DataKey("d2", key.material)
    with pytest.raises(SealRefused, match="does not open"):
        same_material.unseal(sealed.replace("$d1$", "$d2$", 1), bound_to=KEY_ID)


def test_refusals_reprs_and_pickles_never_carry_a_key_or_a_secret(key: DataKey) -> None:
    sealed = key.seal(SECRET, bound_to=KEY_ID)
    body = sealed.rsplit("$", 1)[1]
    with pytest.raises(SealRefused) as refused:
        key.unseal(flip(sealed, 8), bound_to=KEY_ID)
    message = str(refused.value)
    assert SECRET not in message
    assert body not in message
    assert KEY_ID not in message
    kek = KeyEncryptionKey.derive("s1", "k" * 40, source="MANDATE_SECRET_KEY")
    for holder in (key, kek):
        assert repr(holder.material) not in repr(holder)
        assert "k" * 40 not in repr(holder)
        with pytest.raises(TypeError, match="never pickled"):
            pickle.dumps(holder)
        with pytest.raises(TypeError, match="never pickled"):
            copy.deepcopy(holder)


def test_a_kek_wraps_a_data_key_for_its_id_only() -> None:
    kek = KeyEncryptionKey.derive("s1", "a" * 40, source="MANDATE_SECRET_KEY")
    key = DataKey.generate("d1")
    wrapped = kek.wrap(key)
    assert kek.unwrap("d1", wrapped).material == key.material
    assert kek.wrap(key) != wrapped  # a fresh nonce
    with pytest.raises(SealRefused):
        kek.unwrap("d2", wrapped)  # moved onto another row
    renamed = KeyEncryptionKey("s2", kek.material, "MANDATE_SECRET_KEY")
    with pytest.raises(SealRefused):
        renamed.unwrap("d1", wrapped)  # recorded under another KEK id


def test_a_wrong_kek_is_refused_in_one_line_naming_its_setting() -> None:
    right = KeyEncryptionKey.derive("s1", "a" * 40, source="MANDATE_SECRET_KEY")
    wrong = KeyEncryptionKey.derive("s1", "b" * 40, source="MANDATE_SECRET_KEY")
    wrapped = right.wrap(DataKey.generate("d1"))
    with pytest.raises(SealRefused) as refused:
        wrong.unwrap("d1", wrapped)
    message = str(refused.value)
    assert message.startswith(
        "MANDATE_SECRET_KEY (key id s1) is not the key that wrapped the store's data key d1"
    )
    assert "\n" not in message
    assert "b" * 40 not in message
    assert wrapped not in message


def test_kek_derivation_is_stable_and_distinct() -> None:
    one = KeyEncryptionKey.derive("s1", "x" * 40, source="f")
    assert one.material == KeyEncryptionKey.derive("s9", "x" * 40, source="g").material
    assert one.material != KeyEncryptionKey.derive("s1", "x" * 39 + "y", source="f").material
    assert len(one.material) == 32


def test_the_keks_unwrap_under_the_kek_a_row_records() -> None:
    old = KeyEncryptionKey.derive("s1", "o" * 40, source="MANDATE_SECRET_KEYS_PREVIOUS")
    new = KeyEncryptionKey.derive("s2", "n" * 40, source="MANDATE_SECRET_KEY")
    key = DataKey.generate("d1")
    row = WrappedDataKey("d1", "s1", old.wrap(key), "2026-12-07T00:00:00+00:00")
    assert KeyEncryptionKeys(new, (old,)).unwrap(row).material == key.material
    with pytest.raises(KeyringRefused, match=r"wrapped under key-encryption key s1, which this"):
        KeyEncryptionKeys(new).unwrap(row)
    with pytest.raises(ValueError, match="must differ"):
        KeyEncryptionKeys(new, (KeyEncryptionKey("s2", old.material, "x"),))


@pytest.mark.parametrize("bad", ["", "d 1", "d$1", "x" * 33])
def test_key_ids_are_short_plain_names(bad: str) -> None:
    with pytest.raises(ValueError, match="id is 1-32"):
        DataKey(bad, bytes(32))
    with pytest.raises(ValueError, match="id is 1-32"):
        KeyEncryptionKey(bad, bytes(32), "x")


def test_production_needs_the_secret_key(tmp_path: Path) -> None:
    others = {
        "env": "production",
        "hash_key": "h" * 40,
        "admin_token": "t" * 40,
        "audit_signing_key_file": tmp_path / "audit.pem",
        "token_signing_key": "s" * 40,
    }
    with pytest.raises(ValidationError, match="production needs MANDATE_SECRET_KEY"):
        Settings(**others)
    assert Settings(**others, secret_key="k" * 40).secret_key_id == "s1"


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ({"secret_key": "short-kek"}, "MANDATE_SECRET_KEY must be at least 32"),
        ({"secret_keys_previous": {"s0": "o" * 40}}, "needs MANDATE_SECRET_KEY"),
        (
            {"secret_key": "k" * 40, "secret_keys_previous": {"s0": "short-old-kek"}},
            "key s0 must be at least 32",
        ),
        (
            {"secret_key": "k" * 40, "secret_keys_previous": {"s1": "o" * 40}},
            "other than MANDATE_SECRET_KEY_ID",
        ),
        ({"secret_key": "k" * 40, "secret_key_id": "s 1"}, "should match pattern"),
    ],
)
def test_the_secret_key_settings_are_checked_without_echoing_a_key(
    given: dict[str, object], rule: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(**given)
    text = "; ".join(str(item["msg"]) for item in refused.value.errors())
    assert rule in text
    assert "short-kek" not in text
    assert "short-old-kek" not in text
    assert "o" * 40 not in text
