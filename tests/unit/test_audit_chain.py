"""Hash chains and signed checkpoints of the audit trail (DESIGN §4), without a store."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import stat
from collections.abc import Iterator
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

from projections.audit_chain import (
    GENESIS,
    Checkpoint,
    SigningKeyError,
    canonical_json,
    chain_hash,
    checkpoint_payload,
    key_id_of,
    load_or_create_signing_key,
    load_public_key,
    load_signing_key,
    public_key_pem,
    sign_checkpoint,
    verify_chain,
    verify_checkpoint,
    walk_chain,
)

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


# -- verifying stored records ----------------------------------------------------------------------


def test_an_honest_trail_verifies_globally_and_per_account() -> None:
    stored = _chain(_bodies())
    assert verify_chain(stored) is None
    walk = walk_chain(stored)
    assert walk.ok
    assert (walk.checked, walk.last_position, walk.head) == (10, 11, stored[-1]["hash"])
    for account in (A, B, C):
        export = _export(stored, account)
        assert verify_chain(export, account_id=account) is None
        assert walk.account_heads[account] == export[-1]["hash"]
        assert walk_chain(export, account_id=account).head == export[-1]["hash"]


def test_a_changed_record_is_named() -> None:
    stored = _chain(_bodies())
    stored[4]["reason"] = "forged"
    assert verify_chain(stored) == stored[4]["position"]


def test_a_record_changed_and_rehashed_alone_breaks_at_the_next_one() -> None:
    stored = _chain(_bodies())
    stored[4]["reason"] = "forged"
    del stored[4]["account_hashes"]  # (they are optional; the global chain alone is checked)
    stored[4]["hash"] = chain_hash(stored[3]["hash"], _body(stored[4]))
    assert verify_chain(stored) == stored[5]["position"]


def _body(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stored.items() if k not in ("hash", "account_hashes")}


def test_two_records_swapped_in_place_are_named_at_the_first_swapped_position() -> None:
    """History reordered: what happened at 5 and 6 exchanged, positions left in place."""
    stored = _chain(_bodies())
    i = 3
    first, second = stored[i]["position"], stored[i + 1]["position"]
    stored[i], stored[i + 1] = (
        {**stored[i + 1], "position": first},
        {**stored[i], "position": second},
    )
    assert verify_chain(stored) == first


def test_two_records_moved_out_of_order_are_named_at_the_first_misplaced_one() -> None:
    """Rows exchanged whole (each with its own position and hash): the first out of place."""
    stored = _chain(_bodies())
    i = 3
    stored[i], stored[i + 1] = stored[i + 1], stored[i]
    walk = walk_chain(stored)
    assert walk.first_break is not None
    assert walk.first_break.position == stored[i]["position"]
    assert walk.last_position == stored[i - 1]["position"]  # everything before it verified


def test_a_deleted_record_is_detected_at_the_next_one() -> None:
    stored = _chain(_bodies())
    deleted = stored.pop(4)
    assert verify_chain(stored) == stored[4]["position"]
    assert stored[4]["position"] > deleted["position"]


def test_an_inserted_record_is_named() -> None:
    stored = _chain(_bodies())
    forged = {**_record(3, [A]), "hash": stored[1]["hash"], "account_hashes": {}}
    stored.insert(2, forged)
    assert verify_chain(stored) == 3


def test_a_record_deleted_from_the_end_is_caught_by_the_signed_checkpoint() -> None:
    key = Ed25519PrivateKey.generate()
    stored = _chain(_bodies())
    walk = walk_chain(stored)
    checkpoint = sign_checkpoint(
        key, walk.last_position, stored[-1]["time"], walk.head, walk.account_heads
    )
    truncated = walk_chain(stored[:-1])
    assert truncated.ok  # a shorter chain is still a chain …
    assert truncated.head != checkpoint.global_head  # … but not the one that was signed
    assert truncated.last_position < checkpoint.position


def test_a_wrong_account_hash_is_named_with_its_account() -> None:
    stored = _chain(_bodies())
    stored[3]["account_hashes"][C] = GENESIS
    walk = walk_chain(stored)
    assert walk.first_break is not None
    assert (walk.first_break.position, walk.first_break.account_id) == (5, C)
    del stored[3]["account_hashes"][C]
    assert verify_chain(stored) == 5


def test_an_account_export_must_hold_only_that_accounts_records() -> None:
    stored = _chain(_bodies())
    export = _export(stored, A)
    intruder = {**_body(stored[1]), "hash": export[0]["hash"]}  # B's record
    export.insert(1, intruder)
    walk = walk_chain(export, account_id=A)
    assert walk.first_break is not None
    assert (walk.first_break.position, walk.first_break.account_id) == (2, A)


def test_records_out_of_position_order_or_malformed_are_breaks() -> None:
    stored = _chain(_bodies())
    stored[5]["position"] = stored[4]["position"]
    assert verify_chain(stored) == stored[4]["position"]
    stored = _chain(_bodies())
    stored[5]["position"] = "7"
    assert verify_chain(stored) == stored[4]["position"] + 1
    stored = _chain(_bodies())
    stored[5]["accounts"] = B
    assert verify_chain(stored) == stored[5]["position"]


def test_a_walk_can_resume_from_signed_heads() -> None:
    stored = _chain(_bodies())
    prefix = walk_chain(stored[:5])
    suffix = walk_chain(stored[5:], start=prefix.head, account_starts=prefix.account_heads)
    whole = walk_chain(stored)
    assert suffix.ok
    assert (suffix.head, suffix.account_heads) == (whole.head, whole.account_heads)
    assert not walk_chain(stored[5:]).ok  # from GENESIS the suffix does not chain


# -- checkpoints -----------------------------------------------------------------------------------


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _checkpoint(key: Ed25519PrivateKey) -> Checkpoint:
    walk = walk_chain(_chain(_bodies()))
    heads = dict(reversed(list(walk.account_heads.items())))
    return sign_checkpoint(key, walk.last_position, "2025-01-31T09:30:11.000000Z", walk.head, heads)


def test_a_checkpoint_verifies_and_round_trips_through_json(key: Ed25519PrivateKey) -> None:
    checkpoint = _checkpoint(key)
    assert verify_checkpoint(key.public_key(), checkpoint)
    exported = json.loads(json.dumps(checkpoint.as_dict()))
    again = Checkpoint.from_dict(exported)
    assert again == checkpoint
    assert verify_checkpoint(key.public_key(), again)
    assert list(checkpoint.account_heads) == sorted(checkpoint.account_heads)
    assert len(base64.b64decode(checkpoint.signature)) == 64


def test_the_signed_payload_is_the_canonical_checkpoint_without_its_signature(
    key: Ed25519PrivateKey,
) -> None:
    checkpoint = _checkpoint(key)
    body = checkpoint.as_dict()
    del body["signature"]
    assert checkpoint.payload() == canonical_json(body)
    assert checkpoint.payload() == checkpoint_payload(
        checkpoint.position,
        checkpoint.time,
        checkpoint.global_head,
        checkpoint.account_heads,
        checkpoint.key_id,
    )
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert checkpoint.key_id == hashlib.sha256(raw).hexdigest()[:16] == key_id_of(key.public_key())


def _tamperings(checkpoint: Checkpoint) -> Iterator[dict[str, Any]]:
    data = checkpoint.as_dict()
    yield {**data, "position": data["position"] + 1}
    yield {**data, "time": "2025-01-31T09:30:12.000000Z"}
    yield {**data, "global_head": GENESIS}
    yield {**data, "account_heads": {**data["account_heads"], A: GENESIS}}
    yield {**data, "account_heads": {k: v for k, v in data["account_heads"].items() if k != B}}
    yield {**data, "account_heads": {**data["account_heads"], "4000000000000004": GENESIS}}
    yield {**data, "key_id": "0" * 16}
    yield {**data, "signature": base64.b64encode(bytes(64)).decode()}
    yield {**data, "signature": "not base64!"}
    yield {**data, "signature": data["signature"][:-8]}


def test_a_tampered_checkpoint_fails(key: Ed25519PrivateKey) -> None:
    checkpoint = _checkpoint(key)
    for tampered in _tamperings(checkpoint):
        assert not verify_checkpoint(key.public_key(), Checkpoint.from_dict(tampered)), tampered


def test_a_checkpoint_fails_under_another_key(key: Ed25519PrivateKey) -> None:
    checkpoint = _checkpoint(key)
    other = Ed25519PrivateKey.generate()
    assert not verify_checkpoint(other.public_key(), checkpoint)
    # even with the key id forged to the other key's, the signature does not verify
    forged = Checkpoint.from_dict({**checkpoint.as_dict(), "key_id": key_id_of(other.public_key())})
    assert not verify_checkpoint(other.public_key(), forged)


def test_only_chain_hashes_are_signed(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="chain hash"):
        sign_checkpoint(key, 1, "t", "abc", {})
    with pytest.raises(ValueError, match="chain hash"):
        sign_checkpoint(key, 1, "t", GENESIS, {A: "A" * 64})
    with pytest.raises(ValueError, match="non-negative"):
        sign_checkpoint(key, -1, "t", GENESIS, {})


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {
            "position": "1",
            "time": "t",
            "global_head": GENESIS,
            "account_heads": {},
            "key_id": "k",
            "signature": "s",
        },
        {
            "position": 1,
            "time": "t",
            "global_head": GENESIS,
            "account_heads": [],
            "key_id": "k",
            "signature": "s",
        },
        {
            "position": 1,
            "time": 5,
            "global_head": GENESIS,
            "account_heads": {},
            "key_id": "k",
            "signature": "s",
        },
    ],
)
def test_from_dict_refuses_what_is_not_a_checkpoint(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a checkpoint"):
        Checkpoint.from_dict(broken)


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
    checkpoint = sign_checkpoint(load_signing_key(path), 0, "t", GENESIS, {})
    assert verify_checkpoint(created.public_key(), checkpoint)


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
    assert verify_checkpoint(public, _checkpoint(key))
    with pytest.raises(SigningKeyError):
        load_public_key(b"garbage")
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(SigningKeyError, match="not an Ed25519"):
        load_public_key(ec_public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
