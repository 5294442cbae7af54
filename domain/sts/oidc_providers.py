"""OIDC identity providers: whom an account trusts to vouch for workloads (RAM's OIDC IdPs).

An account registers a provider (RAM's CreateOIDCProvider) by name: the issuer URL its ID
tokens carry in ``iss``, the client ids one of which ``aud`` must be, how old a token may be
(``issuance_limit_time``, hours since ``iat``), and the public keys its tokens are verified
with — a JWKS given inline (public keys are not secrets: a key with a private part is
refused, so the log never holds one), or a ``jwks_url`` on the issuer's host, fetched when a
token is exchanged (``oidc_tokens.JwksSource``, a port: the domain does no HTTP). A role's
trust policy then names the provider as ``Principal.Federated`` (``domain.sts.oidc_trust``),
and AssumeRoleWithOIDC exchanges a token it signed for a session. Names are claims (kind
``oidc-provider``), like roles'.

RAM's limits, decided on the write side under concurrency by claims like the name's: an
issuer URL serves at most one provider of an account (a claim of kind ``oidc-issuer`` keyed
by ``issuer_key``, the URL normalised), and an account has at most
``MAX_PROVIDERS_PER_ACCOUNT`` providers (each holds one of that many slot claims, kind
``oidc-provider-slot``; two creates taking one slot collide on its event and the re-run
takes another or is refused; its creation event records the slot, which its deletion
releases). Providers created before these claims existed hold none: they count for neither
limit until deleted and created again.

Deleting a provider ends the exchange of new tokens, not the sessions already issued: RAM
documents nothing that revokes them, and a role's sessions are revoked on the role.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from eventsourcing.domain import event
from jwt.exceptions import PyJWTError

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import Conflict, FieldError, InvalidInput, NotFound
from mandate.domain.common.validation import check_optional_text

__all__ = [
    "CLAIM_KIND",
    "ISSUER_CLAIM_KIND",
    "MAX_CLIENT_IDS",
    "MAX_FINGERPRINTS",
    "MAX_PROVIDERS_PER_ACCOUNT",
    "SLOT_CLAIM_KIND",
    "OIDCProvider",
    "ProviderFacts",
    "check_provider",
    "issuer_claim_arn",
    "issuer_key",
    "oidc_provider_arn",
    "parse_oidc_provider_arn",
    "slot_claim_arn",
    "slot_order",
]

CLAIM_KIND: Final = "oidc-provider"
ISSUER_CLAIM_KIND: Final = "oidc-issuer"
SLOT_CLAIM_KIND: Final = "oidc-provider-slot"
MAX_PROVIDERS_PER_ACCOUNT: Final = 100
MAX_CLIENT_IDS: Final = 50
MAX_FINGERPRINTS: Final = 5
ISSUANCE_LIMIT_RANGE: Final = (1, 168)
DEFAULT_ISSUANCE_LIMIT: Final = 12
MAX_JWKS_CHARS: Final = 16_384
_NAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?")
_CLIENT_ID: Final = re.compile(r"[\x21-\x7e]{1,128}")
_FINGERPRINT: Final = re.compile(r"[0-9a-fA-F]{40}")
_ARN: Final = re.compile(r"acs:ram::(\d{16}):oidc-provider/(.+)")
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES: Final = frozenset({"RSA", "EC", "OKP"})
_STRIDES: Final = [n for n in range(1, 100) if math.gcd(n, MAX_PROVIDERS_PER_ACCOUNT) == 1]


def oidc_provider_arn(account_id: str, provider_name: str) -> str:
    return f"acs:ram::{account_id}:oidc-provider/{provider_name}"


def issuer_key(issuer_url: str) -> str:
    """The issuer URL as its uniqueness is decided: scheme and host in lower case (they are
    case-insensitive), no default port, no trailing slash — so ``https://IdP.example/`` and
    ``https://idp.example:443`` are one issuer. The path keeps its case (it is significant)."""
    parts = urlsplit(issuer_url)
    netloc = parts.netloc.lower().removesuffix(":443")
    return f"https://{netloc}{parts.path.rstrip('/')}"


