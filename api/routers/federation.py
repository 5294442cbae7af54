"""OIDC federation on ``/v1``: an account's OIDC providers, and AssumeRoleWithOIDC.

``POST/GET /v1/accounts/{a}/oidc-providers`` and ``GET/PATCH/DELETE …/{name}`` are RAM's
Create/List/Get/Update/DeleteOIDCProvider, authorised as ``ram:CreateOIDCProvider`` … on the
provider's ARN; one provider is read from the log, the listing from the temporal index (the
same read as ``…/as-of/oidc-providers`` at now).

``POST /v1/sts/assume-role-with-oidc`` is STS's AssumeRoleWithOIDC, anonymous as on STS and
guarded like an authentication (``api.oidc_exchange``, shared with the RPC action).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from mandate.api.deps import CallerDep, RuntimeDep, check_account_id, manage, peer
from mandate.api.middleware.request_ids import request_id_of
from mandate.api.oidc_exchange import exchange_token
from mandate.api.presenters import issued_session_json, rfc3339
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import PagingDep, authorize_read
from mandate.api.routers.history import reach_temporal_head
from mandate.domain.ledger.federation import read_oidc_provider
from mandate.domain.sts.oidc_providers import OIDCProvider, oidc_provider_arn
from mandate.projections.history.as_of_listing import held_at

__all__ = ["providers_router", "sts_router"]

providers_router = APIRouter(
    prefix="/v1/accounts/{account_id}/oidc-providers",
    tags=["federation"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)
sts_router = APIRouter(prefix="/v1/sts", tags=["sts"], responses=PROBLEM_RESPONSES)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateOIDCProviderBody(_Body):
    """RAM's CreateOIDCProvider; the keys inline as a public JWKS (the domain checks all)."""

    oidc_provider_name: str = Field(max_length=256)
    issuer_url: str = Field(max_length=1024)
    client_ids: list[str] = Field(max_length=100)
    jwks: dict[str, Any] | str | None = None
    """The public keys inline, or else ``jwks_url`` (https, on the issuer's host)."""
    jwks_url: str | None = Field(default=None, max_length=1024)
    fingerprints: list[str] | None = Field(default=None, max_length=20)
    issuance_limit_time: int | None = None
    description: str | None = Field(default=None, max_length=1024)


class AssumeRoleWithOIDCBody(_Body):
    """STS AssumeRoleWithOIDC; ranges are the domain's (STS's codes)."""

    oidc_provider_arn: str = Field(max_length=2048)
    role_arn: str = Field(max_length=2048)
    oidc_token: str = Field(max_length=20_000, pattern=r"^[\x21-\x7e]*$")
    """A compact JWS: printable ASCII (so 20,000 characters stay within the body limit)."""
    role_session_name: str = Field(max_length=256)
    duration_seconds: int | None = None
    policy: dict[str, Any] | str | None = None


def provider_json(provider: OIDCProvider) -> dict[str, Any]:
    return {
        "oidc_provider_name": provider.provider_name,
        "arn": provider.arn,
        "issuer_url": provider.issuer_url,
        "client_ids": list(provider.client_ids),
        "fingerprints": list(provider.fingerprints),
        "issuance_limit_time": provider.issuance_limit_time,
        "description": provider.description,
        "jwks": provider.jwks or None,
        "jwks_url": provider.jwks_url,
    }


