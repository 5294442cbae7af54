"""OIDC identity providers over RPC: IMS 2019-08-15, the /v1 federation router's commands.

Same ledger commands (``create_oidc_provider``, ``update_oidc_provider``,
``delete_oidc_provider``), the same reads (one provider from the log by its name claim; the
listing's names from the temporal index at now, as ``GET …/oidc-providers``) and the same
authorisation: ``ram:<Action>`` on ``acs:ram::<account>:oidc-provider/<name>``. The actions
RAM has beyond /v1's five (Add/RemoveClientIdToOIDCProvider, Add/RemoveFingerprint…) run
the ledger's one-member commands (``add_oidc_client_id``, ``remove_oidc_client_id``,
``add_oidc_fingerprint``, ``remove_oidc_fingerprint``), authorised under their own RAM action
names, so a policy written for Alibaba Cloud grants the same here.

IMS's shapes: ``ClientIds`` and ``Fingerprints`` are comma-separated text, the answer's
``OIDCProvider`` carries ``Arn``, ``OIDCProviderName``, ``IssuerUrl``, ``ClientIds``,
``Fingerprints``, ``Description``, ``IssuanceLimitTime``, ``CreateDate``, ``UpdateDate``.

One difference, said rather than hidden: RAM finds a provider's keys from its issuer;
Mandate verifies tokens only with keys it is given (the domain does no discovery). Create
therefore takes one of two parameters RAM does not have: ``JWKS`` (the issuer's public JWKS,
inline JSON) or ``JwksUrl`` (https, on the issuer's host); Update takes them too, to rotate.
Without either, CreateOIDCProvider is refused ``InvalidParameter.JWKS`` saying so.

Add/Remove change one member on the provider as it is when saved (the command re-runs on a
concurrent save), so two concurrent changes of one provider's list both survive; Update
replaces whole lists, as /v1's PATCH does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import anyio.from_thread
from pydantic import Field

from mandate.api.routers.history import reach_temporal_head
from mandate.api.rpc.answers import rpc_time
from mandate.api.rpc.errors import RpcError
from mandate.api.rpc.params import JsonDocument, PagedParams, RpcInt, RpcParams
from mandate.api.rpc.recoding import recoded
from mandate.api.rpc.registry import IMS, RpcContext, rpc_action
from mandate.domain.common.errors import NotFound
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.federation import read_oidc_provider
from mandate.domain.ledger.results import Written
from mandate.domain.sts.oidc_providers import OIDCProvider, oidc_provider_arn
from mandate.projections.history.as_of_listing import Held, held_at

__all__: list[str] = []

_CODES: Final = {"EntityNotExist.Oidc-provider": "EntityNotExist.OIDCProvider"}
"""The engine's generic code for a name it does not hold → IMS's."""

_NO_KEYS = (
    "Mandate verifies ID tokens only with keys it is given and does not discover them from "
    "IssuerUrl: pass JWKS (the issuer's public JWKS, as JSON) or JwksUrl (an https URL on "
    "the issuer's host)"
)


def _split(text: str | None) -> list[str] | None:
    """IMS's comma-separated list (``a,b``), blanks dropped; None when not given."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _provider_body(provider: OIDCProvider) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Arn": provider.arn,
        "OIDCProviderName": provider.provider_name,
        "IssuerUrl": provider.issuer_url,
        "ClientIds": ",".join(provider.client_ids),
        "Fingerprints": ",".join(provider.fingerprints),
        "IssuanceLimitTime": provider.issuance_limit_time,
        "CreateDate": rpc_time(provider.created_on),
        "UpdateDate": rpc_time(provider.modified_on),
    }
    if provider.description is not None:
        body["Description"] = provider.description
    return body


def _answer(ctx: RpcContext, name: str) -> dict[str, Any]:
    provider = read_oidc_provider(ctx.runtime.ledger, ctx.account_id, name)
    return {"OIDCProvider": _provider_body(provider)}


