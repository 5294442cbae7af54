"""Who signed an RPC call: ACS3-HMAC-SHA256 (V3) or HMAC-SHA1 (V1), then the index's verdict.

The order is ``mandate.api.signing``'s: parse the scheme (who claims to sign, with which token),
look the secret up (``Runtime.secret_lookup``; unknown → ``InvalidAccessKeyId.NotFound``),
check clock, signature and nonce (``ReplayGuard``, one per process), and only then ask the
index — the very ``authenticate_keys`` /v1 uses — whether the key is active, its account open,
its session token valid and unexpired. The secret is never echoed, logged or stored here.
"""

from __future__ import annotations

from starlette.requests import Request

from mandate.api.deps import STS_PREFIX, Caller, authenticate_keys, peer, unechoed
from mandate.api.middleware.request_ids import request_id_of
from mandate.api.observability.logs import CALLER_KEY
from mandate.api.rpc.errors import RpcError
from mandate.api.rpc.requests import RpcCall
from mandate.api.runtime import Runtime
from mandate.api.signing import ReplayGuard, SignedRequest, parse_acs3, parse_rpc
from mandate.api.signing.acs3 import ALGORITHM
from mandate.projections.decisions.credentials import AuthenticationFailed

__all__ = ["authenticate_call", "signed_request"]


def signed_request(call: RpcCall) -> SignedRequest:
    """The call's signature, parsed: V3 when ``Authorization`` names ACS3, else V1."""
    authorization = next((v for k, v in call.headers if k.lower() == "authorization"), "")
    if authorization.startswith(ALGORITHM + " "):
        return parse_acs3(call.method, call.path, call.query, call.headers, body=call.body)
    return parse_rpc(call.method, (*call.query, *call.form))


def authenticate_call(
    request: Request, call: RpcCall, runtime: Runtime, guard: ReplayGuard
) -> Caller:
    """The verified caller of ``call``, or an ``RpcError``/``SigningError`` refusing it."""
    signed = signed_request(call)
    key_id = signed.access_key_id
    token = signed.security_token
    if key_id.startswith(STS_PREFIX) and token is None:
        raise RpcError(
            400, "MissingSecurityToken", "SecurityToken is mandatory for STS credentials."
        )
    secret = runtime.secret_lookup.secret_for(key_id)
    if secret is None:
        raise RpcError(404, "InvalidAccessKeyId.NotFound")
    guard.check(signed, secret)
    try:
        credential = authenticate_keys(runtime, key_id, secret, token)
    except AuthenticationFailed as failure:
        raise _refusal(str(failure), key_id, token) from None
    request.scope[CALLER_KEY] = credential.arn  # for the request's log line
    source_ip, secure = peer(request, runtime)
    return Caller(
        credential.arn,
        credential.account_id,
        credential.kind.value,
        credential,
        request_id_of(request),
        source_ip,
        secure,
    )


def _refusal(reason: str, key_id: str, token: str | None) -> RpcError:
    """RAM's code for the index's refusal of a key whose signature held.

    The index's reasons are plain sentences about the caller's own credential (never a
    secret); what the caller sent is still taken out of them (``unechoed``), as on /v1.
    """
    if "Inactive" in reason:
        return RpcError(400, "InvalidAccessKeyId.Inactive")
    if token is None or "secret does not match" in reason:
        return RpcError(404, "InvalidAccessKeyId.NotFound")
    said = f"Specified SecurityToken is not valid: {unechoed(reason, key_id, token)}."
    if "malformed" in reason or "signature" in reason or "unknown key" in reason:
        return RpcError(400, "InvalidSecurityToken.Malformed", said)
    if "another AccessKey" in reason:
        return RpcError(400, "InvalidSecurityToken.MismatchWithAccessKey")
    if "expired" in reason:
        return RpcError(400, "InvalidSecurityToken.Expired")
    return RpcError(400, "InvalidSecurityToken.Expired", said)  # revoked, its role deleted…
