"""Who signed an RPC call: ACS3-HMAC-SHA256 (V3) or HMAC-SHA1 (V1), then the index's verdict.

This module reads the scheme from the call (V3 when ``Authorization`` names ACS3, else V1);
the checks are ``mandate.api.signed_requests``' (the ones /v1's signed forms make too): the
secret looked up, clock, signature and nonce (``ReplayGuard``, one per process), then the
index's ``authenticate_keys``. Here the index's refusals get RAM's codes; the secret is never
echoed, logged or stored.
"""

from __future__ import annotations

from starlette.requests import Request

from mandate.api.abuse import admit_attempt, authentication_failed
from mandate.api.deps import Caller, peer, unechoed
from mandate.api.middleware.request_ids import request_id_of
from mandate.api.observability.logs import CALLER_KEY
from mandate.api.rpc.errors import RpcError
from mandate.api.rpc.requests import RpcCall
from mandate.api.runtime import Runtime
from mandate.api.signed_requests import refusal_code, signed_credential
from mandate.api.signing import (
    ReplayGuard,
    SignedRequest,
    SigningError,
    parse_acs3,
    parse_rpc,
)
from mandate.api.signing.acs3 import ALGORITHM
from mandate.api.signing.replay import rpc_writes
from mandate.projections.decisions.credentials import AuthenticationFailed, Refusal

__all__ = ["anonymous_caller", "authenticate_call", "signed_request"]


def signed_request(call: RpcCall) -> SignedRequest:
    """The call's signature, parsed: V3 when ``Authorization`` names ACS3, else V1."""
    authorization = next((v for k, v in call.headers if k.lower() == "authorization"), "")
    if authorization.startswith(ALGORITHM + " "):
        return parse_acs3(call.method, call.path, call.query, call.headers, body=call.body)
    return parse_rpc(call.method, (*call.query, *call.form))


def authenticate_call(
    request: Request, call: RpcCall, runtime: Runtime, guard: ReplayGuard
) -> Caller:
    """The verified caller of ``call``, or an ``RpcError``/``SigningError`` refusing it.

    Failed attempts are limited and logged as on /v1 (``api.abuse``): an address over its
    limit is ``Throttling.User`` (429) before the signature is looked at; a refusal counts
    against the address and the claimed key id and goes to the security log."""
    source_ip, secure = peer(request, runtime)
    admit_attempt(runtime, source_ip)
    key_id: str | None = None
    try:
        signed = signed_request(call)
        key_id = signed.access_key_id
        try:
            credential = signed_credential(runtime, guard, signed, writes=rpc_writes(call.action))
        except AuthenticationFailed as failure:
            raise _refusal(failure, signed.access_key_id, signed.security_token) from None
    except (RpcError, SigningError) as refused:
        code = refused.code
        if refused.http_status == 503:  # the nonce memory is full or the shared store down
            raise RpcError(503, "ServiceUnavailable", refused.message, retry_after=1) from None
        throttled = authentication_failed(
            runtime,
            surface="rpc",
            source_ip=source_ip,
            key_id=key_id,
            reason=f"{code}: {refused.message}",
            code=code,
            action=call.action,
            request_id=request_id_of(request),
        )
        if throttled is not None:
            raise throttled from None
        raise
    request.scope[CALLER_KEY] = credential.arn  # for the request's log line
    return Caller.of(credential, request_id_of(request), (source_ip, secure))


_SAID_EXPIRED = frozenset({Refusal.SESSION_EXPIRED, Refusal.SESSION_UNKNOWN})


def _refusal(failure: AuthenticationFailed, key_id: str, token: str | None) -> RpcError:
    """RAM's code for the index's refusal of a key whose signature held (``refusal_code``,
    from the refusal's typed reason); a token refused for another reason than expiry
    (malformed, revoked…) is said in words.

    The index's reasons are plain sentences about the caller's own credential (never a
    secret); what the caller sent is still taken out of them (``unechoed``), as on /v1.
    """
    code = refusal_code(failure)
    if code == "InvalidAccessKeyId.NotFound":
        return RpcError(404, code)
    if code == "InvalidSecurityToken.Malformed" or (
        code == "InvalidSecurityToken.Expired" and failure.reason not in _SAID_EXPIRED
    ):
        said = f"Specified SecurityToken is not valid: {unechoed(str(failure), key_id, token)}."
        return RpcError(400, code, said)
    return RpcError(400, code)


def anonymous_caller(request: Request, runtime: Runtime, request_id: str) -> Caller:
    """Who calls an anonymous action (``Action.anonymous``): no one yet, from this address.
    It holds no credential and no account, so ``RpcContext.manage``/``authorize_read``
    refuse it: only an action that authenticates by itself (a token) may run for it."""
    return Caller("anonymous", None, "anonymous", None, request_id, *peer(request, runtime))
