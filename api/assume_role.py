"""AssumeRole's request-to-command mapping, shared by its two dialects.

``POST /v1/sts/assume-role`` and the RPC action ``AssumeRole`` run one engine command: the
caller's lineage, the request's five parameters and the connection's ``acs:`` keys go to
``ledger.assume_role`` in one write. Each dialect keeps only its own words: how it names the
parameters on the wire, how it refuses, and how it shows the issued session.
"""

from __future__ import annotations

from typing import Protocol

from mandate.api.deps import Caller, connection_context
from mandate.api.runtime import Runtime
from mandate.domain.ledger.application import IssuedSession
from mandate.projections.decisions.credentials import Credential

__all__ = ["AssumeRoleRequest", "issue_assumed_session"]


class AssumeRoleRequest(Protocol):
    """What both dialects' parsed requests carry (the /v1 body, the RPC parameters); the
    domain checks each value and names RAM's error codes."""

    @property
    def role_arn(self) -> object: ...
    @property
    def role_session_name(self) -> object: ...
    @property
    def duration_seconds(self) -> object: ...
    @property
    def policy(self) -> object: ...
    @property
    def external_id(self) -> object: ...


def issue_assumed_session(
    caller: Caller, runtime: Runtime, credential: Credential, request: AssumeRoleRequest
) -> IssuedSession:
    """Run ``ledger.assume_role`` for the signed ``credential`` (never the platform admin's)."""
    assuming = runtime.index.assuming_caller(credential)
    issued: IssuedSession = runtime.write(
        caller.audit(),
        lambda: runtime.ledger.assume_role(
            assuming,
            role_arn=request.role_arn,
            role_session_name=request.role_session_name,
            duration_seconds=request.duration_seconds,
            policy=request.policy,
            external_id=request.external_id,
            context=connection_context(caller),
        ),
    )
    return issued
