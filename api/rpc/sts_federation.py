"""STS 2015-04-01 over RPC: AssumeRoleWithOIDC, anonymous as on STS (the token is the credential).

The same exchange as ``POST /v1/sts/assume-role-with-oidc`` (``api.oidc_exchange``: the
ledger's ``assume_role_with_oidc``, throttled and logged like a failed authentication); what
differs is the dialect. Parameters are ``OIDCProviderArn``, ``RoleArn``, ``OIDCToken``,
``RoleSessionName``, ``DurationSeconds``, ``Policy``; the answer is ``Credentials``,
``AssumedRoleUser`` and ``OIDCTokenInfo`` (``Subject``, ``Issuer``, ``ClientIds`` comma
separated, ``IssuanceTime``, ``ExpirationTime``) as alibabacloud-sts20150401 reads it. A
refused token is STS's 401 with its code (``AuthenticationFail.OIDCToken.Expired`` …).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mandate.api.oidc_exchange import exchange_token
from mandate.api.problems import Unauthenticated
from mandate.api.rpc.answers import issued_credentials, rpc_time
from mandate.api.rpc.errors import RpcError
from mandate.api.rpc.params import RpcInt, RpcParams
from mandate.api.rpc.registry import STS, RpcContext, rpc_action

__all__: list[str] = []


class AssumeRoleWithOIDCParams(RpcParams):
    oidc_provider_arn: str = Field(alias="OIDCProviderArn")
    role_arn: str
    oidc_token: str = Field(alias="OIDCToken")
    role_session_name: str
    duration_seconds: RpcInt | None = None
    policy: str | None = None


@rpc_action("AssumeRoleWithOIDC", STS, AssumeRoleWithOIDCParams, anonymous=True)
def assume_role_with_oidc(ctx: RpcContext, p: AssumeRoleWithOIDCParams) -> dict[str, Any]:
    caller = ctx.caller
    try:
        federated = exchange_token(
            ctx.runtime,
            surface="rpc",
            source_ip=caller.source_ip,
            secure=caller.secure_transport,
            request_id=ctx.request_id,
            oidc_provider_arn=p.oidc_provider_arn,
            role_arn=p.role_arn,
            oidc_token=p.oidc_token,
            role_session_name=p.role_session_name,
            duration_seconds=p.duration_seconds,
            policy=p.policy,
        )
    except Unauthenticated as refused:
        raise RpcError(401, refused.code or "AuthenticationFail", refused.reason) from None
    issued, token = federated.issued, federated.token
    return {
        **issued_credentials(issued),
        "OIDCTokenInfo": {
            "Subject": token.subject,
            "Issuer": token.issuer,
            "ClientIds": ",".join(token.audience),
            "IssuanceTime": rpc_time(token.issued_at),
            "ExpirationTime": rpc_time(token.expires_at),
        },
    }