def slot_order(provider_name: str) -> list[str]:
    """Every slot once, in the order a create of ``provider_name`` tries them: double hashing
    of the name (start, and a stride coprime to the slot count), so names spread over the
    slots and a create reads about ``MAX / free`` claims, not one per provider before it."""
    n, digest = MAX_PROVIDERS_PER_ACCOUNT, hashlib.sha256(provider_name.encode()).digest()
    start = int.from_bytes(digest[:8], "big") % n
    step = _STRIDES[int.from_bytes(digest[8:16], "big") % len(_STRIDES)]
    return [str((start + k * step) % n) for k in range(n)]


def issuer_claim_arn(account_id: str, key: str) -> str:
    """What the audit trail calls an issuer claim (it names no RAM entity)."""
    return f"acs:ram::{account_id}:oidc-issuer/{key}"


def slot_claim_arn(account_id: str, slot: str) -> str:
    """What the audit trail calls a provider slot claim (it names no RAM entity)."""
    return f"acs:ram::{account_id}:oidc-provider-slot/{slot}"


def parse_oidc_provider_arn(text: object) -> tuple[str, str] | None:
    """(account id, provider name) of ``acs:ram::<account>:oidc-provider/<name>``, else None."""
    if not isinstance(text, str):
        return None
    match = _ARN.fullmatch(text)
    if match is None or not _NAME.fullmatch(match.group(2)):
        return None
    return match.group(1), match.group(2)


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """A live provider as token verification needs it."""

    account_id: str
    provider_name: str
    issuer_url: str
    client_ids: tuple[str, ...]
    issuance_limit_time: int
    jwks: str
    """The JWKS given inline ("" when the keys are fetched from ``jwks_url``)."""
    jwks_url: str | None = None

    @property
    def arn(self) -> str:
        return oidc_provider_arn(self.account_id, self.provider_name)


def _jwks_url_faults(url: object, issuer: object) -> str | None:
    """A JWKS URL is https on the issuer's own host: the keys come from the IdP that signs
    (as RAM reads them from the issuer), and Mandate fetches from no other host for anyone."""
    fault = _issuer_faults(url)
    if fault is not None:
        return fault
    assert isinstance(url, str)
    host = urlsplit(url).hostname
    if not isinstance(issuer, str) or host != urlsplit(issuer).hostname:
        return "must be on the issuer URL's host"
    return None


def _issuer_faults(issuer: object) -> str | None:
    """RAM's rule for an issuer URL: https, a host, no query, fragment or user credentials."""
    if not isinstance(issuer, str) or not 1 <= len(issuer) <= 255:
        return "must be an https URL of at most 255 characters"
    parts = urlsplit(issuer)
    if parts.scheme != "https" or not parts.hostname:
        return "must start with https:// and name a host"
    if "?" in issuer or "#" in issuer or "@" in parts.netloc:
        return "must not carry a query (?), a fragment (#) or user credentials (@)"
    return None


def _check_jwks(raw: object) -> tuple[str | None, list[FieldError]]:
    """The JWKS's canonical text, or why not: public keys only, each a type tokens use."""
    text = raw if isinstance(raw, str) else json.dumps(raw) if isinstance(raw, Mapping) else None
    if text is None or len(text) > MAX_JWKS_CHARS:
        return None, [
            FieldError("jwks", f"must be a JWKS object of at most {MAX_JWKS_CHARS} chars")
        ]
    try:
        document = json.loads(text)
    except ValueError:
        return None, [FieldError("jwks", "must be a JSON JWKS document")]
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= 20:
        return None, [FieldError("jwks", 'must have "keys": a list of 1 to 20 public keys')]
    errors: list[FieldError] = []
    for index, key in enumerate(keys):
        where = f"jwks.keys[{index}]"
        if not isinstance(key, dict) or key.get("kty") not in _KEY_TYPES:
            errors.append(FieldError(where, 'must be a JWK whose "kty" is RSA, EC or OKP'))
        elif _PRIVATE_MEMBERS & key.keys():
            # never into the log: a private or symmetric key is a secret
            errors.append(FieldError(where, "must be a public key (no private or secret members)"))
        else:
            try:
                jwt.PyJWK(key)  # a key tokens can be verified with, or refused now
            except (PyJWTError, ValueError, TypeError, KeyError):
                errors.append(FieldError(where, "is not a usable public key"))
    canonical = json.dumps({"keys": keys}, sort_keys=True, separators=(",", ":"))
    return (None if errors else canonical), errors


