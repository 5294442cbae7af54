"""STS commands: AssumeRole records a ``Session`` (its secret hashed and sealed); revoke one.

The checks and the plan of the session are the pure rules of ``domain.sts.assume_role``;
the role's facts come through the read port, since the caller may be of another account.
The read port is this process's index, which may not have applied the latest revocation:
so what can end the new session — the contract and delegations of a managed role, the
parent sessions of a chained one — *fences* the save: it commits only if none of those
aggregates has moved since the version the decision relied on (``domain.ledger.fences``).
The index's versions are fenced first, with no read; if one moved, the links are read
from the log, the session refused if one is dead, and saved fenced on what the log said.
No ``SessionIssued`` can then follow the revocation of a link of its lineage in the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from mandate.domain.common.arns import PrincipalKind, assumed_role_arn
from mandate.domain.common.errors import FieldError, InvalidInput, NotFound, NotPermitted
from mandate.domain.contracts.entrustments import Delegation, Entrustment
from mandate.domain.identity.principals import User
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.fences import Fence, FenceBroken
from mandate.domain.ledger.results import IssuedSession, Written
from mandate.domain.sts.assume_role import (
    AssumingCaller,
    SessionPlan,
    check_parameters,
    plan_session,
)
from mandate.domain.sts.sessions import Session, session_aggregate_id

__all__ = ["StsCommands"]


class StsCommands(LedgerCore):
    """Sessions: AssumeRole and revoking one session."""

    @command
    def assume_role(
        self,
        caller: AssumingCaller,
        *,
        role_arn: object,
        role_session_name: object,
        duration_seconds: object = None,
        policy: object = None,
        external_id: object = None,
        context: Mapping[str, object] | None = None,
    ) -> IssuedSession:
        """STS AssumeRole: check, then record ``SessionIssued`` (the secret hashed and sealed)."""
        if self.token_signer is None:
            raise RuntimeError("this ledger was made without a session token signer")
        arn, name, duration, policy_text = check_parameters(
            role_arn, role_session_name, duration_seconds, policy
        )
        if external_id is not None and (
            not isinstance(external_id, str) or not 2 <= len(external_id) <= 1224
        ):
            raise InvalidInput(
                FieldError("external_id", "must be 2 to 1224 characters"),
                code="InvalidParameter.ExternalId",
            )
        decision_context = {k.lower(): v for k, v in (context or {}).items()}
        if external_id is not None:
            decision_context["sts:externalid"] = external_id
        target = arn.rsplit("/", 1)
        role_account = target[0].split(":")[3]
        plan = plan_session(
            caller,
            self.read_port.role_facts(role_account, target[1]),
            role_arn_text=arn,
            role_session_name=name,
            duration_seconds=duration,
            session_policy=policy_text,
            context=decision_context,
            now=datetime.now(UTC),
        )
        role = plan.role
        assert role is not None
        # What the index vouches for is fenced as the index saw it (no read); a link that
        # moved since breaks the fence, and the links are then read from the log.
        fences = self._fences_seen(plan)
        for from_log in (fences is None, True):
            if from_log:
                fences = self._fences_read(plan)
            assert fences is not None
            key_id, secret, secret_hash, sealed = self._issue_key("STS.")
            session = Session(
                access_key_id=key_id,
                secret_hash=secret_hash,
                account_id=role.account_id,
                role_id=role.role_id,
                role_name=role.role_name,
                role_session_name=plan.role_session_name,
                source_arn=caller.subject.arn,
                source_account_id=caller.subject.account_id,
                source_user_id=caller.source_user_id,
                parent_access_key_id=caller.parent.access_key_id if caller.parent else None,
                session_policy=plan.session_policy,
                issued_at=plan.issued_at,
                expiration=plan.expiration,
                secret_sealed=sealed,
            )
            try:
                position = self._commit(session, fences=fences)
                break
            except FenceBroken:
                if from_log:
                    raise  # moved again since this very read: ``@command`` decides again
        return IssuedSession(
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=self.token_signer.issue(key_id, plan.expiration),
            expiration=plan.expiration,
            arn=assumed_role_arn(role.account_id, role.role_name, name),
            assumed_role_id=f"{role.role_id}:{name}",
            position=position,
        )

    @staticmethod
    def _fences_seen(plan: SessionPlan) -> tuple[Fence, ...] | None:
        """The fences of the planned session as the index saw its links, or None when the
        index cannot vouch for them (a chained session: its ancestors are read from the log).

        ``plan_session`` checked the entrustment and the delegations reaching the caller at
        these versions (a live delegation has only its grant, version 1); if none of them
        has moved when the session is saved, that check is the log's too. Nothing is read.
        """
        if plan.caller.parent is not None:
            return None
        terms = plan.role.entrustment
        if terms is None:
            return ()  # an ordinary role assumed by a user: no revocable link to fence
        user_id = plan.caller.source_user_id
        reaching = terms.delegations_reaching.get(user_id, ()) if user_id else ()
        if terms.version is None or not terms.through_groups.isdisjoint(reaching):
            return None  # a membership lives on the user, whose version the index does not keep
        return (Fence(terms.entrustment_id, terms.version), *(Fence(d, 1) for d in reaching))

    def _fences_read(self, plan: SessionPlan) -> tuple[Fence, ...]:
        """What can end the planned session, read from the log (not the index): refused if
        already dead, else the fences of its save.

        A managed role: its entrustment, and the live delegations reaching the caller (the
        index says which reach it; the log says whether each still lives, and, for one to a
        group, whether the user is still in it: the user is fenced then too). A chained
        session: each ancestor session, and the entrustment of each ancestor's role that is
        managed. The refusals are ``plan_session``'s, words and all; only a process whose
        index lags ever meets them here.
        """
        now = plan.issued_at
        role, caller = plan.role, plan.caller
        fenced: list[Aggregate] = []
        terms = role.entrustment
        if terms is not None:
            fenced.append(self._live_entrustment(terms.entrustment_id, role.arn, now))
            user_id = caller.source_user_id
            reaching = terms.delegations_reaching.get(user_id, ()) if user_id else ()
            live = [d for d in map(self._delegation, reaching) if d is not None and d.live(now)]
            if any(d.grantee_kind is PrincipalKind.GROUP for d in live):
                # reached through a group: only while the user is still in it
                user = self._aggregate(user_id) if user_id else None
                member = isinstance(user, User) and not user.deleted
                live = [
                    d
                    for d in live
                    if d.grantee_kind is PrincipalKind.USER
                    or (member and isinstance(user, User) and d.grantee_id in user.groups)
                ]
                if member and isinstance(user, User):
                    fenced.append(user)
            if not live:
                raise NotPermitted(
                    f"cannot assume {role.arn}: no live delegation of {terms.arn} reaches "
                    f"{caller.subject.arn} (only the trustee's delegated users may assume it)"
                )
            fenced += live
        parent = caller.parent.access_key_id if caller.parent is not None else None
        while parent is not None:
            try:
                session = self._get(session_aggregate_id(parent), Session)
            except NotFound:
                raise NotPermitted(
                    f"cannot assume {role.arn}: session {parent} is unknown"
                ) from None
            if session.revoked:
                raise NotPermitted(f"cannot assume {role.arn}: the session {parent} was revoked")
            fenced.append(session)
            holder = self._aggregate(session.role_id)
            if isinstance(holder, Entrustment):
                fenced.append(self._live_entrustment(holder.id, role.arn, now))
            parent = session.parent_access_key_id
        return tuple(Fence(a.id, a.version) for a in fenced)

    def _live_entrustment(self, entrustment_id: UUID, role_arn: str, now: datetime) -> Entrustment:
        entrustment = self._get(entrustment_id, Entrustment)
        dead = entrustment.dead_reason(now)
        if dead is not None:
            raise NotPermitted(f"cannot assume {role_arn}: {dead}")
        return entrustment

    def _delegation(self, delegation_id: UUID) -> Delegation | None:
        found = self._aggregate(delegation_id)
        return found if isinstance(found, Delegation) else None

    def _aggregate(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            found: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found

    @command
    def revoke_session(self, access_key_id: str) -> Written:
        """End one session now; revoking an ended session again records nothing."""
        try:
            session = self._get(session_aggregate_id(access_key_id), Session)
            session.revoke()
        except NotFound:
            raise NotFound(
                f"session {access_key_id} does not exist", code="EntityNotExist.Session"
            ) from None
        return Written(self._commit(session))
