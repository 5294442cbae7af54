"""Decisions: ``/v1/authorize`` (live; always 200 with the answer) and ``/v1/simulate``.

Both read only the in-memory index. ``/v1/authorize`` runs on the event loop (no threadpool
hop, no I/O: its policies were compiled when written). ``/v1/simulate`` parses, compiles and
evaluates up to 50 documents any caller sends, so it is a plain ``def`` route: FastAPI runs it
in the threadpool, and a costly what-if never holds up the event loop's other requests.
``/v1/authorize`` is the hot path of every enforcement point, so it is served as a plain
Starlette route: FastAPI's per-request dependency solving and body handling cost more than the
decision itself (measured: 0.34 times the throughput of ``/healthz`` as a FastAPI route). It
does the same steps by hand — Min-Position, then a body validated by its pydantic model
(``schemas.AuthorizeBody``, where every check of the body's shape lives), then authentication
— and its errors go through the same problem handlers. It is still a FastAPI ``APIRoute``
(``HandServedRoute``), so FastAPI generates its OpenAPI entry from the same models: the body
it parses and the answer it encodes (``schemas.AnswerBody``).

Who may ask about whom lives in ``api.routers.decision_access``; how an answer is encoded
(once, then kept) in ``api.routers.decision_encoding``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.requests import Request as StarletteRequest
from starlette.routing import request_response

from mandate.api.deps import (
    STS_PREFIX,
    Caller,
    CallerDep,
    RuntimeDep,
    authenticate,
    authenticate_keys,
    connection_context,
    ensure_position,
    proven_credential,
    wait_for_min_position,
)
from mandate.api.presenters import answer_json, rfc3339
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.routers import history
from mandate.api.routers.decision_access import (
    asks_through_own_roles,
    may_ask_about,
    named_roles_shown,
    outsider,
    supplied_context,
    withheld_unless_own,
)
from mandate.api.routers.decision_encoding import answer_response, refused
from mandate.api.runtime import Runtime
from mandate.api.schemas import (
    AnswerBody,
    AuthorizeBody,
    ClientCredentials,
    SignedRequestBody,
    SimulateBody,
    parse_body,
)
from mandate.api.signed_requests import oss_request
from mandate.domain.common.arns import parse_principal_arn
from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.policy.decisions import Answer
from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    DecisionKind,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
    evaluate,
)
from mandate.domain.sts.session_lineage import SessionInvalid, SessionRecord
from mandate.projections.decisions.credentials import AuthenticationFailed, Credential

router = APIRouter(tags=["decisions"], responses=PROBLEM_RESPONSES, dependencies=AUTHENTICATED)


async def authorize(request: StarletteRequest) -> Response:
    runtime: Runtime = request.app.state.runtime
    await wait_for_min_position(runtime, request.headers.get("min-position"))
    raw = await request.body()
    body = parse_body(AuthorizeBody, raw)
    # before authenticating (docs/design.md §4): credentials issued at n work with min_position n
    await ensure_position(runtime, body.min_position, "min_position")
    if body.as_of is not None:
        caller = authenticate(request, runtime, raw)
        return JSONResponse(await _authorize_as_of(runtime, caller, body, body.as_of))
    index = runtime.index
    # Authenticated, decided and positioned on one state: no event applies meanwhile
    # (``DecisionIndex.steady``), so the answer's ``position`` is exactly the state decided on.
    with index.steady:
        found = _live_answer(request, runtime, raw, body)
        position = index.position
    if isinstance(found, _Refused):
        refusal = refused(found.reason, position)
        return JSONResponse(refusal if found.of_credentials else refusal | {"authenticated": None})
    answer, memoised = found
    runtime.decision_counts[counted(answer)] += 1
    return answer_response(answer, position, cache=memoised)


@dataclass(frozen=True, slots=True)
class _Refused:
    """No answer about the resource: the client's credentials were refused (``of_credentials``:
    answered ``authenticated: false``), or no live principal is named (``authenticated: null``)."""

    reason: str
    of_credentials: bool


def _live_answer(
    request: StarletteRequest, runtime: Runtime, raw: bytes, body: AuthorizeBody
) -> tuple[Answer, bool] | _Refused:
    """A live ``authorize``: the answer and whether the memo may hold it, or a refusal.

    Reads only the index, with no event applying (the caller holds ``index.steady``)."""
    caller = authenticate(request, runtime, raw)
    index = runtime.index
    if body.credentials is None and body.principal is None and body.signed is None:
        supplied = supplied_context(body.context, vouching=False)
        credential = caller.credential
        if credential is None:
            raise InvalidInput(
                FieldError(
                    "principal",
                    "the platform admin holds no permissions of its own: "
                    "pass credentials or principal",
                )
            )
        context = {**supplied, **connection_context(caller)}
        return index.decide_for(
            credential, AccessRequest.make(body.action, body.resource, context)
        ), True
    supplied = supplied_context(body.context, vouching=True)
    context = {"acs:currenttime": datetime.now(UTC), "acs:mfapresent": False, **supplied}
    asked = AccessRequest.make(body.action, body.resource, context)
    if body.credentials is not None:
        client = body.credentials
        try:
            credential = authenticate_keys(
                runtime, client.access_key_id, client.access_key_secret, client.security_token
            )
        except AuthenticationFailed as failure:
            return _Refused(_refusal(runtime, caller, client, failure), of_credentials=True)
        may_ask_about(
            runtime, caller, credential.account_id, credential.arn, body.resource, proven=True
        )
        return index.decide_for(credential, asked), True
    if body.signed is not None:
        credential = _signed_client(request, runtime, body.signed)
        may_ask_about(
            runtime, caller, credential.account_id, credential.arn, body.resource, proven=True
        )
        return index.decide_for(credential, asked), True
    assert body.principal is not None
    found = _principal_answer(runtime, caller, body.principal, asked)
    if isinstance(found, str):
        return _Refused(found, of_credentials=False)
    return found


def counted(answer: Answer) -> tuple[str, str]:
    """The key ``/metrics`` counts a decision under: its outcome and the policy layer of the
    first statement that matched (``root``: an account root's Allow, which no statement
    bounds; ``none``: nothing matched)."""
    decision = answer.decision
    if decision.matched:
        return decision.kind.value, decision.matched[0].layer.value
    return decision.kind.value, "root" if decision.allowed else "none"


def _principal_answer(
    runtime: Runtime, caller: Caller, principal: str, request: AccessRequest
) -> tuple[Answer, bool] | str:
    """ "Could P do it?" for an ARN or a session's key id: directly, or through a role.

    Returns the answer and whether the memo holds it, or why there is no live principal to
    answer for. An outsider hears only the answer through its own roles.
    """
    index = runtime.index
    if principal.startswith(STS_PREFIX):
        view = index.session(principal)
        account_id = view.record.account_id if view else None
        if view is None or account_id is None:
            if not caller.is_admin:
                raise outsider(caller)
            return f"no session {principal} is known"
        may_ask_about(runtime, caller, account_id, view.record.arn, request.resource)
        try:
            subject, generation = index.session_subject(principal, datetime.now(UTC))
        except SessionInvalid as dead:
            return str(dead)
        answer = index.decide(subject, request, memo_key=principal, generation=generation)
        return answer, True
    parsed = parse_principal_arn(principal)
    owner = asks_through_own_roles(runtime, caller, parsed.account_id, principal, request.resource)
    found = index.principal_for_arn(principal)
    if owner is not None:
        through = index.answer_through_roles(found[1], request) if found else None
        return withheld_unless_own(owner, principal, through), False
    if found is None:
        return f"no live principal is named {principal}"
    memo_key, subject = found
    answer = index.decide(subject, request, memo_key=memo_key)
    if answer.allowed:
        return answer, True
    through = index.answer_through_roles(subject, request, named_of=named_roles_shown(caller))
    return (through, False) if through else (answer, True)


def _signed_client(
    request: StarletteRequest, runtime: Runtime, signed: SignedRequestBody
) -> Credential:
    """Who signed the enforcement point's client request (``oss_request``'s scheme), proven
    by ``proven_credential``: a bad or stale signature, an unknown key, an expired or revoked
    session is a 401 naming RAM's code, which is not an answer about the resource."""
    return proven_credential(
        request,
        runtime,
        lambda: oss_request(
            signed.method,
            signed.bucket,
            signed.key,
            signed.params,
            signed.headers,
            region=signed.region,
        ),
        whose="the signed request is refused: ",
    )


