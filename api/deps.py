"""FastAPI dependencies: the runtime, Min-Position, authentication, the caller's context.

Authentication reads only the in-memory index, so it is ``async`` and never touches the
threadpool. ``Min-Position`` is waited for *before* authenticating, so that credentials
created at position n are usable by a request that carries ``Min-Position: n``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request

from mandate.api.abuse import Attempt
from mandate.api.middleware.request_ids import request_id_of
from mandate.api.observability.logs import CALLER_KEY
from mandate.api.observability.security_events import denied
from mandate.api.problem_responses import MinPositionHeader
from mandate.api.problems import (
    Busy,
    Forbidden,
    PositionNotReached,
    ProjectionStalled,
    Unauthenticated,
)
from mandate.api.runtime import Runtime
from mandate.api.signed_requests import (
    STS_PREFIX,
    authenticate_keys,
    refusal_code,
    signed_credential,
)
from mandate.api.signing import ReplayGuard, SignedRequest, SigningError, parse_acs3
from mandate.api.signing.acs3 import ALGORITHM as ACS3
from mandate.api.signing.replay import v1_writes
from mandate.domain.common.arns import ACCOUNT_ID_RE
from mandate.domain.common.audit import AuditContext
from mandate.domain.common.errors import FieldError, InvalidInput, NotFound
from mandate.domain.ledger.application import Ledger, Positioned
from mandate.domain.policy.decisions import SubjectKind
from mandate.domain.policy.evaluation import AccessRequest
from mandate.projections.decisions.credentials import AuthenticationFailed, Credential
from mandate.projections.store.sql_projection import EventNotApplicable, ProjectionWorker

__all__ = [
    "ADMIN_ARN",
    "STS_PREFIX",
    "Caller",
    "CallerDep",
    "Management",
    "RuntimeDep",
    "authenticate",
    "authenticate_keys",
    "authorize_management",
    "connection_context",
    "ensure_position",
    "manage",
    "peer",
    "proven_credential",
    "signature_guard",
    "wait_for_min_position",
]

R = TypeVar("R", bound=Positioned)

ADMIN_ARN = "mandate:admin"
ACS3_SCHEME = ACS3.lower()


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal of a request, and what its connection says about it."""

    arn: str
    account_id: str | None  # None for the platform admin
    kind: str  # "admin" | "root" | "user" | "session"
    credential: Credential | None
    given_request_id: str | None  # the X-Request-Id chosen for it (``api.middleware.request_ids``)
    source_ip: str | None
    secure_transport: bool

    @classmethod
    def of(
        cls, credential: Credential, request_id: str | None, connection: tuple[str | None, bool]
    ) -> Caller:
        """The caller a verified key or session makes; ``connection``: ``peer``'s answer."""
        return cls(
            credential.arn,
            credential.account_id,
            credential.kind.value,
            credential,
            request_id,
            *connection,
        )

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def audit(self, reason: str | None = None) -> AuditContext:
        """The context of the events this request writes (a request id is made only then)."""
        return AuditContext(
            actor=self.arn,
            credential=self.credential.access_key_id if self.credential else None,
            request_id=self.given_request_id or uuid.uuid4().hex,
            source_ip=self.source_ip,
            reason=reason,
        )


def peer(request: Request, runtime: Runtime) -> tuple[str | None, bool]:
    """The client's address and transport, trusting X-Forwarded-* only from our proxies."""
    scope = request.scope
    client = scope.get("client")
    peer: str | None = client[0] if client else None
    secure = scope.get("scheme") == "https"
    if peer is not None and peer in runtime.settings.trusted_proxies:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            peer = forwarded.split(",")[0].strip()
        proto = request.headers.get("x-forwarded-proto")
        if proto:
            secure = proto.strip().lower() == "https"
    return peer, secure


