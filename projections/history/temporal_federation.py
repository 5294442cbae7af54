"""The temporal index's facts of OIDC identity providers: which an account had, and how, at T.

One fact per provider (kind ``oidc_provider``, subject its aggregate id, object its name),
opened by its registration, replaced by each update (client ids, key source, issuance
limit), closed by its deletion — so ``GET …/as-of/oidc-providers?as_of=T`` lists the
providers as they stood at T, and the live listing is the same read at now. The keys
themselves are not copied (public, but bulky): where they come from is (``jwks_url``, or
``inline``). Registered on the temporal index's ``HANDLERS`` when ``temporal_index`` loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mandate.domain.sts.oidc_providers import OIDCProvider
from mandate.projections.history import temporal_index

if TYPE_CHECKING:
    from mandate.projections.history.temporal_index import TemporalIndexProjection

__all__: list[str] = []  # the handlers register themselves

KIND = "oidc_provider"


def _payload(
    e: OIDCProvider.OIDCProviderCreated | OIDCProvider.OIDCProviderUpdated,
) -> dict[str, Any]:
    return {
        "client_ids": list(e.client_ids),
        "issuance_limit_time": e.issuance_limit_time,
        "keys": "url" if e.jwks_url is not None else "inline",
        "jwks_url": e.jwks_url,
        "description": e.description,
    }


def _created(
    index: TemporalIndexProjection, e: OIDCProvider.OIDCProviderCreated, position: int, at: int
) -> None:
    payload = {"issuer_url": e.issuer_url, **_payload(e)}
    index._open_fact(
        KIND, str(e.originator_id), e.provider_name, e.account_id, payload, position, at
    )


def _updated(
    index: TemporalIndexProjection, e: OIDCProvider.OIDCProviderUpdated, position: int, at: int
) -> None:
    index._replace_named(KIND, str(e.originator_id), position, at, **_payload(e))


def _deleted(
    index: TemporalIndexProjection, e: OIDCProvider.OIDCProviderDeleted, position: int, at: int
) -> None:
    index._close_all(KIND, str(e.originator_id), position, at)


temporal_index.HANDLERS.on(OIDCProvider.OIDCProviderCreated)(_created)
temporal_index.HANDLERS.on(OIDCProvider.OIDCProviderUpdated)(_updated)
temporal_index.HANDLERS.on(OIDCProvider.OIDCProviderDeleted)(_deleted)