def _refusal(
    runtime: Runtime, caller: Caller, client: ClientCredentials, failure: AuthenticationFailed
) -> str:
    """Why the client's credentials failed — in detail only to those who may know.

    The reason tells whether a key id exists, so only the admin and callers of the key's
    own account hear it; anyone else learns only that the credentials were refused.
    """
    index = runtime.index
    key = index.access_key(client.access_key_id)
    session = index.session(client.access_key_id)
    owners = {
        key.account_id if key else None,
        session.record.account_id if session else None,
        session.record.source_account_id if session else None,
    } - {None}
    if caller.is_admin or caller.account_id in owners:
        return f"credentials refused: {failure}"
    return "credentials refused"


@router.post("/v1/simulate")
def simulate(body: SimulateBody, caller: CallerDep, runtime: RuntimeDep) -> JSONResponse:
    """A what-if: inline documents, context taken as given, nothing stored (in the threadpool)."""
    compiled = []
    errors: list[FieldError] = []
    for i, raw in enumerate(body.policies):
        try:
            document = parse_policy_document(raw)
        except InvalidInput as error:
            errors.extend(error.prefixed(f"policies[{i}]").errors)
            continue
        source = PolicySource(Layer.IDENTITY, "Inline", f"policies[{i}]", None, None)
        compiled.append(compile_policy(document, source))
    if errors:
        raise InvalidInput(errors)
    context = {key.lower(): value for key, value in (body.context or {}).items()}
    decision = evaluate(
        [PolicySet.of(compiled, Layer.IDENTITY)],
        AccessRequest.make(body.action, body.resource, context),
    )
    return JSONResponse(
        {
            "decision": decision.kind.value,
            "allowed": decision.kind is DecisionKind.ALLOW,
            "matched": [m.as_dict() for m in decision.matched],
            "context_dependent": decision.context_dependent,
            "evaluated_at": rfc3339(datetime.now(UTC)),
            "position": runtime.index.position,
        }
    )