async def ensure_position(runtime: Runtime, wanted: int | None, field: str) -> None:
    """Wait (bounded) until this process has applied ``wanted``; 400 beyond the head."""
    if wanted is None or runtime.index.position >= wanted:
        return
    if wanted < 0:
        raise InvalidInput(FieldError(field, "must be a non-negative ledger position"))
    head = await anyio.to_thread.run_sync(runtime.head)
    if wanted > head:
        raise InvalidInput(
            FieldError(field, f"position {wanted} is beyond the head of the log ({head})")
        )
    timeout = runtime.settings.min_position_timeout
    reached = await anyio.to_thread.run_sync(runtime.follower.wait_for, wanted, timeout)
    if not reached:
        raise PositionNotReached(wanted, runtime.index.position)


async def reach_projection_head(runtime: Runtime, worker: ProjectionWorker) -> int:
    """Let a SQL projection apply the head of the log seen now (bounded); return the head.

    History and audit reads call this first, so an answer never misses an event committed
    before the question arrived; 503 with Retry-After when the projection cannot catch up.
    """
    head = await anyio.to_thread.run_sync(runtime.head)
    timeout = runtime.settings.min_position_timeout
    replica = runtime.replica
    if replica is not None:
        # Served from the read replica: its own replicated tracking must hold the head seen
        # on arrival (which is at least any Min-Position the request carried).
        name = worker.projection.name
        if not await anyio.to_thread.run_sync(replica.wait_for, name, head, timeout):
            stall = await anyio.to_thread.run_sync(worker.known_stall)
            if stall is not None and stall.position <= head:  # it will never get there
                raise ProjectionStalled(name, str(stall))
            applied = await anyio.to_thread.run_sync(replica.position, name)
            raise PositionNotReached(head, applied, where=f"on the read replica's {name} copy")
        return head
    try:
        reached = await anyio.to_thread.run_sync(worker.wait_for, head, timeout)
    except EventNotApplicable as stalled:
        raise ProjectionStalled(worker.projection.name, str(stalled)) from stalled
    if not reached:
        raise PositionNotReached(head, worker.position)
    return head


async def reach_replica_log(runtime: Runtime, position: int | None = None) -> int | None:
    """With a read replica, wait (bounded) until its log holds ``position`` — by default the
    head seen now — and answer that position; None without a replica (read the primary)."""
    replica = runtime.replica
    if replica is None:
        return None
    wanted = await anyio.to_thread.run_sync(runtime.head) if position is None else position
    timeout = runtime.settings.min_position_timeout
    if not await anyio.to_thread.run_sync(replica.wait_for, None, wanted, timeout):
        applied = await anyio.to_thread.run_sync(replica.head)
        raise PositionNotReached(wanted, applied, where="on the read replica's log")
    return wanted


async def wait_for_min_position(runtime: Runtime, header: str | None) -> None:
    """The ``Min-Position`` header: wait for it (bounded) before anything else happens."""
    if header is None:
        return
    try:
        wanted = int(header)
    except ValueError:
        raise InvalidInput(
            FieldError("Min-Position", "must be an integer ledger position")
        ) from None
    await ensure_position(runtime, wanted, "Min-Position")


async def min_position(runtime: RuntimeDep, min_position_header: MinPositionHeader = None) -> None:
    await wait_for_min_position(runtime, min_position_header)


