"""Hash chains and signed checkpoints of the audit trail (docs/design.md §4), without a store."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from mandate.projections.audit.chain import (
    GENESIS,
    CheckpointSigner,
    SignedCheckpoint,
    SigningKeyError,
    canonical_json,
    canonical_text,
    chain_hash,
    key_id_of,
    load_or_create_signing_key,
    load_public_key,
    load_signing_key,
    public_key_pem,
)
from mandate.projections.audit.verify import verify_chain

A, B, C = "1000000000000001", "2000000000000002", "3000000000000003"


def _record(position: int, accounts: list[str], **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "position": position,
        "time": f"2025-01-31T09:30:{position:02d}.000000Z",
        "accounts": accounts,
        "actor": f"acs:ram::{accounts[0]}:root",
        "credential": "LTAIexample",
        "event_type": "UserCreated",
        "target": f"acs:ram::{accounts[0]}:user/u{position}",
        "summary": {"user_name": f"u{position}", "display_name": "Zoë"},
        "reason": None,
        "request_id": f"req-{position}",
        "source_ip": "203.0.113.7",
    }
    record.update(changes)
    return record


def _bodies() -> list[dict[str, Any]]:
    """Ten records over three accounts; position 3 is absent (a gap in the log is legal)."""
    owners = [[A], [B], [A], [A, C], [C], [B], [A], [A, B], [C], [A]]
    positions = [1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    return [_record(p, owners[i]) for i, p in enumerate(positions)]


def _chain(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored form of the global trail: each record with its global and account hashes."""
    head = GENESIS
    heads: dict[str, str] = {}
    stored: list[dict[str, Any]] = []
    for body in bodies:
        head = chain_hash(head, body)
        account_hashes: dict[str, str] = {}
        for account in body["accounts"]:
            heads[account] = account_hashes[account] = chain_hash(heads.get(account, GENESIS), body)
        stored.append({**body, "hash": head, "account_hashes": account_hashes})
    return stored


def _export(stored: list[dict[str, Any]], account: str) -> list[dict[str, Any]]:
    """One account's export: its records with that account's chain hash as ``hash``."""
    return [
        {
            **{k: v for k, v in r.items() if k not in ("hash", "account_hashes")},
            "hash": r["account_hashes"][account],
        }
        for r in stored
        if account in r["accounts"]
    ]


# -- canonical JSON --------------------------------------------------------------------------------


def test_canonical_json_is_independent_of_key_order_and_compact() -> None:
    one = {"b": 1, "a": {"y": [1, 2], "x": None}, "c": "é"}
    two = {"c": "é", "a": {"x": None, "y": [1, 2]}, "b": 1}
    assert canonical_json(one) == canonical_json(two)
    assert canonical_json(one) == '{"a":{"x":null,"y":[1,2]},"b":1,"c":"é"}'.encode()


def test_canonical_json_is_utf8_not_ascii_escaped_and_refuses_nan() -> None:
    assert canonical_json({"name": "Zoë ✓"}) == '{"name":"Zoë ✓"}'.encode()
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"x": float("nan")})


def test_canonical_text_is_canonical_json_before_its_utf8_encoding() -> None:
    record = {"name": "Zoë ✓", "a": {"y": [1, 2], "x": None}}
    assert canonical_text(record).encode() == canonical_json(record)


# -- chain hashes ----------------------------------------------------------------------------------


def test_chain_hash_is_sha256_of_previous_bytes_then_canonical_record() -> None:
    record = _record(1, [A])
    expected = hashlib.sha256(bytes(32) + canonical_json(record)).hexdigest()
    assert chain_hash(GENESIS, record) == expected
    following = chain_hash(expected, _record(2, [B]))
    assert (
        following
        == hashlib.sha256(bytes.fromhex(expected) + canonical_json(_record(2, [B]))).hexdigest()
    )


@pytest.mark.parametrize("previous", ["", "0" * 63, "A" * 64, "g" * 64, "0" * 66])
def test_chain_hash_wants_a_previous_hash(previous: str) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        chain_hash(previous, _record(1, [A]))