async def _authorize_as_of(
    runtime: Runtime, caller: Caller, body: AuthorizeBody, as_of: datetime
) -> dict[str, Any]:
    """The decision at ``as_of``, from the facts alive then (the temporal index)."""
    at = history.check_instant(as_of)
    if body.credentials is None and body.principal is None:
        context = {**supplied_context(body.context, vouching=False), **connection_context(caller)}
        position = await history.reach_temporal_head(runtime)
        found = await anyio.to_thread.run_sync(
            history.principal_of_credential, runtime, caller.credential, at
        )
    else:
        context = {"acs:mfapresent": False, **supplied_context(body.context, vouching=True)}
        if body.credentials is not None:
            client = body.credentials
            proven: SessionRecord | Credential
            try:
                if client.security_token is not None:
                    # The session may have ended since: its signature and secret still prove
                    # which session it is, and the temporal index says whether it could act.
                    proven = runtime.index.verify_session_credentials(
                        client.access_key_id, client.access_key_secret, client.security_token
                    )
                else:
                    proven = authenticate_keys(
                        runtime, client.access_key_id, client.access_key_secret, None
                    )
            except AuthenticationFailed as failure:
                return refused(_refusal(runtime, caller, client, failure), runtime.index.position)
            may_ask_about(
                runtime, caller, proven.account_id, proven.arn, body.resource, proven=True
            )
            position = await history.reach_temporal_head(runtime)
            if isinstance(proven, SessionRecord):
                found = await anyio.to_thread.run_sync(
                    runtime.as_of.session_at, proven.access_key_id, at
                )
            else:
                status = await anyio.to_thread.run_sync(
                    runtime.as_of.key_status, proven.access_key_id, at
                )
                if status != "Active":
                    why = "did not exist then" if status is None else f"was {status} then"
                    found = (None, f"the AccessKey {why}")
                else:
                    found = await anyio.to_thread.run_sync(
                        history.principal_of_credential, runtime, proven, at
                    )
        elif body.principal is not None and body.principal.startswith(STS_PREFIX):
            position = await history.reach_temporal_head(runtime)
            issued = await anyio.to_thread.run_sync(history.session_record, runtime, body.principal)
            if issued is None:
                if not caller.is_admin:
                    raise outsider(caller)
                found = (None, f"no session {body.principal} was ever issued")
            else:
                may_ask_about(runtime, caller, issued.account_id, issued.arn, body.resource)
                found = await anyio.to_thread.run_sync(runtime.as_of.session_at, body.principal, at)
        else:
            assert body.principal is not None
            principal = body.principal
            parsed = parse_principal_arn(principal)
            owner = asks_through_own_roles(
                runtime, caller, parsed.account_id, principal, body.resource
            )
            position = await history.reach_temporal_head(runtime)
            found = await anyio.to_thread.run_sync(runtime.as_of.principal_for_arn, principal, at)
            if owner is not None:
                request = AccessRequest.make(
                    body.action, body.resource, {**context, "acs:currenttime": at}
                )
                then = found[0]
                through = None
                if then is not None:
                    through = await anyio.to_thread.run_sync(
                        runtime.as_of.through_roles, then, request
                    )
                return {
                    **answer_json(withheld_unless_own(owner, principal, through)),
                    "as_of": rfc3339(at),
                    "evaluated_at": rfc3339(datetime.now(UTC)),
                    "position": position,
                }
            # "could P": directly, or through a role P could assume then (as live); reads SQL
            return await anyio.to_thread.run_sync(
                lambda: history.answer_as_of(
                    runtime,
                    found,
                    body.action,
                    body.resource,
                    context,
                    at,
                    position,
                    could=True,
                    named_of=named_roles_shown(caller),
                )
            )
    return history.answer_as_of(runtime, found, body.action, body.resource, context, at, position)


