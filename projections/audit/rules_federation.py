"""Audit rules of the federation events: OIDC identity providers registered, updated
and deleted.

Each event carries the provider's account and name, so each record names the provider's ARN
(``acs:ram::<account>:oidc-provider/<name>``) without any naming state. The JWKS is public
(a private key is refused when the provider is registered); the record lists its key ids
rather than copying the keys, or the URL they are fetched from. Registered on ``RULES`` by
event class.
"""

from __future__ import annotations

import json
from datetime import datetime

from mandate.domain.sts.oidc_providers import OIDCProvider, oidc_provider_arn
from mandate.projections.audit.rules import RULES, Described

__all__: list[str] = []  # the rules register themselves on RULES


def _provider_written(
    _: object,
    e: OIDCProvider.OIDCProviderCreated | OIDCProvider.OIDCProviderUpdated,
    at: datetime,
) -> Described:
    """A provider as created or updated: the same summary (an update cannot change the issuer,
    so only creation names it), the keys by id only."""
    keys = json.loads(e.jwks).get("keys", []) if e.jwks else []
    summary: dict[str, object] = {"oidc_provider_name": e.provider_name}
    if isinstance(e, OIDCProvider.OIDCProviderCreated):
        summary["issuer_url"] = e.issuer_url
    summary |= {
        "client_ids": list(e.client_ids),
        "fingerprints": list(e.fingerprints),
        "issuance_limit_time": e.issuance_limit_time,
        "description": e.description,
        "jwks_key_ids": [k.get("kid") for k in keys if isinstance(k, dict)],
        "jwks_url": e.jwks_url,
    }
    return Described((e.account_id,), oidc_provider_arn(e.account_id, e.provider_name), summary)


RULES.on(OIDCProvider.OIDCProviderCreated)(_provider_written)
RULES.on(OIDCProvider.OIDCProviderUpdated)(_provider_written)


@RULES.on(OIDCProvider.OIDCProviderDeleted)
def _provider_deleted(_: object, e: OIDCProvider.OIDCProviderDeleted, at: datetime) -> Described:
    arn = oidc_provider_arn(e.account_id, e.provider_name)
    return Described((e.account_id,), arn, {"oidc_provider_name": e.provider_name})
