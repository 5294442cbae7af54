"""Secrets sealed for storage: AES-256-GCM under a data key, data keys wrapped by a
key-encryption key (envelope encryption).

Verifying an HMAC request signature needs the caller's secret itself, which a keyed hash
(``secrets.py``) cannot give back; so AccessKey and session secrets are also *sealed*. What is
stored beside the secret's owner is ``v1$<data key id>$<base64url(nonce | ciphertext | tag)>``:
a random 96-bit nonce per seal, and associated data binding the sealed value to its data key id
and to what it protects (an AccessKeyId), so a sealed value copied onto another AccessKey or
relabelled with another key id does not open.

A data key (DEK) is 256 random bits, itself stored only *wrapped* — AES-256-GCM under a
key-encryption key (KEK), with associated data naming both key ids — in a small mutable table;
the KEK stays outside the database and the log. Events can then hold sealed secrets for ever
while the KEK rotates: rotation re-wraps the few DEKs, never an event.

Nothing here formats a key, a secret or a ciphertext into an exception, a ``repr`` or a
pickle: ``SealRefused`` says what failed in words, and both key classes refuse to be pickled.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from typing import Final, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KEY_BYTES",
    "SEAL_VERSION",
    "DataKey",
    "KeyEncryptionKey",
    "SealRefused",
    "sealed_key_id",
]

SEAL_VERSION: Final = "v1"
KEY_BYTES: Final = 32
"""AES-256, for data keys and key-encryption keys alike."""
NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_KEY_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_SEAL_LABEL: Final = b"mandate sealed secret v1|"
_WRAP_LABEL: Final = b"mandate data key v1|"
_KEK_INFO: Final = b"mandate key-encryption key v1"


class SealRefused(Exception):
    """A sealed secret or a wrapped key does not open (or is malformed); the message says
    which key id and why in words — never the secret, a key or the ciphertext."""


def _refuse_pickle(obj: object) -> NoReturn:
    raise TypeError(f"a {type(obj).__name__} is never pickled (it holds a key)")


def _cipher(kind: str, key_id: str, material: bytes) -> AESGCM:
    """A key's AES-256-GCM, once its id and length are checked (the messages name the kind,
    never the material)."""
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"a {kind} id is 1-32 letters, digits, '_' or '-'")
    if len(material) != KEY_BYTES:
        raise ValueError(f"a {kind} is {KEY_BYTES} bytes")
    return AESGCM(material)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    """Only the one canonical spelling: a last character differing in bits that decode to
    nothing would otherwise open too (the same bytes under another text)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealRefused("not base64url") from None
    if _encode(raw) != text:
        raise SealRefused("not canonical base64url")
    return raw


def sealed_key_id(sealed: str) -> str:
    """The data key id a sealed secret names (``d1`` of ``v1$d1$…``); refuses any other form."""
    version, _, rest = sealed.partition("$")
    key_id, _, body = rest.partition("$")
    if version != SEAL_VERSION or not body or not _KEY_ID.fullmatch(key_id):
        raise SealRefused(f"not a sealed secret of version {SEAL_VERSION}")
    return key_id


@dataclass(frozen=True, slots=True)
class DataKey:
    """One data key: seals and unseals secrets. Its material never leaves this object except
    through ``KeyEncryptionKey.wrap``."""

    id: str
    material: bytes = field(repr=False)
    _cipher: AESGCM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cipher", _cipher("data key", self.id, self.material))

    @classmethod
    def generate(cls, key_id: str) -> DataKey:
        return cls(key_id, AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    def _associated(self, bound_to: str) -> bytes:
        return _SEAL_LABEL + self.id.encode() + b"|" + bound_to.encode()

    def seal(self, secret: str, *, bound_to: str) -> str:
        """``secret`` sealed under this key, opening only for the same ``bound_to``."""
        nonce = os.urandom(NONCE_BYTES)
        body = self._cipher.encrypt(nonce, secret.encode(), self._associated(bound_to))
        return f"{SEAL_VERSION}${self.id}${_encode(nonce + body)}"

    def unseal(self, sealed: str, *, bound_to: str) -> str:
        """The secret ``seal`` was given; ``SealRefused`` if altered, bound to something else,
        or sealed under another key."""
        if sealed_key_id(sealed) != self.id:
            raise SealRefused(f"sealed under another data key than {self.id}")
        raw = _decode(sealed.rsplit("$", 1)[1])
        if len(raw) < NONCE_BYTES + _TAG_BYTES:
            raise SealRefused(f"a sealed secret under data key {self.id} is truncated")
        try:
            clear = self._cipher.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._associated(bound_to)
            )
        except InvalidTag:
            raise SealRefused(
                f"a sealed secret does not open under data key {self.id} (altered, bound to "
                "something else, or sealed under another key)"
            ) from None
        return clear.decode()

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        _refuse_pickle(self)


@dataclass(frozen=True, slots=True)
class KeyEncryptionKey:
    """A key-encryption key: wraps and unwraps data keys. ``source`` says where it was
    configured (a setting's name or a file), for refusals to name — never the key."""

    id: str
    material: bytes = field(repr=False)
    source: str
    _cipher: AESGCM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cipher", _cipher("key-encryption key", self.id, self.material))

    @classmethod
    def derive(cls, key_id: str, configured: str, *, source: str) -> KeyEncryptionKey:
        """The AES-256 key from a configured string (any ≥ 32 characters, e.g. ``openssl
        rand -base64 48``) by HKDF-SHA256: operators keep strings, as for the other keys."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_KEK_INFO)
        return cls(key_id, hkdf.derive(configured.encode()), source)

    def _associated(self, data_key_id: str) -> bytes:
        return _WRAP_LABEL + data_key_id.encode() + b"|" + self.id.encode()

    def wrap(self, key: DataKey) -> str:
        """``key`` wrapped under this KEK (base64url of nonce | ciphertext | tag), bound to
        both ids: a wrapped key moved onto another row or KEK id does not unwrap."""
        nonce = os.urandom(NONCE_BYTES)
        body = self._cipher.encrypt(nonce, key.material, self._associated(key.id))
        return _encode(nonce + body)

    def unwrap(self, data_key_id: str, wrapped: str) -> DataKey:
        raw = _decode(wrapped)
        try:
            material = self._cipher.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._associated(data_key_id)
            )
        except (InvalidTag, ValueError):
            raise SealRefused(
                f"{self.source} (key id {self.id}) is not the key that wrapped the store's "
                f"data key {data_key_id} (its AES-GCM check fails): start with the original key"
            ) from None
        return DataKey(data_key_id, material)

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        _refuse_pickle(self)