class _Keys(RpcParams):
    """Mandate's two parameters RAM has not: where the provider's public keys are."""

    jwks: JsonDocument | None = Field(default=None, alias="JWKS", max_length=16_384)
    jwks_url: str | None = Field(default=None, max_length=1024)


class CreateParams(_Keys):
    oidc_provider_name: str = Field(alias="OIDCProviderName")
    issuer_url: str
    client_ids: str | None = None
    fingerprints: str | None = None
    issuance_limit_time: RpcInt | None = None
    description: str | None = None


@rpc_action("CreateOIDCProvider", IMS, CreateParams)
def create_oidc_provider(ctx: RpcContext, p: CreateParams) -> dict[str, Any]:
    account_id = ctx.account_id
    arn = oidc_provider_arn(account_id, p.oidc_provider_name)
    management = ctx.manage("ram:CreateOIDCProvider", arn)
    if p.jwks is None and p.jwks_url is None:
        raise RpcError(400, "InvalidParameter.JWKS", _NO_KEYS + ".")
    management.write(
        lambda ledger: ledger.create_oidc_provider(
            account_id,
            p.oidc_provider_name,
            issuer_url=p.issuer_url,
            client_ids=_split(p.client_ids) or [],
            jwks=p.jwks,
            jwks_url=p.jwks_url,
            fingerprints=_split(p.fingerprints),
            issuance_limit_time=p.issuance_limit_time,
            description=p.description,
        )
    )
    return _answer(ctx, p.oidc_provider_name)


class NameParams(RpcParams):
    oidc_provider_name: str = Field(alias="OIDCProviderName")


@rpc_action("GetOIDCProvider", IMS, NameParams)
def get_oidc_provider(ctx: RpcContext, p: NameParams) -> dict[str, Any]:
    arn = oidc_provider_arn(ctx.account_id, p.oidc_provider_name)
    ctx.authorize_read("ram:GetOIDCProvider", arn)
    return _answer(ctx, p.oidc_provider_name)


@rpc_action("ListOIDCProviders", IMS, PagedParams)
def list_oidc_providers(ctx: RpcContext, p: PagedParams) -> dict[str, Any]:
    """The providers alive now (the temporal index at now, as /v1 lists them), each read
    from the log for its whole state; one deleted between the two reads shows as listed."""
    account_id = ctx.account_id
    ctx.authorize_read("ram:ListOIDCProviders")
    runtime = ctx.runtime
    anyio.from_thread.run(reach_temporal_head, runtime)
    held = held_at(runtime.as_of.store, account_id, "oidc_provider", datetime.now(UTC))

    def render(h: Held) -> dict[str, Any]:
        try:
            return _provider_body(read_oidc_provider(runtime.ledger, account_id, h.name))
        except NotFound:  # deleted since the listing was read: as the listing had it
            return {
                "Arn": oidc_provider_arn(account_id, h.name),
                "OIDCProviderName": h.name,
                "IssuerUrl": h.details.get("issuer_url"),
                "ClientIds": ",".join(h.details.get("client_ids") or ()),
                "IssuanceLimitTime": h.details.get("issuance_limit_time"),
                "UpdateDate": rpc_time(h.since),
            }

    return p.page(held, lambda h: h.name, render, "OIDCProviders", "OIDCProvider")


class UpdateParams(_Keys):
    oidc_provider_name: str = Field(alias="OIDCProviderName")
    client_ids: str | None = None
    issuance_limit_time: RpcInt | None = None
    new_description: str | None = None