@pytest.mark.parametrize("field", list(_record(1, [A])))
def test_changing_any_field_changes_that_hash_and_every_later_one(field: str) -> None:
    bodies = _bodies()
    honest = _chain(bodies)
    changed = copy.deepcopy(bodies)
    value = changed[3][field]
    changed[3][field] = (
        value + 1
        if isinstance(value, int)
        else [*value, C]
        if isinstance(value, list)
        else {**value, "extra": 1}
        if isinstance(value, dict)
        else "x"
        if value is None
        else value + "x"
    )
    forged = _chain(changed)
    assert [r["hash"] for r in forged[:3]] == [r["hash"] for r in honest[:3]]
    assert all(f["hash"] != h["hash"] for f, h in zip(forged[3:], honest[3:], strict=True))


# -- verifying stored records (projections.audit.verify.verify_chain, without a log) -------------


def _global(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**_body(r), "hash": r["hash"]} for r in stored]


def _body(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stored.items() if k not in ("hash", "account_hashes")}


def _first_bad(records: list[dict[str, Any]], signed: list[SignedCheckpoint] | None = None) -> Any:
    result = verify_chain(records, None, signed or [], None)
    return result.first_bad_position


def test_an_honest_trail_verifies_globally_and_per_account() -> None:
    stored = _chain(_bodies())
    result = verify_chain(_global(stored), None, [], None)
    assert (result.ok, result.checked) == (True, 10)
    for account in (A, B, C):
        assert verify_chain(_export(stored, account), None, [], None).ok


def test_a_changed_record_is_named() -> None:
    records = _global(_chain(_bodies()))
    records[4]["reason"] = "forged"
    assert _first_bad(records) == records[4]["position"]


def test_a_record_changed_and_rehashed_alone_breaks_at_the_next_one() -> None:
    records = _global(_chain(_bodies()))
    records[4]["reason"] = "forged"
    records[4]["hash"] = chain_hash(records[3]["hash"], _body(records[4]))
    assert _first_bad(records) == records[5]["position"]


def test_two_records_swapped_in_place_are_named_at_the_first_swapped_position() -> None:
    """History reordered: what happened at 5 and 6 exchanged, positions left in place."""
    records = _global(_chain(_bodies()))
    i = 3
    first, second = records[i]["position"], records[i + 1]["position"]
    records[i], records[i + 1] = (
        {**records[i + 1], "position": first},
        {**records[i], "position": second},
    )
    assert _first_bad(records) == first


def test_two_rows_moved_out_of_order_are_named_at_the_first_misplaced_one() -> None:
    records = _global(_chain(_bodies()))
    i = 3
    records[i], records[i + 1] = records[i + 1], records[i]
    assert _first_bad(records) == records[i]["position"]


def test_a_deleted_record_is_detected_at_the_next_one() -> None:
    records = _global(_chain(_bodies()))
    deleted = records.pop(4)
    assert _first_bad(records) == records[4]["position"]
    assert records[4]["position"] > deleted["position"]


def test_an_inserted_record_is_named() -> None:
    records = _global(_chain(_bodies()))
    records.insert(2, {**_record(3, [A]), "hash": records[1]["hash"]})
    assert _first_bad(records) == 3


def test_an_account_export_must_hold_only_that_accounts_records() -> None:
    stored = _chain(_bodies())
    export = _export(stored, A)
    export.insert(1, {**_body(stored[1]), "hash": export[0]["hash"]})  # one of B's records
    assert _first_bad(export) == 2


def test_records_cut_from_the_end_are_caught_by_the_signed_checkpoint(
    key: Ed25519PrivateKey,
) -> None:
    records = _global(_chain(_bodies()))
    signer = CheckpointSigner(key)
    head = records[-1]
    signed = [signer.sign("*", head["position"], head["hash"], head["time"])]
    assert verify_chain(records, None, signed, key.public_key()).ok
    truncated = records[:-1]
    assert verify_chain(truncated, None, [], None).ok  # a shorter chain is still a chain …
    result = verify_chain(truncated, None, signed, key.public_key())
    assert (result.ok, result.first_bad_position) == (False, head["position"])  # … not the one


