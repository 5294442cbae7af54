"""Hash chains over audit records and Ed25519-signed checkpoints of their heads (DESIGN §4).

Pure functions and values; the only I/O is reading and creating the signing key file.

Canonical JSON
    ``canonical_json(obj)``: ``json.dumps`` with sorted keys, separators ``(",", ":")``,
    ``ensure_ascii=False`` and no NaN or infinities, encoded as UTF-8. Records are the
    ``AuditRecord.as_dict()`` of ``projections.audit_records``.

Chains
    ``GENESIS`` is 64 zeros. With ``h_0 = GENESIS``::

        h_n = hex(SHA-256(bytes.fromhex(h_{n-1}) ‖ canonical_json(record_n)))

    i.e. the 32 raw bytes of the previous hash, then the canonical JSON bytes of the record,
    hashed once; lowercase hex. The **global** chain runs over every record in position
    order; an **account** chain runs, the same way from ``GENESIS``, over the records whose
    ``accounts`` list that account, so a tenant can verify its own export alone. A record
    naming two accounts is in both accounts' chains.

Checkpoints
    A ``Checkpoint`` signs, with an Ed25519 key kept outside the database, the heads of the
    chains after ``position``: ``global_head`` and ``account_heads`` (account id → head; a
    caller may pass only some accounts, e.g. just one tenant's, since other tenants' ids
    are not that tenant's business). The signed bytes are ``checkpoint_payload(...)``: the
    canonical JSON of ``{"account_heads", "global_head", "key_id", "position", "time"}`` —
    every field but ``signature``. ``key_id`` is the first 16 hex digits of the SHA-256 of
    the raw 32-byte public key; ``signature`` is the standard base64 of the 64-byte
    signature.

Verifying a stored trail
    ``walk_chain`` / ``verify_chain`` take records as stored or exported: each a mapping with
    the record's fields plus ``"hash"`` — the head of the chain being verified just after
    that record — and, optionally, ``"account_hashes"`` (account id → that account's chain
    head just after it). Everything but those two keys is the hashed record.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

__all__ = [
    "CHAIN_KEYS",
    "GENESIS",
    "ChainBreak",
    "ChainWalk",
    "Checkpoint",
    "SigningKeyError",
    "canonical_json",
    "chain_hash",
    "checkpoint_payload",
    "key_id_of",
    "load_or_create_signing_key",
    "load_public_key",
    "load_signing_key",
    "public_key_pem",
    "record_body",
    "sign_checkpoint",
    "verify_chain",
    "verify_checkpoint",
    "walk_chain",
]

GENESIS: Final = "0" * 64
"""The hash every chain starts from."""

CHAIN_KEYS: Final = frozenset({"hash", "account_hashes"})
"""Keys of a stored record that hold chain hashes; they are not part of the hashed record."""

_HEX64: Final = re.compile(r"\A[0-9a-f]{64}\Z")


# -- canonical form and chain hashes ------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces, UTF-8 (not ASCII-escaped), no NaN."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def chain_hash(previous_hex: str, record: Mapping[str, Any]) -> str:
    """``hex(SHA-256(bytes.fromhex(previous_hex) ‖ canonical_json(record)))``.

    ``previous_hex`` must be 64 lowercase hex digits (``GENESIS`` for the first record).
    """
    if not isinstance(previous_hex, str) or not _HEX64.match(previous_hex):
        raise ValueError("the previous hash must be 64 lowercase hex digits")
    digest = hashlib.sha256(bytes.fromhex(previous_hex))
    digest.update(canonical_json(dict(record)))
    return digest.hexdigest()


def record_body(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed part of a stored record: all of it but ``CHAIN_KEYS``."""
    return {key: value for key, value in stored.items() if key not in CHAIN_KEYS}


