"""Every error leaves as ``application/problem+json``, mapped from its class in one place.

Routes never build error responses: domain errors, authentication and authorisation
refusals, validation failures and store outages are all translated here.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from mandate.api.abuse import Throttled
from mandate.api.observability.metrics import STORE_ERRORS
from mandate.api.outages import StoreUnavailable, WriteNotApplied
from mandate.api.schemas import field_path
from mandate.domain.common.errors import Conflict, DomainError, InvalidInput, NotFound, NotPermitted

__all__ = [
    "Busy",
    "Forbidden",
    "PositionNotReached",
    "ProjectionStalled",
    "Unauthenticated",
    "install_problem_handlers",
    "problem",
    "unavailable",
]

PROBLEM_JSON = "application/problem+json"


class Unauthenticated(Exception):
    """No, bad, expired or revoked credentials (→ 401, with the reason; ``code``: RAM's code
    of a refused signature, e.g. ``SignatureDoesNotMatch``)."""

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Forbidden(Exception):
    """The caller may not make this call (→ 403)."""

    def __init__(self, reason: str, *, decision: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.decision = decision


class PositionNotReached(Exception):
    """``Min-Position`` is not applied here yet (→ 503 with Retry-After)."""

    def __init__(self, wanted: int, applied: int, *, where: str = "here") -> None:
        super().__init__(f"position {wanted} is not yet applied {where} (applied: {applied})")
        self.wanted = wanted
        self.applied = applied


class Busy(Exception):
    """This process is at its limit for an expensive kind of request (→ 503 with Retry-After)."""

    def __init__(self, reason: str, *, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ProjectionStalled(Exception):
    """A projection cannot apply an event of the log (→ 503, naming the position and why)."""

    def __init__(self, projection: str, reason: str) -> None:
        super().__init__(f"the {projection} projection is stalled at {reason}")


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def unavailable(title: str, detail: str, retry_after: int, **extra: Any) -> JSONResponse:
    """A 503 the client may retry after ``retry_after`` seconds (the ``Retry-After`` header)."""
    return problem(503, title, detail, headers={"Retry-After": str(retry_after)}, **extra)


_DOMAIN_PROBLEMS: tuple[tuple[type[DomainError], int, str], ...] = (
    (NotFound, 404, "Not found"),
    (NotPermitted, 403, "Forbidden"),
    (Conflict, 409, "Conflict"),  # PreconditionFailed and LimitExceeded included
)
"""The status and title of a domain error by its class; any other one is a 400."""


def _retry_after(request: Request) -> int:
    runtime = getattr(request.app.state, "runtime", None)
    return int(getattr(getattr(runtime, "settings", None), "store_retry_after", 2))


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": field_path(tuple(e.get("loc", ()))), "reason": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        return problem(
            400,
            "Invalid input",
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
            errors=errors,
        )

    @app.exception_handler(InvalidInput)
    async def _invalid_input(_: Request, exc: InvalidInput) -> JSONResponse:
        errors = [{"field": e.field, "reason": e.reason} for e in exc.errors]
        return problem(400, "Invalid input", exc.detail, errors=errors, code=exc.code)

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        status, title = next(
            ((s, t) for cls, s, t in _DOMAIN_PROBLEMS if isinstance(exc, cls)),
            (400, "Invalid request"),
        )
        return problem(status, title, exc.detail, code=exc.code)

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_: Request, exc: Unauthenticated) -> JSONResponse:
        return problem(
            401,
            "Unauthenticated",
            exc.reason,
            headers={"WWW-Authenticate": 'Basic realm="mandate"'},
            code=exc.code,
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return problem(403, "Forbidden", exc.reason, decision=exc.decision)

    @app.exception_handler(PositionNotReached)
    async def _not_reached(_: Request, exc: PositionNotReached) -> JSONResponse:
        return unavailable("Position not reached", str(exc), 1, applied_position=exc.applied)

    @app.exception_handler(Busy)
    async def _busy(_: Request, exc: Busy) -> JSONResponse:
        return unavailable("Busy", str(exc), exc.retry_after)

    @app.exception_handler(Throttled)
    async def _throttled(_: Request, exc: Throttled) -> JSONResponse:
        return problem(
            429,
            "Too many requests",
            exc.detail,
            headers={"Retry-After": str(exc.retry_after)},
            code="Throttling.User",
            limit=exc.reason,
        )

    @app.exception_handler(WriteNotApplied)
    async def _write_not_applied(_: Request, exc: WriteNotApplied) -> JSONResponse:
        return unavailable("Write committed, not yet applied", str(exc), 1, position=exc.position)

    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The store's pools wait a bounded time (MANDATE_STORE_TIMEOUT) and retry at most
        # once, so this answers within seconds of the outage, never after a minute.
        STORE_ERRORS.labels(type(exc).__name__).inc()
        return unavailable(
            "Store unavailable",
            f"the event store cannot be reached: {exc}",
            _retry_after(request),
            code="StoreUnavailable",
        )

    @app.exception_handler(ProjectionStalled)
    async def _stalled(_: Request, exc: ProjectionStalled) -> JSONResponse:
        return unavailable("Projection stalled", str(exc), 30)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
        return problem(exc.status_code, str(exc.detail), str(exc.detail), headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request, first: str) -> str:
    """Every method a route serves at the request's path. Starlette's 405 names only the
    methods of the first route whose path matched (``Allow: POST`` on ``…/users``, which
    answers GET too); RFC 9110 wants all of them. Each method is tried against the app's
    routes as the router itself would match it (included routers too)."""
    methods = {m.strip() for m in first.split(",") if m.strip()}
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            methods.add(method)
    return ", ".join(sorted(methods))