def test_a_rewritten_and_rehashed_trail_is_caught_by_the_checkpoint(key: Ed25519PrivateKey) -> None:
    records = _global(_chain(_bodies()))
    signer = CheckpointSigner(key)
    signed = [signer.sign("*", r["position"], r["hash"], r["time"]) for r in records[4::5]]
    forged_bodies = [_body(r) for r in records]
    forged_bodies[2]["reason"] = "forged"
    forged = _global(_chain(forged_bodies))
    assert verify_chain(forged, None, [], None).ok  # consistent on its own …
    result = verify_chain(forged, None, signed, key.public_key())
    assert result.first_bad_position == signed[0].position  # … but not what was signed


# -- checkpoints -----------------------------------------------------------------------------------


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _checkpoint(key: Ed25519PrivateKey, scope: str = "*") -> SignedCheckpoint:
    return CheckpointSigner(key).sign(scope, 11, "ab" * 32, "2025-01-31T09:30:11.000000Z")


def test_a_checkpoint_verifies_and_round_trips_through_json(key: Ed25519PrivateKey) -> None:
    checkpoint = _checkpoint(key)
    assert checkpoint.verify(key.public_key())
    again = SignedCheckpoint.from_dict(json.loads(json.dumps(checkpoint.as_dict())))
    assert again == checkpoint
    assert again.verify(key.public_key())


def test_the_signed_payload_is_the_canonical_checkpoint_without_its_signature(
    key: Ed25519PrivateKey,
) -> None:
    checkpoint = _checkpoint(key, A)
    expected = canonical_json({k: v for k, v in checkpoint.as_dict().items() if k != "signature"})
    assert checkpoint.payload() == expected
    key.public_key().verify(base64.b64decode(checkpoint.signature), expected)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert checkpoint.key_id == key_id_of(key.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


@pytest.mark.parametrize(
    "change",
    [
        {"scope": B},
        {"position": 12},
        {"head": "cd" * 32},
        {"time": "2025-01-31T09:30:12.000000Z"},
        {"signature": base64.b64encode(b"x" * 64).decode()},
        {"signature": "not base64!"},
    ],
)
def test_a_tampered_checkpoint_fails(key: Ed25519PrivateKey, change: dict[str, Any]) -> None:
    tampered = SignedCheckpoint.from_dict({**_checkpoint(key, A).as_dict(), **change})
    assert not tampered.verify(key.public_key())


def test_a_checkpoint_fails_under_another_key(key: Ed25519PrivateKey) -> None:
    assert not _checkpoint(key).verify(Ed25519PrivateKey.generate().public_key())


# -- keys ------------------------------------------------------------------------------------------


def test_the_key_file_is_created_0600_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.pem"
    previous_umask = os.umask(0o022)
    try:
        created = load_or_create_signing_key(path)
    finally:
        os.umask(previous_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in path.parent.iterdir()] == ["audit.pem"]  # no temporary left
    for loaded in (load_or_create_signing_key(path), load_signing_key(path)):
        assert public_key_pem(loaded) == public_key_pem(created)
    checkpoint = CheckpointSigner(load_signing_key(path)).sign("*", 0, GENESIS, "t")
    assert checkpoint.verify(created.public_key())


def test_the_key_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "audit.pem"
    previous_umask = os.umask(0o277)
    try:
        load_or_create_signing_key(path)
    finally:
        os.umask(previous_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_key_file_is_never_replaced(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "audit.pem"
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.write_bytes(pem)
    loaded = load_or_create_signing_key(path)
    assert public_key_pem(loaded) == public_key_pem(key)
    assert path.read_bytes() == pem


def test_a_key_file_without_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.pem"
    path.write_bytes(b"not a key")
    with pytest.raises(SigningKeyError):
        load_or_create_signing_key(path)
    other = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(other.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(SigningKeyError, match="not an Ed25519"):
        load_signing_key(path)


def test_the_public_key_pem_round_trips(key: Ed25519PrivateKey) -> None:
    pem = public_key_pem(key)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert public_key_pem(key.public_key()) == pem
    public = load_public_key(pem)
    assert _checkpoint(key).verify(public)
    with pytest.raises(SigningKeyError):
        load_public_key(b"garbage")
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(SigningKeyError, match="not an Ed25519"):
        load_public_key(ec_public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
