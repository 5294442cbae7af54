"""Decisions: ``/v1/authorize`` (live; always 200 with the answer) and ``/v1/simulate``.

Both read only the in-memory index. ``/v1/authorize`` runs on the event loop (no threadpool
hop, no I/O: its policies were compiled when written). ``/v1/simulate`` parses, compiles and
evaluates up to 50 documents any caller sends, so it is a plain ``def`` route: FastAPI runs it
in the threadpool, and a costly what-if never holds up the event loop's other requests.
``/v1/authorize`` is the hot path of every enforcement point, so it is a plain Starlette
route: FastAPI's per-request dependency solving and body handling cost more than the
decision itself (measured: 0.34 times the throughput of ``/healthz`` as a FastAPI route). It
does the same steps by hand — Min-Position, then authentication, then a pydantic-validated
body — and its errors go through the same problem handlers. ``authorize_openapi`` puts it
back into the OpenAPI document.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.requests import Request as StarletteRequest
from starlette.routing import Route

from api.deps import (
    STS_PREFIX,
    Caller,
    CallerDep,
    RuntimeDep,
    authenticate,
    authenticate_keys,
    authorize_management,
    connection_context,
    ensure_position,
    wait_for_min_position,
)
from api.presenters import answer_json, refusal_json, rfc3339
from api.problems import Forbidden
from api.routers import history
from api.runtime import Runtime
from api.schemas import AuthorizeBody, ClientCredentials, SimulateBody, parse_body
from domain.common.arns import account_of_resource, parse_principal_arn
from domain.common.errors import FieldError, InvalidInput
from domain.policy.decisions import Answer
from domain.policy.document import parse_policy_document
from domain.policy.evaluation import (
    Decision,
    DecisionKind,
    Layer,
    PolicySet,
    PolicySource,
    Request,
    compile_policy,
    evaluate,
)
from domain.sts.session_lineage import SessionInvalid
from projections.decisions.index import AuthenticationFailed

router = APIRouter(tags=["decisions"])

# What an enforcement point may vouch for about its client; acs:CurrentTime never.
VOUCHABLE_KEYS = frozenset({"acs:sourceip", "acs:securetransport", "acs:mfapresent"})


def _supplied_context(context: dict[str, Any] | None, *, vouching: bool) -> dict[str, Any]:
    supplied = {key.lower(): value for key, value in (context or {}).items()}
    errors = []
    for key in supplied:
        if not key.startswith("acs:"):
            continue
        if vouching and key in VOUCHABLE_KEYS:
            continue
        reason = (
            "Mandate sets acs:CurrentTime from its own clock"
            if key == "acs:currenttime"
            else "acs: keys are set by Mandate from the connection; only an enforcement "
            "point may vouch for acs:SourceIp, acs:SecureTransport and acs:MFAPresent"
        )
        errors.append(FieldError(f"context.{key}", reason))
    if errors:
        raise InvalidInput(errors, code="InvalidParameter.Context")
    return supplied


_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
ENCODED_ANSWERS_BYTES = 16 * 1024 * 1024
"""The budget of the answers' encodings (estimated: ``_ENCODED_ENTRY_BYTES`` plus the bytes)."""
_ENCODED_ENTRY_BYTES = 500
"""What one kept encoding costs beyond its bytes: its dict slot, its tuple, and the ``Answer``
it keeps alive (its decision, matched statements, chain); about 450 measured with tracemalloc
in tests/unit/test_encoded_answers.py."""