class HandServedRoute(APIRoute):
    """A route FastAPI documents from ``endpoint``'s signature (its dependencies, its body
    and answer models) but serves with ``handler`` exactly as a Starlette ``Route`` would:
    no dependency solving, no body handling, no answer validation on the way."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        handler: Callable[[StarletteRequest], Awaitable[Response]],
        **options: Any,
    ) -> None:
        super().__init__(path, endpoint, **options)
        self.app = request_response(handler)


def _authorize_documented(body: AuthorizeBody, caller: CallerDep) -> AnswerBody:
    """What ``authorize`` takes and answers, for FastAPI to document; never called."""
    raise NotImplementedError


authorize_route = HandServedRoute(
    "/v1/authorize",
    _authorize_documented,
    handler=authorize,
    methods=["POST"],
    name="authorize",
    operation_id="authorize",
    tags=["decisions"],
    summary="Decide a request: for the caller, a signed client request, credentials or a principal",
    description="Always 200 with the answer when the call itself is valid: a denial is an "
    "answer. ``signed`` (an enforcement point's client request as received, OSS V1/V4 header "
    "or presigned URL: Mandate verifies it and decides for whoever signed it; a refused "
    "signature or session is a 401), ``credentials`` (a client's id and secret: for trusted "
    "in-process callers only) or ``principal`` (an ARN or a session's key id), at most one; "
    "none: the caller itself. ``as_of``: the decision then.",
    response_model=AnswerBody,
    response_description="The decision, with its reason; a denial is an answer",
    responses={
        400: {"description": "Invalid input (application/problem+json)"},
        401: {"description": "No, bad or revoked credentials"},
        403: {"description": "The caller may not ask about that principal"},
        503: {"description": "Min-Position not reached (Retry-After)"},
    },
)
