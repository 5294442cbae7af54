"""``create_app()``: the FastAPI application, its lifespan and its routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mandate.api.console import install_console
from mandate.api.idempotency import install_idempotency
from mandate.api.middleware.body_limit import BodyLimitMiddleware
from mandate.api.middleware.input_guard import InputGuardMiddleware
from mandate.api.middleware.request_ids import RequestIdMiddleware
from mandate.api.observability.logs import configure_logging, flush_request_lines
from mandate.api.observability.metrics import RequestObserver
from mandate.api.problems import install_problem_handlers
from mandate.api.routers import (
    access_review,
    accounts,
    audit,
    decisions,
    directory_handshakes,
    entrustments,
    federation,
    groups,
    health,
    history,
    point_in_time,
    policies,
    resource_directory,
    resource_policies,
    roles,
    security_events,
    sts,
    users,
    what_if,
)
from mandate.api.rpc.endpoint import rpc_router
from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.api.signing import ReplayGuard

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app; the lifespan rebuilds the decision index and starts the follower."""
    owned = runtime is None
    the_runtime = runtime or Runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        the_runtime.start()
        try:
            yield
        finally:
            flush_request_lines()  # the last requests' lines are written before we go
            if owned:
                the_runtime.stop()

    app = FastAPI(
        title="Mandate",
        version="0.1.0",
        summary="An event-sourced delegation ledger: RAM/STS-style access management.",
        lifespan=lifespan,
    )
    app.state.runtime = the_runtime
    # One clock-and-nonce memory for every signed request this process serves (/ and /v1).
    # On PostgreSQL, also the nonces every process claims (a replay to another one refused).
    app.state.signature_guard = ReplayGuard(
        shared=getattr(the_runtime, "nonces", None),
        share_all=the_runtime.settings.shared_nonces == "all",
    )
    # innermost: it reads a write's body (bounded by the limit below) and records its answer
    install_idempotency(app, the_runtime.idempotency)
    app.add_middleware(InputGuardMiddleware)  # inside the request id: its 400s echo the id
    # outside every middleware that reads the body: a body over the limit is never read
    app.add_middleware(BodyLimitMiddleware, max_bytes=the_runtime.settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    # outermost: times and logs every request, 413s and 400s included
    app.add_middleware(RequestObserver)
    configure_logging(the_runtime.settings.log_format, requests=the_runtime.settings.log_requests)
    install_problem_handlers(app)

    # The decision hot path first: Starlette matches routes in order.
    app.router.routes.insert(0, decisions.authorize_route)
    app.include_router(health.router)
    app.include_router(accounts.router)
    app.include_router(users.router)
    app.include_router(groups.router)
    app.include_router(roles.router)
    app.include_router(sts.router)
    app.include_router(federation.sts_router)  # AssumeRoleWithOIDC: the token is the credential
    app.include_router(federation.providers_router)
    app.include_router(entrustments.router)
    app.include_router(policies.system_router)
    app.include_router(policies.router)
    app.include_router(resource_policies.router)
    app.include_router(resource_directory.router)
    app.include_router(directory_handshakes.router)
    app.include_router(decisions.router)
    app.include_router(history.router)
    app.include_router(point_in_time.router)  # lists as of an instant (the audit console)
    app.include_router(access_review.router)
    app.include_router(what_if.router)  # a change rehearsed on a copy: writes nothing
    app.include_router(audit.router)
    app.include_router(security_events.router)
    # The Alibaba Cloud OpenAPI RPC dialect (RAM, STS) at "/", for the SDKs.
    app.include_router(rpc_router(guard=app.state.signature_guard))
    install_console(app)  # the audit console's static page at /console/ (no API of its own)
    return app
