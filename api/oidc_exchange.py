"""AssumeRoleWithOIDC for both dialects (``POST /v1/sts/assume-role-with-oidc`` and the RPC
action): anonymous, as on STS — the ID token is the credential (``domain.ledger.federation``).

So it is guarded like an authentication: an address over its failure limit is 429 before
anything is checked, and a token that authenticates no one counts against the address, goes
to the security log under the provider's account (only why it was refused, never the
token) and is answered 401 with STS's code (``Unauthenticated``), or 429 past the limit.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mandate.api.abuse import admit_attempt, authentication_failed
from mandate.api.problems import Unauthenticated
from mandate.api.runtime import Runtime
from mandate.domain.common.audit import AuditContext
from mandate.domain.common.errors import NotPermitted
from mandate.domain.ledger.federation import FederatedSession
from mandate.domain.sts.oidc_providers import parse_oidc_provider_arn

__all__ = ["exchange_token"]


def exchange_token(
    runtime: Runtime,
    *,
    surface: str,
    source_ip: str | None,
    secure: bool,
    request_id: str,
    oidc_provider_arn: object,
    role_arn: object,
    oidc_token: object,
    role_session_name: object,
    duration_seconds: object,
    policy: object,
) -> FederatedSession:
    """AssumeRoleWithOIDC for both dialects: throttled, logged and answered 401 when the
    token authenticates no one (``Unauthenticated`` with STS's code, or ``Throttled``)."""
    admit_attempt(runtime, source_ip)
    named = parse_oidc_provider_arn(oidc_provider_arn)
    actor = oidc_provider_arn if named is not None and isinstance(oidc_provider_arn, str) else None
    audit = AuditContext(
        actor=actor or "anonymous:oidc", request_id=request_id, source_ip=source_ip
    )
    context: dict[str, object] = {
        "acs:currenttime": datetime.now(UTC),
        "acs:securetransport": secure,
        "acs:mfapresent": False,
    }
    if source_ip is not None:
        context["acs:sourceip"] = source_ip
    try:
        return runtime.write(
            audit,
            lambda: runtime.ledger.assume_role_with_oidc(
                oidc_provider_arn=oidc_provider_arn,
                role_arn=role_arn,
                oidc_token=oidc_token,
                role_session_name=role_session_name,
                duration_seconds=duration_seconds,
                policy=policy,
                context=context,
            ),
        )
    except NotPermitted as refused:
        provider_known = refused.code != "AuthenticationFail.NoPermission"
        throttled = authentication_failed(
            runtime,
            surface=surface,
            source_ip=source_ip,
            key_id=None,
            reason=refused.detail,
            code=refused.code,
            action="sts:AssumeRoleWithOIDC",
            request_id=request_id,
            # the provider's account sees refusals of its tokens (not of unknown providers)
            account_id=named[0] if named is not None and provider_known else None,
        )
        if throttled is not None:
            raise throttled from None
        raise Unauthenticated(refused.detail, code=refused.code) from None
