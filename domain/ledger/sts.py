"""STS commands: AssumeRole records a ``Session`` (its secret hashed and sealed); revoke one.

The checks and the plan of the session are the pure rules of ``domain.sts.assume_role``;
the role's facts come through the read port, since the caller may be of another account.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from mandate.domain.common.arns import assumed_role_arn
from mandate.domain.common.errors import FieldError, InvalidInput, NotFound
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import IssuedSession, Written
from mandate.domain.sts.assume_role import AssumingCaller, check_parameters, plan_session
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
        position = self._commit(session)
        return IssuedSession(
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=self.token_signer.issue(key_id, plan.expiration),
            expiration=plan.expiration,
            arn=assumed_role_arn(role.account_id, role.role_name, name),
            assumed_role_id=f"{role.role_id}:{name}",
            position=position,
        )

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
