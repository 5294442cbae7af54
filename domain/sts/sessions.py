"""STS sessions: temporary credentials issued by AssumeRole, and their revocation.

A session is named by its ``access_key_id`` (``STS.…``), so its aggregate id is derived from
it (``uuid5``) and a revocation finds it without an index. ``SessionIssued`` records what
every later decision needs — the role (by id: a role re-created under the same name is a
different role), the source principal at the root of the lineage, the parent session when
the caller was itself a session, the session policy, the issue and expiry instants — and the
secret as a keyed hash and sealed (``secret_sealed``: ciphertext bound to the AccessKeyId,
opened only by the keyring to verify a request signature; None in sessions issued before).
Nothing is rewritten when a link of the lineage dies: whether a session is alive is decided
where it is used, from the facts of each link at that instant.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import event

from mandate.domain.common.audit import LedgerAggregate

__all__ = ["Session", "session_aggregate_id"]

_NAMESPACE = UUID("0b8f3c4e-5a43-4a4f-8d0c-2f7a9d1e6c55")


def session_aggregate_id(access_key_id: str) -> UUID:
    return uuid5(_NAMESPACE, f"session/{access_key_id}")


class Session(LedgerAggregate):
    TOPIC = "mandate:Session.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:Session.Event.v1"

    @classmethod
    def create_id(cls, access_key_id: str, **_: object) -> UUID:
        return session_aggregate_id(access_key_id)

    class SessionIssued(LedgerAggregate.Created, Event):
        TOPIC = "mandate:SessionIssued.v1"
        access_key_id: str
        secret_hash: str
        account_id: str
        role_id: UUID
        role_name: str
        role_session_name: str
        source_arn: str
        source_account_id: str
        source_user_id: UUID | None
        parent_access_key_id: str | None
        session_policy: str | None
        issued_at: datetime
        expiration: datetime
        secret_sealed: str | None = None

    @event(SessionIssued)
    def __init__(
        self,
        access_key_id: str,
        secret_hash: str,
        account_id: str,
        role_id: UUID,
        role_name: str,
        role_session_name: str,
        source_arn: str,
        source_account_id: str,
        source_user_id: UUID | None,
        parent_access_key_id: str | None,
        session_policy: str | None,
        issued_at: datetime,
        expiration: datetime,
        secret_sealed: str | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_hash = secret_hash
        self.account_id = account_id
        self.role_id = role_id
        self.role_name = role_name
        self.role_session_name = role_session_name
        self.source_arn = source_arn
        self.source_account_id = source_account_id
        self.source_user_id = source_user_id
        self.parent_access_key_id = parent_access_key_id
        self.session_policy = session_policy
        self.issued_at = issued_at
        self.expiration = expiration
        self.secret_sealed = secret_sealed
        self.revoked = False

    def revoke(self) -> None:
        """End the session now (idempotent: a second revocation records nothing)."""
        if not self.revoked:
            self._revoked()

    class SessionRevoked(Event):
        TOPIC = "mandate:SessionRevoked.v1"

    @event(SessionRevoked)
    def _revoked(self) -> None:
        self.revoked = True