def _texts(values: object, low: int, high: int, pattern: re.Pattern[str]) -> list[str] | None:
    """``values``' distinct texts, in order, if it is a list of ``low`` to ``high`` texts each
    matching ``pattern``; else None (client ids and fingerprints are checked alike)."""
    if (
        not isinstance(values, Sequence)
        or isinstance(values, str)
        or not low <= len(values) <= high
        or not all(isinstance(v, str) and pattern.fullmatch(v) for v in values)
    ):
        return None
    return list(dict.fromkeys(values))


def check_provider(
    *,
    provider_name: object,
    issuer_url: object,
    client_ids: object,
    jwks: object = None,
    fingerprints: object = None,
    issuance_limit_time: object = None,
    description: object = None,
    jwks_url: object = None,
) -> dict[str, Any]:
    """CreateOIDCProvider's checks, every fault at once: the event's fields, or 400."""
    errors: list[FieldError] = []
    code: str | None = None
    if not isinstance(provider_name, str) or not _NAME.fullmatch(provider_name):
        errors.append(
            FieldError(
                "oidc_provider_name",
                "must be 1 to 128 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit",
            )
        )
        code = "InvalidParameter.OIDCProviderName"
    fault = _issuer_faults(issuer_url)
    if fault is not None:
        errors.append(FieldError("issuer_url", fault))
        code = code or "InvalidParameter.IssuerUrl"
    ids = _texts(client_ids, 1, MAX_CLIENT_IDS, _CLIENT_ID)
    if ids is None:
        ids = []
        errors.append(
            FieldError(
                "client_ids",
                f"must be 1 to {MAX_CLIENT_IDS} client ids, each 1 to 128 printable characters",
            )
        )
        code = code or "InvalidParameter.ClientIds"
    prints: list[str] = []
    if fingerprints is not None:
        given = _texts(fingerprints, 0, MAX_FINGERPRINTS, _FINGERPRINT)
        if given is None:
            errors.append(
                FieldError(
                    "fingerprints",
                    f"must be at most {MAX_FINGERPRINTS} SHA-1 fingerprints (40 hex digits)",
                )
            )
            code = code or "InvalidParameter.Fingerprints"
        else:
            prints = list(dict.fromkeys(f.lower() for f in given))
    low, high = ISSUANCE_LIMIT_RANGE
    limit = DEFAULT_ISSUANCE_LIMIT if issuance_limit_time is None else issuance_limit_time
    if isinstance(limit, bool) or not isinstance(limit, int) or not low <= limit <= high:
        errors.append(FieldError("issuance_limit_time", f"must be {low} to {high} hours"))
        code = code or "InvalidParameter.IssuanceLimitTime"
    if description is not None and not isinstance(description, str):
        errors.append(FieldError("description", "must be text"))
    else:
        try:
            check_optional_text("description", description, 256)
        except InvalidInput as error:
            errors.extend(error.errors)
    keys: str | None = ""
    if (jwks is None) == (jwks_url is None):
        errors.append(FieldError("jwks", "give the keys inline (jwks) or by URL (jwks_url)"))
        code = code or "InvalidParameter.JWKS"
    elif jwks_url is not None:
        fault = _jwks_url_faults(jwks_url, issuer_url)
        if fault is not None:
            errors.append(FieldError("jwks_url", fault))
            code = code or "InvalidParameter.JWKSUrl"
    else:
        keys, jwks_errors = _check_jwks(jwks)
        if jwks_errors:
            errors.extend(jwks_errors)
            code = code or "InvalidParameter.JWKS"
    if errors:
        raise InvalidInput(errors, code=code)
    return {
        "provider_name": provider_name,
        "issuer_url": issuer_url,
        "client_ids": ids,
        "fingerprints": prints,
        "issuance_limit_time": limit,
        "description": description,
        "jwks": keys,
        "jwks_url": jwks_url,
    }