class _Encodings:
    """The constant part of each memoised answer's JSON, keyed by the ``Answer`` object (its
    id, with the object kept beside it so that a recycled id never matches): a memo hit then
    costs one lookup and a join instead of rebuilding and encoding the whole answer.

    Bounded in bytes, not entries, since it keeps each answer alive after the memo dropped
    it: when full it starts again empty, and a memoised answer asked again is encoded again.
    Answers that depend on the request context are never memoised, so never kept.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.filled = 0
        self.entries: dict[int, tuple[Answer, bytes]] = {}

    def keep(self, answer: Answer, prefix: bytes) -> None:
        cost = _ENCODED_ENTRY_BYTES + len(prefix)
        if cost > self.budget:
            return
        self.filled += cost
        if self.filled > self.budget:
            self.entries, self.filled = {}, cost
        self.entries[id(answer)] = (answer, prefix)


_encodings = _Encodings(ENCODED_ANSWERS_BYTES)


def _answer_prefix(answer: Answer, *, cache: bool = True) -> bytes:
    cached = _encodings.entries.get(id(answer))
    if cached is not None and cached[0] is answer:
        return cached[1]
    prefix = _encode_json(answer_json(answer))[:-1].encode()
    if cache and not answer.decision.context_dependent:
        _encodings.keep(answer, prefix)
    return prefix


def _answer_response(answer: Answer, runtime: Runtime, *, cache: bool = True) -> Response:
    """The answer as JSON: its constant part (encoded once) plus the time and position.

    ``cache``: False for an answer the memo never holds (a new object each time), so that
    encoding it once cannot help.
    """
    tail = f',"evaluated_at":"{rfc3339(datetime.now(UTC))}","position":{runtime.index.position}}}'
    return Response(
        _answer_prefix(answer, cache=cache) + tail.encode(), media_type="application/json"
    )


def _refused(reason: str, runtime: Runtime) -> dict[str, Any]:
    return {
        **refusal_json(reason),
        "evaluated_at": rfc3339(datetime.now(UTC)),
        "position": runtime.index.position,
        "authenticated": False,
    }


def _outsider(caller: Caller) -> Forbidden:
    """The one refusal for a question about another account's principal or an unknown one.

    It names neither the principal nor its account, so its body is the same byte for byte
    whether the principal exists or not: "could P" always depends on P's account's own
    facts (whether P exists, its policies, its groups), which an outsider may not learn —
    except through its own roles, on its own resources (``_asks_through_own_roles``).
    """
    return Forbidden(
        f"{caller.arn} may ask only about principals of its own account, about another "
        "account's only on its own account's resources (through its roles), "
        "or decide for credentials it was given"
    )


def _asks_through_own_roles(
    runtime: Runtime, caller: Caller, account_id: str, arn: str, resource: str
) -> str | None:
    """The caller's account when it may hear "could P" only through that account's roles.

    None: the caller may hear the whole answer (``_may_ask_about``). An outsider — the
    root of the resource's account O, or a caller of O allowed ``ram:ReviewAccess`` on the
    resource, as an access review needs — about a principal of another account A, on O's
    own resource, is answered only through O's roles: an Allow shows what A granted
    towards O (P, its ``sts:AssumeRole`` on O's role, a delegation reaching P), which an
    access review of O shows too; anything else is one constant body (``_withheld``).
    Any other resource is the one 403, decided before P is looked up.
    """
    if caller.is_admin or caller.account_id == account_id:
        _may_ask_about(runtime, caller, account_id, arn, resource)
        return None
    owner = account_of_resource(resource)
    if owner is None or owner != caller.account_id:
        raise _outsider(caller)
    authorize_management(runtime, caller, owner, "ram:ReviewAccess", resource)
    return owner


_WITHHELD = Decision(DecisionKind.IMPLICIT_DENY, (), False)


def _withheld(owner: str, principal: str) -> Answer:
    """The outsider's one non-Allow answer: the same whether P exists, may not assume any
    role of ``owner``, is refused by an explicit Deny, or its account is unknown (no
    statement, no chain; ``principal`` as the caller wrote it)."""
    reason = f"no role of account {owner} that {principal} could assume allows it"
    return Answer(_WITHHELD, (), None, reason)


def _may_ask_about(
    runtime: Runtime,
    caller: Caller,
    account_id: str,
    arn: str,
    resource: str,
    *,
    proven: bool = False,
) -> None:
    """Deciding for someone else needs the admin, the subject's root, or ram:Authorize.

    ``proven``: the caller presented the subject's credentials (an enforcement point), so
    the root of the resource's account may have them decided too — that tells nothing the
    credentials did not. A bare ARN of another account is refused (``_outsider``).
    """
    if caller.is_admin:
        return
    if caller.account_id == account_id:
        if caller.kind != "root":
            authorize_management(runtime, caller, account_id, "ram:Authorize", arn)
        return
    if proven and caller.kind == "root" and caller.account_id == account_of_resource(resource):
        return
    raise _outsider(caller)


async def authorize(request: StarletteRequest) -> Response:
    runtime: Runtime = request.app.state.runtime
    await wait_for_min_position(runtime, request.headers.get("min-position"))
    body = parse_body(AuthorizeBody, await request.body())
    # before authenticating (docs/design.md §4): credentials issued at n work with min_position n
    await ensure_position(runtime, body.min_position, "min_position")
    caller = authenticate(request, runtime)
    if body.credentials is not None and body.principal is not None:
        raise InvalidInput(
            FieldError("principal", "give either credentials or principal, not both")
        )
    if body.as_of is not None:
        return JSONResponse(await _authorize_as_of(runtime, caller, body, body.as_of))
    index = runtime.index
    if body.credentials is None and body.principal is None:
        supplied = _supplied_context(body.context, vouching=False)
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
        answer = index.decide_for(credential, Request.make(body.action, body.resource, context))
    else:
        supplied = _supplied_context(body.context, vouching=True)
        context = {"acs:currenttime": datetime.now(UTC), "acs:mfapresent": False, **supplied}
        asked = Request.make(body.action, body.resource, context)
        if body.credentials is not None:
            client = body.credentials
            try:
                credential = authenticate_keys(
                    runtime, client.access_key_id, client.access_key_secret, client.security_token
                )
            except AuthenticationFailed as failure:
                return JSONResponse(_refused(_refusal(runtime, caller, client, failure), runtime))
            _may_ask_about(
                runtime, caller, credential.account_id, credential.arn, body.resource, proven=True
            )
            answer = index.decide_for(credential, asked)
        else:
            assert body.principal is not None
            found = _principal_answer(runtime, caller, body.principal, asked)
            if isinstance(found, str):
                refusal = _refused(found, runtime)
                return JSONResponse(refusal | {"authenticated": None})
            answer, memoised = found
            runtime.decision_counts[counted(answer)] += 1
            return _answer_response(answer, runtime, cache=memoised)
    runtime.decision_counts[counted(answer)] += 1
    return _answer_response(answer, runtime)


def counted(answer: Answer) -> tuple[str, str]:
    """The key ``/metrics`` counts a decision under: its outcome and the policy layer of the
    first statement that matched (``root``: an account root's Allow, which no statement
    bounds; ``none``: nothing matched)."""
    decision = answer.decision
    if decision.matched:
        return decision.decision.value, decision.matched[0].layer.value
    return decision.decision.value, "root" if decision.allowed else "none"


def _principal_answer(
    runtime: Runtime, caller: Caller, principal: str, request: Request
) -> tuple[Answer, bool] | str:
    """ "Could P do it?" for an ARN or a session's key id: directly, or through a role.

    Returns the answer and whether the memo holds it, or why there is no live principal to
    answer for. An outsider hears only the answer through its own roles.
    """
    index = runtime.index
    if principal.startswith(STS_PREFIX):
        view = index.sessions.get(principal)
        account_id = view.record.account_id if view else None
        if view is None or account_id is None:
            if not caller.is_admin:
                raise _outsider(caller)
            return f"no session {principal} is known"
        _may_ask_about(runtime, caller, account_id, view.record.arn, request.resource)
        try:
            subject, generation = index.session_subject(principal, datetime.now(UTC))
        except SessionInvalid as dead:
            return str(dead)
        answer = index.decide(subject, request, memo_key=principal, generation=generation)
        return answer, True
    parsed = parse_principal_arn(principal)
    owner = _asks_through_own_roles(runtime, caller, parsed.account_id, principal, request.resource)
    found = index.principal_for_arn(principal)
    if owner is not None:
        through = index.answer_through_roles(found[1], request) if found else None
        return through or _withheld(owner, principal), False
    if found is None:
        return f"no live principal is named {principal}"
    memo_key, subject = found
    answer = index.decide(subject, request, memo_key=memo_key)
    if answer.allowed:
        return answer, True
    through = index.answer_through_roles(subject, request)
    return (through, False) if through else (answer, True)


def _refusal(
    runtime: Runtime, caller: Caller, client: ClientCredentials, failure: AuthenticationFailed
) -> str:
    """Why the client's credentials failed — in detail only to those who may know.

    The reason tells whether a key id exists, so only the admin and callers of the key's
    own account hear it; anyone else learns only that the credentials were refused.
    """
    index = runtime.index
    key = index.keys.get(client.access_key_id)
    session = index.sessions.get(client.access_key_id)
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
        [PolicySet.of(compiled, Layer.IDENTITY)], Request.make(body.action, body.resource, context)
    )
    return JSONResponse(
        {
            "decision": decision.decision.value,
            "allowed": decision.decision is DecisionKind.ALLOW,
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
        context = {**_supplied_context(body.context, vouching=False), **connection_context(caller)}
        position = await history.reach_temporal_head(runtime)
        found = await anyio.to_thread.run_sync(
            history.principal_of_credential, runtime, caller.credential, at
        )
    else:
        context = {"acs:mfapresent": False, **_supplied_context(body.context, vouching=True)}
        if body.credentials is not None:
            client = body.credentials
            if client.security_token is not None:
                # The session may have ended since: its signature and secret still prove
                # which session it is, and the temporal index says whether it could act then.
                try:
                    record = runtime.index.verify_session_credentials(
                        client.access_key_id, client.access_key_secret, client.security_token
                    )
                except AuthenticationFailed as failure:
                    return _refused(_refusal(runtime, caller, client, failure), runtime)
                _may_ask_about(
                    runtime, caller, record.account_id, record.arn, body.resource, proven=True
                )
                position = await history.reach_temporal_head(runtime)
                found = await anyio.to_thread.run_sync(
                    runtime.as_of.session_at, record.access_key_id, at
                )
                return history.answer_as_of(
                    runtime, found, body.action, body.resource, context, at, position
                )
            try:
                credential = authenticate_keys(
                    runtime, client.access_key_id, client.access_key_secret, None
                )
            except AuthenticationFailed as failure:
                return _refused(_refusal(runtime, caller, client, failure), runtime)
            _may_ask_about(
                runtime, caller, credential.account_id, credential.arn, body.resource, proven=True
            )
            position = await history.reach_temporal_head(runtime)
            status = await anyio.to_thread.run_sync(
                runtime.as_of.key_status, credential.access_key_id, at
            )
            if status != "Active":
                why = "did not exist then" if status is None else f"was {status} then"
                found = (None, f"the AccessKey {why}")
            else:
                found = await anyio.to_thread.run_sync(
                    history.principal_of_credential, runtime, credential, at
                )
        elif body.principal is not None and body.principal.startswith(STS_PREFIX):
            position = await history.reach_temporal_head(runtime)
            issued = await anyio.to_thread.run_sync(history.session_record, runtime, body.principal)
            if issued is None:
                if not caller.is_admin:
                    raise _outsider(caller)
                found = (None, f"no session {body.principal} was ever issued")
            else:
                _may_ask_about(runtime, caller, issued.account_id, issued.arn, body.resource)
                found = await anyio.to_thread.run_sync(runtime.as_of.session_at, body.principal, at)
        else:
            assert body.principal is not None
            principal = body.principal
            parsed = parse_principal_arn(principal)
            owner = _asks_through_own_roles(
                runtime, caller, parsed.account_id, principal, body.resource
            )
            position = await history.reach_temporal_head(runtime)
            found = await anyio.to_thread.run_sync(runtime.as_of.principal_for_arn, principal, at)
            if owner is not None:
                request = Request.make(
                    body.action, body.resource, {**context, "acs:currenttime": at}
                )
                then = found[0]
                through = None
                if then is not None:
                    through = await anyio.to_thread.run_sync(
                        runtime.as_of.through_roles, then, request
                    )
                return {
                    **answer_json(through or _withheld(owner, principal)),
                    "as_of": rfc3339(at),
                    "evaluated_at": rfc3339(datetime.now(UTC)),
                    "position": position,
                }
            # "could P": directly, or through a role P could assume then (as live); reads SQL
            return await anyio.to_thread.run_sync(
                lambda: history.answer_as_of(
                    runtime, found, body.action, body.resource, context, at, position, could=True
                )
            )
    return history.answer_as_of(runtime, found, body.action, body.resource, context, at, position)


authorize_route = Route("/v1/authorize", authorize, methods=["POST"], name="authorize")


def authorize_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe the Starlette route in the OpenAPI document FastAPI generates."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body_schema = AuthorizeBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(body_schema.pop("$defs", {}))
    components["AuthorizeBody"] = body_schema
    schema.setdefault("paths", {})["/v1/authorize"] = {
        "post": {
            "tags": ["decisions"],
            "summary": "Decide a request: for the caller, for credentials, or for a principal",
            "operationId": "authorize",
            "parameters": [
                {
                    "name": "Min-Position",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "integer"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/AuthorizeBody"}}
                },
            },
            "responses": {
                "200": {"description": "The decision, with its reason; a denial is an answer"},
                "400": {"description": "Invalid input (application/problem+json)"},
                "401": {"description": "No, bad or revoked credentials"},
                "403": {"description": "The caller may not ask about that principal"},
                "503": {"description": "Min-Position not reached (Retry-After)"},
            },
        }
    }
    return schema
