"""``GET /`` and ``POST /``: the OpenAPI RPC endpoint, one route for every action.

Read the call → find the action → authenticate its signature → parse its parameters → run
it in a worker thread → answer. Any refusal along the way is rendered as RAM's error and
happens before the action runs, so a refused call writes nothing; an unexpected exception is
logged and answered ``InternalError`` (500) without its text.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mandate.api.middleware.request_ids import request_id_of
from mandate.api.rpc import auth
from mandate.api.rpc.answers import answer_response, error_response
from mandate.api.rpc.errors import RpcError, as_rpc_error
from mandate.api.rpc.registry import REGISTRY, Registry, RpcContext
from mandate.api.rpc.requests import read_call
from mandate.api.runtime import Runtime
from mandate.api.signing import ReplayGuard

__all__ = ["load_actions", "rpc_router"]

_LOG = logging.getLogger("mandate.rpc")
_ACTION_MODULE_PREFIXES = ("ram_", "sts_", "ims_", "rm_")


def load_actions() -> Registry:
    """Import every ``ram_*``/``sts_*``/``ims_*``/``rm_*`` module of this package (they
    register themselves)."""
    package = importlib.import_module("mandate.api.rpc")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith(_ACTION_MODULE_PREFIXES):
            importlib.import_module(f"mandate.api.rpc.{module.name}")
    return REGISTRY


def rpc_router(registry: Registry | None = None, guard: ReplayGuard | None = None) -> APIRouter:
    """The router serving ``/``, with its own nonce memory (one per app, i.e. per process)."""
    actions = registry if registry is not None else load_actions()
    replay = guard if guard is not None else ReplayGuard()
    router = APIRouter()

    async def rpc(request: Request) -> JSONResponse:
        request_id = request_id_of(request)
        host = request.headers.get("host", "")
        version: str | None = None
        try:
            call = await read_call(request)
            version = call.version
            action = actions.find(call.action, call.version)
            runtime: Runtime = request.app.state.runtime
            caller = (
                auth.anonymous_caller(request, runtime, request_id)
                if action.anonymous
                else auth.authenticate_call(request, call, runtime, replay)
            )
            ctx = RpcContext(runtime, caller, request_id)
            body: dict[str, Any] = await anyio.to_thread.run_sync(action.run, ctx, call.params)
        except Exception as exc:  # every refusal leaves in RAM's form
            error = as_rpc_error(exc)
            if error is None:
                _LOG.exception("RPC call failed unexpectedly (request %s)", request_id)
                error = RpcError(500, "InternalError")
            response = error_response(error, request_id, host, version)
            if error.retry_after is not None:
                response.headers["Retry-After"] = str(error.retry_after)
            return response
        return answer_response(request_id, body)

    router.add_api_route("/", rpc, methods=["GET", "POST"], include_in_schema=False, name="rpc")
    return router
