"""Deterministic aggregate ids for things looked up by a natural key.

An account is found by its 16-digit id and a name claim by (account, kind, name), so both
get ``uuid5`` ids; every other entity gets a random id, so that a re-created name is a new
entity and nothing of the old one can revive.
"""

from __future__ import annotations

import secrets
from uuid import UUID, uuid5

__all__ = ["account_aggregate_id", "name_claim_id", "new_account_id"]

_NAMESPACE = UUID("6f0c2c52-41c4-4a53-9a5e-6a2d8f1f3b11")


def account_aggregate_id(account_id: str) -> UUID:
    return uuid5(_NAMESPACE, f"account/{account_id}")


def name_claim_id(account_id: str, kind: str, name: str) -> UUID:
    return uuid5(_NAMESPACE, f"name/{account_id}/{kind}/{name}")


def new_account_id() -> str:
    """Sixteen digits, never starting with 0 (as Alibaba's account ids)."""
    return str(secrets.randbelow(9 * 10**15) + 10**15)
