"""The process's secrets: the hashing keys, the STS token keys, the audit signing key, the admin
token — from the settings in production, else generated once beside the database.

Generated development secrets are kept in the state directory (mode 0600), never in the log.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mandate.api.outages import StoreUnavailable
from mandate.api.settings import Settings
from mandate.domain.identity.secrets import SecretHasher, new_token
from mandate.domain.sts.session_tokens import SessionTokenSigner
from mandate.projections.audit.chain import (
    SigningKeyError,
    load_or_create_signing_key,
    load_signing_key,
)

__all__ = [
    "ADMIN_TOKEN_FILE",
    "AUDIT_KEY_FILE",
    "KEYS_FILE",
    "TOKEN_KEY_FILE",
    "AdminToken",
    "key_locations",
    "load_admin_token",
    "load_audit_signing_key",
    "load_hasher",
    "load_token_signer",
    "write_private",
]

KEYS_FILE = "mandate.keys"
AUDIT_KEY_FILE = "mandate.audit-signing-key.pem"
TOKEN_KEY_FILE = "mandate.token-signing-keys"  # noqa: S105 (a file name, not a secret)
ADMIN_TOKEN_FILE = "mandate.admin-token"  # noqa: S105 (a file name, not a secret)


@dataclass(frozen=True)
class AdminToken:
    """The admin token as a hash; ``issued`` holds the clear token only on first start."""

    token_hash: str
    issued: str | None


def write_private(path: Path, text: str) -> None:
    """Write a generated key file readable by its owner only (created 0600, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _generated_keys(path: Path, first_id: str) -> tuple[str, dict[str, bytes]]:
    """The current key id and the keys of a development key file (``{"current", "keys"}``),
    created the first time with one random key ``first_id``."""
    if path.exists():
        stored = json.loads(path.read_text())
    else:
        stored = {"current": first_id, "keys": {first_id: secrets.token_hex(32)}}
        write_private(path, json.dumps(stored))
    return stored["current"], {kid: key.encode() for kid, key in stored["keys"].items()}


def load_hasher(settings: Settings) -> SecretHasher:
    """The secret hashing keys: from the settings, or generated beside the database."""
    if settings.hash_key:
        return SecretHasher(
            settings.hash_key_id, {settings.hash_key_id: settings.hash_key.encode()}
        )
    return SecretHasher(*_generated_keys(settings.resolved_state_dir / KEYS_FILE, "k1"))


def load_token_signer(settings: Settings) -> SessionTokenSigner:
    """The STS token signing keys: from the settings, or generated beside the database."""
    if settings.token_signing_key:
        key_id = settings.token_signing_key_id
        return SessionTokenSigner(key_id, {key_id: settings.token_signing_key.encode()})
    return SessionTokenSigner(*_generated_keys(settings.resolved_state_dir / TOKEN_KEY_FILE, "t1"))


def load_audit_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The checkpoint signing key: a file outside the database, generated in development."""
    try:
        if settings.audit_signing_key_file is not None:
            return load_signing_key(settings.audit_signing_key_file)
        return load_or_create_signing_key(settings.resolved_state_dir / AUDIT_KEY_FILE)
    except (OSError, SigningKeyError) as error:
        raise StoreUnavailable(f"the audit signing key cannot be loaded: {error}") from error


def load_admin_token(settings: Settings, hasher: SecretHasher) -> AdminToken:
    if settings.admin_token:
        return AdminToken(hasher.hash(settings.admin_token), None)
    path = settings.resolved_state_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return AdminToken(path.read_text().strip(), None)
    token = new_token()
    token_hash = hasher.hash(token)
    write_private(path, token_hash + "\n")
    return AdminToken(token_hash, token)


def key_locations(settings: Settings) -> dict[str, str]:
    """Where each key comes from (a setting's name or a file), for the fingerprint check's
    refusal to name — never the key itself."""
    state = settings.resolved_state_dir
    return {
        "hash_key": "MANDATE_HASH_KEY" if settings.hash_key else str(state / KEYS_FILE),
        "token_signing_key": "MANDATE_TOKEN_SIGNING_KEY"
        if settings.token_signing_key
        else str(state / TOKEN_KEY_FILE),
        "audit_signing_key": "MANDATE_AUDIT_SIGNING_KEY_FILE"
        if settings.audit_signing_key_file
        else str(state / AUDIT_KEY_FILE),
    }