@rpc_action("UpdateOIDCProvider", IMS, UpdateParams)
def update_oidc_provider(ctx: RpcContext, p: UpdateParams) -> dict[str, Any]:
    account_id = ctx.account_id
    arn = oidc_provider_arn(account_id, p.oidc_provider_name)
    management = ctx.manage("ram:UpdateOIDCProvider", arn)
    with recoded(_CODES):
        management.write(
            lambda ledger: ledger.update_oidc_provider(
                account_id,
                p.oidc_provider_name,
                client_ids=_split(p.client_ids),
                issuance_limit_time=p.issuance_limit_time,
                description=p.new_description,
                jwks=p.jwks,
                jwks_url=p.jwks_url,
            )
        )
    return _answer(ctx, p.oidc_provider_name)


@rpc_action("DeleteOIDCProvider", IMS, NameParams)
def delete_oidc_provider(ctx: RpcContext, p: NameParams) -> dict[str, Any]:
    account_id = ctx.account_id
    arn = oidc_provider_arn(account_id, p.oidc_provider_name)
    management = ctx.manage("ram:DeleteOIDCProvider", arn)
    with recoded(_CODES):
        management.write(
            lambda ledger: ledger.delete_oidc_provider(account_id, p.oidc_provider_name)
        )
    return {}


# -- one client id or fingerprint at a time ------------------------------------------------
class ClientIdParams(NameParams):
    client_id: str


class FingerprintParams(NameParams):
    fingerprint: str


_LIST_COMMANDS: Final[dict[tuple[str, bool], Callable[[Ledger, str, str, object], Written]]] = {
    ("client_ids", True): Ledger.add_oidc_client_id,
    ("client_ids", False): Ledger.remove_oidc_client_id,
    ("fingerprints", True): Ledger.add_oidc_fingerprint,
    ("fingerprints", False): Ledger.remove_oidc_fingerprint,
}


def _change(ctx: RpcContext, action: str, name: str, field: str, value: str, add: bool) -> None:
    """Add ``value`` to (or remove it from) the provider's ``field`` list (``client_ids``,
    ``fingerprints``) by the ledger's one-member command, authorised as ``ram:<action>``:
    the change is applied to the provider as it is when saved, so a concurrent change of
    the same list is kept. Adding one present (409 ``EntityAlreadyExists.OIDCProvider.…``),
    or removing one absent (404 ``EntityNotExist.OIDCProvider.…``), writes nothing."""
    account_id = ctx.account_id
    management = ctx.manage(f"ram:{action}", oidc_provider_arn(account_id, name))
    command = _LIST_COMMANDS[field, add]
    with recoded(_CODES):
        management.write(lambda ledger: command(ledger, account_id, name, value))


@rpc_action("AddClientIdToOIDCProvider", IMS, ClientIdParams)
def add_client_id(ctx: RpcContext, p: ClientIdParams) -> dict[str, Any]:
    name = p.oidc_provider_name
    _change(ctx, "AddClientIdToOIDCProvider", name, "client_ids", p.client_id, add=True)
    return _answer(ctx, name)


@rpc_action("RemoveClientIdFromOIDCProvider", IMS, ClientIdParams)
def remove_client_id(ctx: RpcContext, p: ClientIdParams) -> dict[str, Any]:
    name = p.oidc_provider_name
    _change(ctx, "RemoveClientIdFromOIDCProvider", name, "client_ids", p.client_id, add=False)
    return _answer(ctx, name)


@rpc_action("AddFingerprintToOIDCProvider", IMS, FingerprintParams)
def add_fingerprint(ctx: RpcContext, p: FingerprintParams) -> dict[str, Any]:
    name = p.oidc_provider_name
    _change(ctx, "AddFingerprintToOIDCProvider", name, "fingerprints", p.fingerprint, add=True)
    return _answer(ctx, name)


@rpc_action("RemoveFingerprintFromOIDCProvider", IMS, FingerprintParams)
def remove_fingerprint(ctx: RpcContext, p: FingerprintParams) -> dict[str, Any]:
    name = p.oidc_provider_name
    action = "RemoveFingerprintFromOIDCProvider"
    _change(ctx, action, name, "fingerprints", p.fingerprint, add=False)
    return _answer(ctx, name)