class OIDCProvider(LedgerAggregate):
    TOPIC = "mandate:OIDCProvider.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:OIDCProvider.Event.v1"

    class OIDCProviderCreated(LedgerAggregate.Created, Event):
        TOPIC = "mandate:OIDCProviderCreated.v1"
        account_id: str
        provider_name: str
        issuer_url: str
        client_ids: list[str]
        fingerprints: list[str]
        issuance_limit_time: int
        description: str | None
        jwks: str
        jwks_url: str | None = None
        slot: str | None = None  # the slot claim it holds (None: not recorded, or none)

    @event(OIDCProviderCreated)
    def __init__(
        self,
        account_id: str,
        provider_name: str,
        issuer_url: str,
        client_ids: list[str],
        fingerprints: list[str],
        issuance_limit_time: int,
        description: str | None,
        jwks: str,
        jwks_url: str | None = None,
        slot: str | None = None,
    ) -> None:
        self.account_id = account_id
        self.provider_name = provider_name
        self.issuer_url = issuer_url
        self.client_ids = list(client_ids)
        self.fingerprints = list(fingerprints)
        self.issuance_limit_time = issuance_limit_time
        self.description = description
        self.jwks = jwks
        self.jwks_url = jwks_url
        self.slot = slot
        self.deleted = False

    @property
    def arn(self) -> str:
        return oidc_provider_arn(self.account_id, self.provider_name)

    def facts(self) -> ProviderFacts:
        return ProviderFacts(
            self.account_id,
            self.provider_name,
            self.issuer_url,
            tuple(self.client_ids),
            self.issuance_limit_time,
            self.jwks,
            self.jwks_url,
        )

    def update(self, fields: dict[str, Any]) -> None:
        """Record the provider's new state (``check_provider``'s fields; the name and issuer
        never change: RAM's UpdateOIDCProvider does not take them)."""
        self._updated(
            account_id=self.account_id,
            provider_name=self.provider_name,
            client_ids=fields["client_ids"],
            fingerprints=fields["fingerprints"],
            issuance_limit_time=fields["issuance_limit_time"],
            description=fields["description"],
            jwks=fields["jwks"],
            jwks_url=fields["jwks_url"],
        )

    class OIDCProviderUpdated(Event):
        """The provider's whole new state (key rotation, client ids…), by itself readable."""

        TOPIC = "mandate:OIDCProviderUpdated.v1"
        account_id: str
        provider_name: str
        client_ids: list[str]
        fingerprints: list[str]
        issuance_limit_time: int
        description: str | None
        jwks: str
        jwks_url: str | None = None

    @event(OIDCProviderUpdated)
    def _updated(
        self,
        account_id: str,
        provider_name: str,
        client_ids: list[str],
        fingerprints: list[str],
        issuance_limit_time: int,
        description: str | None,
        jwks: str,
        jwks_url: str | None = None,
    ) -> None:
        self.client_ids = list(client_ids)
        self.fingerprints = list(fingerprints)
        self.issuance_limit_time = issuance_limit_time
        self.description = description
        self.jwks = jwks
        self.jwks_url = jwks_url

    def change_list(self, field: str, value: object, *, add: bool) -> None:
        """Add ``value`` to (or remove it from) ``client_ids`` or ``fingerprints`` as they are
        now, not a whole list read earlier; one listed is 409, one absent 404 (IMS's codes),
        and the new state passes CreateOIDCProvider's checks."""
        noun = {"client_ids": "ClientId", "fingerprints": "Fingerprint"}[field]
        current: list[str] = list(getattr(self, field))
        key = value.lower() if field == "fingerprints" and isinstance(value, str) else value
        if add and key in current:
            raise Conflict(
                f"the OIDC provider already has this {noun}",
                code=f"EntityAlreadyExists.OIDCProvider.{noun}",
            )
        if not add and key not in current:
            raise NotFound(
                f"the OIDC provider has no such {noun}",
                code=f"EntityNotExist.OIDCProvider.{noun}",
            )
        changed = [*current, key] if add else [v for v in current if v != key]
        self.update(
            check_provider(
                provider_name=self.provider_name,
                issuer_url=self.issuer_url,
                client_ids=changed if field == "client_ids" else self.client_ids,
                jwks=self.jwks or None,
                jwks_url=self.jwks_url,
                fingerprints=changed if field == "fingerprints" else self.fingerprints,
                issuance_limit_time=self.issuance_limit_time,
                description=self.description,
            )
        )

    def delete(self) -> None:
        self._deleted(account_id=self.account_id, provider_name=self.provider_name)

    class OIDCProviderDeleted(Event):
        """Carries the provider's account and name: its audit record names it by itself."""

        TOPIC = "mandate:OIDCProviderDeleted.v1"
        account_id: str
        provider_name: str

    @event(OIDCProviderDeleted)
    def _deleted(self, account_id: str, provider_name: str) -> None:
        self.deleted = True
