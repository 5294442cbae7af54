"""Hash chains over audit records and Ed25519-signed checkpoints of their heads (docs/design.md §4).

Pure functions and values; the only I/O is reading and creating the signing key file.

Canonical JSON
    ``canonical_json(obj)``: ``json.dumps`` with sorted keys, separators ``(",", ":")``,
    ``ensure_ascii=False`` and no NaN or infinities, encoded as UTF-8. Records are the
    ``AuditRecord.as_dict()`` of ``projections.audit.records``.

Chains
    ``GENESIS`` is 64 zeros. With ``h_0 = GENESIS``::

        h_n = hex(SHA-256(bytes.fromhex(h_{n-1}) ‖ canonical_json(record_n)))

    i.e. the 32 raw bytes of the previous hash, then the canonical JSON bytes of the record,
    hashed once; lowercase hex. The **global** chain runs over every record in position
    order; an **account** chain runs, the same way from ``GENESIS``, over the records whose
    ``accounts`` list that account, so a tenant can verify its own export alone. A record
    naming two accounts is in both accounts' chains.

Checkpoints
    A ``SignedCheckpoint`` signs, with an Ed25519 key kept outside the database, the head of
    ONE chain after ``position``: ``{scope, position, head, time, key_id}`` (``scope`` is
    ``*`` for the global chain, else the account id), canonical JSON, signed whole. One
    signature per chain, so a tenant verifying its own export learns nothing of the others.
    ``key_id`` is the first 16 hex digits of the SHA-256 of the raw 32-byte public key;
    ``signature`` is the standard base64 of the 64-byte signature.

Verifying a trail is ``projections.audit.verify``'s: it compares the records with the log,
re-hashes the chain and checks the checkpoints.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
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
    "GENESIS",
    "CheckpointSigner",
    "SignedCheckpoint",
    "SigningKeyError",
    "canonical_json",
    "canonical_text",
    "chain_hash",
    "chain_hash_of_canonical",
    "key_id_of",
    "load_or_create_signing_key",
    "load_public_key",
    "load_signing_key",
    "public_key_pem",
]

GENESIS: Final = "0" * 64
"""The hash every chain starts from."""

_HEX64: Final = re.compile(r"\A[0-9a-f]{64}\Z")


# -- canonical form and chain hashes ------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces, UTF-8 (not ASCII-escaped), no NaN."""
    return _CANONICAL.encode(obj).encode("utf-8")


def canonical_text(obj: Any) -> str:
    """``canonical_json(obj)`` before its UTF-8 encoding (what the trail stores as text)."""
    return _CANONICAL.encode(obj)


# What ``json.dumps`` builds on every call with these options, built once.
_CANONICAL: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def chain_hash(previous_hex: str, record: Mapping[str, Any]) -> str:
    """``hex(SHA-256(bytes.fromhex(previous_hex) ‖ canonical_json(record)))``.

    ``previous_hex`` must be 64 lowercase hex digits (``GENESIS`` for the first record).
    """
    return chain_hash_of_canonical(previous_hex, canonical_json(dict(record)))


def chain_hash_of_canonical(previous_hex: str, canonical: bytes) -> str:
    """``chain_hash`` of a record already in canonical JSON (encode once, hash in two chains)."""
    if not isinstance(previous_hex, str) or not _HEX64.match(previous_hex):
        raise ValueError("the previous hash must be 64 lowercase hex digits")
    digest = hashlib.sha256(bytes.fromhex(previous_hex))
    digest.update(canonical)
    return digest.hexdigest()


# -- checkpoints --------------------------------------------------------------------------------


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A signed head of ONE chain: ``scope`` is ``*`` for the global chain, else an account.

    One signature per chain, so an account's checkpoints reveal nothing of other accounts.
    The signed bytes are the canonical JSON of every field but ``signature``.
    """

    scope: str
    position: int
    head: str
    time: str
    key_id: str
    signature: str

    def payload(self) -> bytes:
        return canonical_json(
            {
                "scope": self.scope,
                "position": self.position,
                "head": self.head,
                "time": self.time,
                "key_id": self.key_id,
            }
        )

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """The signature is valid for this key, and the checkpoint names this key."""
        if self.key_id != key_id_of(public_key):
            return False
        try:
            public_key.verify(base64.b64decode(self.signature, validate=True), self.payload())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "position": self.position,
            "head": self.head,
            "time": self.time,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedCheckpoint:
        return cls(
            str(data["scope"]),
            int(data["position"]),
            str(data["head"]),
            str(data["time"]),
            str(data["key_id"]),
            str(data["signature"]),
        )


class CheckpointSigner:
    """Signs chain heads with the Ed25519 key that never enters the database."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)

    def sign(self, scope: str, position: int, head: str, time: str) -> SignedCheckpoint:
        unsigned = SignedCheckpoint(scope, position, head, time, self.key_id, "")
        signature = base64.b64encode(self._key.sign(unsigned.payload())).decode()
        return SignedCheckpoint(scope, position, head, time, self.key_id, signature)


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