@providers_router.post("", status_code=201)
def create_oidc_provider(
    account_id: str, body: CreateOIDCProviderBody, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = oidc_provider_arn(account_id, body.oidc_provider_name)
    position = manage(runtime, caller, account_id, "ram:CreateOIDCProvider", arn).write_position(
        lambda ledger: ledger.create_oidc_provider(
            account_id,
            body.oidc_provider_name,
            issuer_url=body.issuer_url,
            client_ids=body.client_ids,
            jwks=body.jwks,
            fingerprints=body.fingerprints,
            issuance_limit_time=body.issuance_limit_time,
            description=body.description,
            jwks_url=body.jwks_url,
        )
    )
    provider = read_oidc_provider(runtime.ledger, account_id, body.oidc_provider_name)
    return {**provider_json(provider), "position": position}


@providers_router.get("")
async def list_oidc_providers(
    account_id: str, caller: CallerDep, runtime: RuntimeDep, paging: PagingDep
) -> dict[str, Any]:
    """RAM's ListOIDCProviders: the providers alive now, from the temporal index (the same
    read as ``GET …/as-of/oidc-providers`` at now), by name; ``position`` is what was read."""
    check_account_id(account_id)
    authorize_read(runtime, caller, account_id, "ram:ListOIDCProviders")
    position = await reach_temporal_head(runtime)
    now = datetime.now(UTC)
    store = runtime.as_of.store
    held = await anyio.to_thread.run_sync(held_at, store, account_id, "oidc_provider", now)
    listed = paging.page(
        held,
        lambda h: h.name,
        lambda h: {
            "oidc_provider_name": h.name,
            "arn": oidc_provider_arn(account_id, h.name),
            "since": rfc3339(h.since),
            **h.details,
        },
    )
    return {**listed, "position": position}


@providers_router.get("/{provider_name}")
def get_oidc_provider(
    account_id: str, provider_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = oidc_provider_arn(account_id, provider_name)
    authorize_read(runtime, caller, account_id, "ram:GetOIDCProvider", arn)
    return provider_json(read_oidc_provider(runtime.ledger, account_id, provider_name))


class UpdateOIDCProviderBody(_Body):
    """RAM's UpdateOIDCProvider: each field given replaces the provider's (``jwks``: rotate)."""

    client_ids: list[str] | None = Field(default=None, max_length=100)
    jwks: dict[str, Any] | str | None = None
    jwks_url: str | None = Field(default=None, max_length=1024)
    fingerprints: list[str] | None = Field(default=None, max_length=20)
    issuance_limit_time: int | None = None
    description: str | None = Field(default=None, max_length=1024)


@providers_router.patch("/{provider_name}")
def update_oidc_provider(
    account_id: str,
    provider_name: str,
    body: UpdateOIDCProviderBody,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    arn = oidc_provider_arn(account_id, provider_name)
    position = manage(runtime, caller, account_id, "ram:UpdateOIDCProvider", arn).write_position(
        lambda ledger: ledger.update_oidc_provider(
            account_id,
            provider_name,
            client_ids=body.client_ids,
            jwks=body.jwks,
            fingerprints=body.fingerprints,
            issuance_limit_time=body.issuance_limit_time,
            description=body.description,
            jwks_url=body.jwks_url,
        )
    )
    provider = read_oidc_provider(runtime.ledger, account_id, provider_name)
    return {**provider_json(provider), "position": position}


@providers_router.delete("/{provider_name}")
def delete_oidc_provider(
    account_id: str, provider_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Ends the exchange of the provider's tokens; sessions already issued live on (as on
    RAM): revoke them on their role (``…/roles/{name}/revoke-sessions``)."""
    arn = oidc_provider_arn(account_id, provider_name)
    position = manage(runtime, caller, account_id, "ram:DeleteOIDCProvider", arn).write_position(
        lambda ledger: ledger.delete_oidc_provider(account_id, provider_name)
    )
    return {"oidc_provider_name": provider_name, "deleted": True, "position": position}


@sts_router.post("/assume-role-with-oidc", status_code=201)
def assume_role_with_oidc(
    body: AssumeRoleWithOIDCBody, request: Request, runtime: RuntimeDep
) -> dict[str, Any]:
    """No credentials: the token is one. Refusals are 401 with STS's code, never the token."""
    source_ip, secure = peer(request, runtime)
    federated = exchange_token(
        runtime,
        surface="v1",
        source_ip=source_ip,
        secure=secure,
        request_id=request_id_of(request),
        oidc_provider_arn=body.oidc_provider_arn,
        role_arn=body.role_arn,
        oidc_token=body.oidc_token,
        role_session_name=body.role_session_name,
        duration_seconds=body.duration_seconds,
        policy=body.policy,
    )
    issued, token = federated.issued, federated.token
    return {
        **issued_session_json(issued),
        "oidc_token_info": {
            "subject": token.subject,
            "issuer": token.issuer,
            "client_ids": list(token.audience),
            "issuance_time": rfc3339(token.issued_at),
            "expiration_time": rfc3339(token.expires_at),
        },
        "source_provider_arn": federated.provider_arn,
        "position": issued.position,
    }