def _basic_credentials(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed Basic credentials") from None
    key_id, sep, secret = decoded.partition(":")
    if not sep or not key_id or not secret:
        raise Unauthenticated("Basic credentials must be AccessKeyId:AccessKeySecret")
    return key_id, secret


def authenticate(request: Request, runtime: Runtime, body: bytes | None = None) -> Caller:
    """``_authenticate``, its failures limited and logged (``api.abuse.Attempt``)."""
    with Attempt(request, runtime, peer, Unauthenticated):
        return _authenticate(request, runtime, body)


def _authenticate(request: Request, runtime: Runtime, body: bytes | None = None) -> Caller:
    """Who is calling: the admin's bearer token or an AccessKey, checked in memory.

    The AccessKey comes as Basic (id and secret, checked against the kept hash) or as an
    ``ACS3-HMAC-SHA256`` signature over the request, which needs ``body`` (its bytes).
    """
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("credentials are required (HTTP Basic AccessKeyId:AccessKeySecret)")
    scheme, _sep, value = header.partition(" ")
    source_ip, secure = peer(request, runtime)
    request_id = request_id_of(request)  # bounded: never the raw header
    scheme = scheme.lower()
    if scheme == "bearer":
        candidate = runtime.hasher.hash(value.strip())
        if not hmac.compare_digest(candidate, runtime.admin.token_hash):
            raise Unauthenticated("the admin token is not valid")
        request.scope[CALLER_KEY] = ADMIN_ARN  # for the request's log line
        return Caller(ADMIN_ARN, None, "admin", None, request_id, source_ip, secure)
    if scheme == ACS3_SCHEME:
        credential = _signed_credential(request, runtime, body)
    elif scheme != "basic":
        raise Unauthenticated(
            "unsupported authorization scheme: use Basic or ACS3-HMAC-SHA256 "
            "(or the admin's Bearer)"
        )
    else:
        key_id, secret = _basic_credentials(value.strip())
        token = request.headers.get("x-security-token")
        try:
            credential = authenticate_keys(runtime, key_id, secret, token)
        except AuthenticationFailed as failure:
            raise Unauthenticated(unechoed(str(failure), key_id, secret, token)) from None
    request.scope[CALLER_KEY] = credential.arn
    return Caller.of(credential, request_id, (source_ip, secure))


def _signed_credential(request: Request, runtime: Runtime, body: bytes | None) -> Credential:
    """Who signed ``request`` with ACS3-HMAC-SHA256 (``proven_credential``)."""
    if body is None:
        raise RuntimeError("an ACS3-HMAC-SHA256 request is authenticated with its body")
    scope = request.scope
    raw_path: bytes = scope.get("raw_path") or request.url.path.encode()
    return proven_credential(
        request,
        runtime,
        lambda: parse_acs3(
            request.method,
            raw_path.decode("latin-1").split("?", 1)[0],
            request.query_params.multi_items() if scope.get("query_string") else (),
            request.headers.items(),
            body=body,
        ),
    )


def proven_credential(
    request: Request, runtime: Runtime, read: Callable[[], SignedRequest], *, whose: str = ""
) -> Credential:
    """The credential that signed the request ``read`` parses (``signed_credential``'s
    checks), or a 401 saying why with RAM's code (``SignatureDoesNotMatch``,
    ``InvalidTimeStamp.*``, ``SignatureNonceUsed``, ``InvalidAccessKeyId.NotFound``,
    ``InvalidSecurityToken.Expired``…); ``whose`` starts the reason. The key id and token
    sent are taken out of it (``unechoed``); the secret is never in it."""
    key_id: str | None = None
    token: str | None = None
    try:
        signed = read()
        key_id, token = signed.access_key_id, signed.security_token
        guard, path = signature_guard(request), request.scope["path"]
        return signed_credential(runtime, guard, signed, writes=v1_writes(request.method, path))
    except SigningError as refused:
        if refused.http_status == 503:  # the nonce memory is full: retry, not a bad request
            raise Busy(refused.message, retry_after=1) from None
        reason = whose + unechoed(refused.message, key_id, token)
        raise Unauthenticated(reason, code=refused.code) from None
    except AuthenticationFailed as failure:
        reason = whose + unechoed(str(failure), key_id, token)
        raise Unauthenticated(reason, code=refusal_code(failure)) from None


def signature_guard(request: Request) -> ReplayGuard:
    """The app's clock and nonce memory, one per process, shared by ``/`` and ``/v1``."""
    guard: ReplayGuard = request.app.state.signature_guard
    return guard


def unechoed(reason: str, *sent: str | None) -> str:
    """``reason`` without anything the caller sent (a key id, a secret, a token).

    A 401 says why, never what it was given: echoing a guessed id or a header back makes an
    oracle of the error and carries whatever the caller planted into clients and logs.
    """
    for value in sent:
        if value:
            reason = reason.replace(value, "(the credential presented)")
    return reason


async def get_caller(
    request: Request,
    runtime: RuntimeDep,
    _: Annotated[None, Depends(min_position)],
) -> Caller:
    header = request.headers.get("authorization")
    if header is not None and header[:5].lower() == "acs3-":  # signed: over its body too
        return authenticate(request, runtime, await request.body())
    return authenticate(request, runtime)


CallerDep = Annotated[Caller, Depends(get_caller)]


def connection_context(caller: Caller, now: datetime | None = None) -> dict[str, Any]:
    """The ``acs:`` keys Mandate sets itself, from its clock and the connection."""
    context: dict[str, Any] = {
        "acs:currenttime": now or datetime.now(UTC),
        "acs:securetransport": caller.secure_transport,
        "acs:mfapresent": False,
    }
    if caller.source_ip is not None:
        context["acs:sourceip"] = caller.source_ip
    return context


def check_account_id(account_id: str) -> None:
    if not ACCOUNT_ID_RE.fullmatch(account_id):
        raise InvalidInput(FieldError("account_id", "must be 16 digits"))


def authorize_management(
    runtime: Runtime,
    caller: Caller,
    account_id: str,
    action: str,
    resource: str,
    *,
    admin_may: bool = False,
) -> None:
    """Mandate's own evaluator decides management calls, as RAM does (docs/design.md §5).

    A call about another account is refused before anything is looked up, so that
    existence does not leak; the platform admin reads but never writes inside an account.
    """
    check_account_id(account_id)
    if caller.is_admin:
        if not admin_may:
            raise Forbidden("the platform admin never writes inside an account")
        if runtime.index.account(account_id) is None:
            raise NotFound(f"account {account_id} does not exist", code="EntityNotExist.Account")
        return
    if caller.account_id != account_id:
        reason = f"{caller.arn} may not act on account {account_id}"
        raise Forbidden(denied(runtime, caller, account_id, action, resource, reason))
    assert caller.credential is not None
    credential = caller.credential
    if credential.kind is SubjectKind.ROOT:
        return
    request = AccessRequest.make(action, resource, connection_context(caller))
    answer = runtime.index.decide_for(credential, request)
    if not answer.allowed:
        reason = f"{caller.arn} is not allowed {action} on {resource}: {answer.reason}"
        raise Forbidden(
            denied(runtime, caller, account_id, action, resource, reason),
            decision={
                "decision": answer.decision.kind.value,
                "matched": [m.as_dict() for m in answer.decision.matched],
            },
        )


@dataclass(frozen=True, slots=True)
class Management:
    """A management write the caller has been authorised to make (made by ``manage``)."""

    runtime: Runtime
    caller: Caller

    def write(
        self,
        command: Callable[[Ledger], R],
        *,
        reason: str | None = None,
    ) -> R:
        """Run ``command`` on the ledger as the caller (``reason`` goes into the audit context);
        answer its result once this process has applied its position (``Runtime.write``)."""
        audit = self.caller.audit(reason)
        ledger = self.runtime.ledger
        return self.runtime.write(audit, lambda: command(ledger))

    def write_position(
        self,
        command: Callable[[Ledger], Positioned],
        *,
        reason: str | None = None,
    ) -> int:
        """``write`` for the routes that answer only where the command landed: its position."""
        return self.write(command, reason=reason).position


def manage(
    runtime: Runtime, caller: Caller, account_id: str, action: str, resource: str
) -> Management:
    """Authorise a management write (``authorize_management``) and answer how to make it:
    ``manage(runtime, caller, account_id, "ram:CreateGroup", arn).write(lambda ledger: ...)``.

    Reads call ``authorize_management(..., admin_may=True)`` themselves: they write nothing.
    """
    authorize_management(runtime, caller, account_id, action, resource)
    return Management(runtime, caller)