# -- verifying stored records -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where a walk first disagreed: the record's position, the chain (``None`` for the
    global chain, else an account id) and why."""

    position: int
    account_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ChainWalk:
    """The outcome of ``walk_chain``: records checked, the last good position, the heads
    after it, and the first break.

    ``head`` is the head of the chain walked (the global chain's, or with ``account_id``
    that account's); ``account_heads`` the head of every account chain met on the way (with
    ``account_id``: just that one). After a break, ``checked``, ``last_position`` and the
    heads describe the verified prefix.
    """

    checked: int
    last_position: int
    head: str
    account_heads: dict[str, str] = field(default_factory=dict)
    first_break: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _position_of(stored: Mapping[str, Any]) -> int | None:
    position = stored.get("position")
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        return None
    return position


def _accounts_of(stored: Mapping[str, Any]) -> list[str] | None:
    accounts = stored.get("accounts")
    if not isinstance(accounts, list | tuple) or not all(isinstance(a, str) for a in accounts):
        return None
    return list(accounts)


def walk_chain(
    records: Iterable[Mapping[str, Any]],
    *,
    account_id: str | None = None,
    start: str = GENESIS,
    account_starts: Mapping[str, str] | None = None,
) -> ChainWalk:
    """Re-hash ``records`` in the order given and compare with their stored hashes.

    Without ``account_id`` the records are the global trail: ``"hash"`` is the global head
    after each record, and every account chain is recomputed along the way (and compared
    with ``"account_hashes"`` where a record has it: it must then hold every account the
    record lists). With ``account_id`` the records are that account's export: each must list
    ``account_id``, and ``"hash"`` is that account's head after it.

    ``start`` (and, globally, ``account_starts``) are the heads just before the first record
    — ``GENESIS`` for a walk from the beginning, or the signed heads of a checkpoint to
    verify only what follows it.

    The walk stops at the first record that is malformed, not after its predecessor (its
    position is not greater), or whose stored hash is not the recomputed one. A record
    changed, inserted, removed or moved is thus reported at the first record whose hash
    cannot be reproduced — the changed one, or the record just after a removed one, or the
    first one out of place. Removing records at the *end* leaves a valid shorter chain:
    compare the final heads with a signed ``Checkpoint`` to catch that.
    """
    head = start
    account_heads = dict(account_starts or {})
    if account_id is not None:
        account_heads.setdefault(account_id, start)
    checked = 0
    last = 0

    def walked(position: int, scope: str | None, reason: str) -> ChainWalk:
        return ChainWalk(
            checked, last, head, dict(account_heads), ChainBreak(position, scope, reason)
        )

    for stored in records:
        position = _position_of(stored)
        if position is None:
            return walked(last + 1, account_id, "a record without a positive integer position")
        if position <= last:
            return walked(position, account_id, f"position {position} does not follow {last}")
        accounts = _accounts_of(stored)
        if accounts is None:
            return walked(position, account_id, "the record's accounts are not a list of ids")
        body = record_body(stored)
        if account_id is not None:
            if account_id not in accounts:
                return walked(position, account_id, f"the record does not concern {account_id}")
            expected = chain_hash(account_heads[account_id], body)
            if stored.get("hash") != expected:
                return walked(position, account_id, "the stored hash is not the recomputed one")
            account_heads[account_id] = head = expected
        else:
            expected = chain_hash(head, body)
            if stored.get("hash") != expected:
                return walked(position, None, "the stored hash is not the recomputed one")
            stored_account_hashes = stored.get("account_hashes")
            next_heads = {
                account: chain_hash(account_heads.get(account, GENESIS), body)
                for account in accounts
            }
            if stored_account_hashes is not None:
                for account in sorted(next_heads):
                    if not isinstance(stored_account_hashes, Mapping) or (
                        stored_account_hashes.get(account) != next_heads[account]
                    ):
                        return walked(
                            position, account, "the stored account hash is not the recomputed one"
                        )
            head = expected
            account_heads.update(next_heads)
        checked += 1
        last = position
    return ChainWalk(checked, last, head, account_heads)


def verify_chain(
    records: Iterable[Mapping[str, Any]], *, account_id: str | None = None
) -> int | None:
    """The position of the first record whose stored hash disagrees, or ``None``.

    ``walk_chain`` from ``GENESIS``, keeping only the position (see there for the record
    shape and exactly which record is named).
    """
    first_break = walk_chain(records, account_id=account_id).first_break
    return None if first_break is None else first_break.position


# -- checkpoints --------------------------------------------------------------------------------


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def checkpoint_payload(
    position: int,
    time: str,
    global_head: str,
    account_heads: Mapping[str, str],
    key_id: str,
) -> bytes:
    """The signed bytes: canonical JSON of every checkpoint field but the signature."""
    return canonical_json(
        {
            "position": position,
            "time": time,
            "global_head": global_head,
            "account_heads": dict(account_heads),
            "key_id": key_id,
        }
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Signed heads of the chains after ``position`` (``time``: its ledger time, RFC 3339).

    ``account_heads`` is kept sorted by account id. Export with ``as_dict()`` (JSON-ready),
    read back with ``from_dict()``; check with ``verify_checkpoint``.
    """

    position: int
    time: str
    global_head: str
    account_heads: dict[str, str]
    key_id: str
    signature: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_heads", dict(sorted(self.account_heads.items())))

    def payload(self) -> bytes:
        return checkpoint_payload(
            self.position, self.time, self.global_head, self.account_heads, self.key_id
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "time": self.time,
            "global_head": self.global_head,
            "account_heads": dict(self.account_heads),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Read an exported checkpoint; ``ValueError`` when a field is missing or mistyped."""
        try:
            position = data["position"]
            heads = data["account_heads"]
            strings = [data[k] for k in ("time", "global_head", "key_id", "signature")]
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a checkpoint: missing {error}") from None
        if isinstance(position, bool) or not isinstance(position, int):
            raise ValueError("not a checkpoint: position must be an integer")
        if not all(isinstance(s, str) for s in strings):
            raise ValueError("not a checkpoint: time, heads, key id and signature are strings")
        if not isinstance(heads, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in heads.items()
        ):
            raise ValueError("not a checkpoint: account_heads maps account ids to hashes")
        time, global_head, key_id, signature = strings
        return cls(position, time, global_head, dict(heads), key_id, signature)


def sign_checkpoint(
    private_key: Ed25519PrivateKey,
    position: int,
    time: str,
    global_head: str,
    account_heads: Mapping[str, str],
) -> Checkpoint:
    """Sign the heads after ``position`` (every head: 64 lowercase hex digits)."""
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise ValueError("position must be a non-negative integer")
    for head in (global_head, *account_heads.values()):
        if not isinstance(head, str) or not _HEX64.match(head):
            raise ValueError(f"{head!r} is not a chain hash (64 lowercase hex digits)")
    key_id = key_id_of(private_key.public_key())
    heads = dict(sorted(account_heads.items()))
    signature = private_key.sign(checkpoint_payload(position, time, global_head, heads, key_id))
    return Checkpoint(
        position, time, global_head, heads, key_id, base64.b64encode(signature).decode("ascii")
    )


def verify_checkpoint(public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    """Whether ``checkpoint`` was signed, exactly as it is, by ``public_key``'s private key."""
    if checkpoint.key_id != key_id_of(public_key):
        return False
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        public_key.verify(signature, checkpoint.payload())
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


# -- keys ---------------------------------------------------------------------------------------


class SigningKeyError(ValueError):
    """The key file or PEM does not hold a usable Ed25519 key."""


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path`` (unencrypted PEM, PKCS#8)."""
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"{path} does not hold an unencrypted PEM private key") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``, generated first if the file does not exist (development).

    A new key is written as PEM PKCS#8 with mode 0600 (its directory is created with 0700
    if missing) and appears under ``path`` only once complete (a hard link from a
    temporary file), so a concurrent process reads either no file or the whole key; when two
    processes race, both end up with the key that was linked first.
    """
    if path.exists():
        return load_signing_key(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(descriptor, 0o600)  # whatever the umask
            os.write(descriptor, pem)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return load_signing_key(path)  # another process created it first
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The public key as PEM (SubjectPublicKeyInfo), for publishing to verifiers."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo); ``SigningKeyError`` otherwise."""
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise SigningKeyError("not a PEM public key") from error
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"a {type(key).__name__}, not an Ed25519 public key")
    return key
