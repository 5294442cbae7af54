"""The error answers every ``/v1`` route can give, as the OpenAPI document states them.

``api.problems`` turns every refusal into ``application/problem+json``; this module says so in
the document (each router passes ``responses=PROBLEM_RESPONSES``), so a client generated from
it — and schemathesis' conformance checks — know each status, its media type, its body and
its headers. Without it FastAPI documented only ``422`` with its own validation-error body,
which the app never sends (a malformed request is a ``400`` problem).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Header, Security
from fastapi.openapi.models import HTTPBase, HTTPBearer
from fastapi.params import Depends
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, ConfigDict, WithJsonSchema

from mandate.api.problems import PROBLEM_JSON

__all__ = ["AUTHENTICATED", "PROBLEM_RESPONSES", "MinPositionHeader", "Problem", "ProblemField"]


class ProblemField(BaseModel):
    """One refused field of a ``400``: where (``body.user_name``, ``Min-Position``) and why."""

    field: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is RAM's error code where one applies
    (``EntityNotExist.User``, ``SignatureDoesNotMatch``); other members are named per status
    (``errors``, ``decision``, ``applied_position``, ``position``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
    errors: list[ProblemField] | None = None


def _problem(description: str, **headers: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "description": description,
        "model": Problem,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if headers:
        entry["headers"] = {
            name: {"description": why, "required": True, "schema": {"type": "string"}}
            for name, why in headers.items()
        }
    return entry


PROBLEM_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: _problem("Invalid input: a malformed request, field or policy document (``errors``)"),
    401: _problem(
        "No, malformed, bad, expired or revoked credentials or signature",
        **{"WWW-Authenticate": "The scheme to authenticate with"},
    ),
    403: _problem("The caller may not make this call"),
    404: _problem("No such entity (``code``: RAM's EntityNotExist.*)"),
    409: _problem("Conflicts with the entity's state, a precondition or a limit"),
    413: _problem("The body is over the size limit (not read)"),
    422: _problem("The request cannot be processed as sent"),
    429: _problem(
        "Too many failed authentications, or over a request budget: retry later",
        **{"Retry-After": "Seconds to wait before retrying"},
    ),
    503: _problem(
        "Position not reached, busy, or the store unavailable: retry",
        **{"Retry-After": "Seconds to wait before retrying"},
    ),
}
"""The statuses ``api.problems`` and the middlewares answer with, for ``APIRouter(responses=)``."""


class _Stated(SecurityBase):
    """A security scheme the document states, checked elsewhere: ``api.deps`` authenticates
    (Basic, ACS3 or the admin's bearer token, with its own answers); this dependency only
    names the scheme in the OpenAPI document and does nothing when a request runs."""

    def __init__(self, model: HTTPBase | HTTPBearer, scheme_name: str) -> None:
        self.model = model
        self.scheme_name = scheme_name

    async def __call__(self) -> None:
        return None


AUTHENTICATED: Final[list[Depends]] = [
    Security(
        _Stated(
            HTTPBase(
                scheme="basic",
                description="AccessKeyId:AccessKeySecret (STS: with X-Security-Token); "
                "or an ACS3-HMAC-SHA256 signature of the request",
            ),
            "AccessKey",
        )
    ),
    Security(
        _Stated(
            HTTPBearer(description="The platform admin's token (MANDATE_ADMIN_TOKEN)"),
            "AdminToken",
        )
    ),
]
"""For ``APIRouter(dependencies=)``: each operation states that it needs one of these (a
public one says ``openapi_extra={"security": []}``); a call without either is a 401."""


MinPositionHeader = Annotated[
    str | None,
    Header(alias="Min-Position"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9]{1,18}$",
            "description": "Answer only once this process has applied the log up to this "
            "position (a write's `position`); 400 beyond the head, 503 if not reached in time",
        }
    ),
]
"""The ``Min-Position`` header as ``api.middleware.input_guard`` accepts it, stated in the
document (FastAPI's own schema for ``str | None`` said any text, or null)."""
