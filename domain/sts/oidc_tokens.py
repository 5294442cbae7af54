"""Verifying an OIDC ID token against a registered provider (AssumeRoleWithOIDC's first step).

The JOSE work is PyJWT's (signature, ``exp``/``nbf``/``iat`` with a small leeway, ``iss``,
``aud``); what is decided here is which keys and algorithms may be used at all: only the
provider's registered public keys, and only asymmetric algorithms — ``none`` and the HMAC
family are refused before any key is touched (an HS256 token "signed" with a public key's
bytes is the classic confusion attack). Then RAM's own rule: a token issued longer ago than
the provider's ``issuance_limit_time`` (hours) is refused even when not yet expired.

Each refusal is a ``TokenRefused`` carrying STS's code (``AuthenticationFail.OIDCToken.*``)
and a reason that never quotes the token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from mandate.domain.common.errors import NotPermitted
from mandate.domain.sts.oidc_providers import ProviderFacts

__all__ = [
    "ALGORITHMS",
    "LEEWAY_SECONDS",
    "JwksSource",
    "JwksUnavailable",
    "TokenRefused",
    "VerifiedToken",
    "verify_token",
]

ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
LEEWAY_SECONDS: Final = 60
TOKEN_CHARS: Final = (4, 20_000)
MAX_SUBJECT_CHARS: Final = 255
_INVALID: Final = "AuthenticationFail.OIDCToken.Invalid"


class JwksUnavailable(Exception):
    """The provider's JWKS URL did not answer a JWKS (unreachable, refused, too large…)."""


class JwksSource(Protocol):
    """Where a provider's keys given by URL come from (``api.jwks_fetch``: HTTPS, a short
    timeout, a small cache); raises ``JwksUnavailable``."""

    def fetch(self, url: str, *, fresh: bool = False) -> str:
        """The JWKS at ``url``; ``fresh``: not from a cache (a token named a key it lacks)."""
        ...


class TokenRefused(NotPermitted):
    """The token does not authenticate anyone (STS answers 401 with ``code``);
    ``unknown_kid``: it names a key the JWKS in hand does not hold (fetched keys may be
    stale: the IdP may have rotated since)."""

    def __init__(self, detail: str, *, code: str = _INVALID, unknown_kid: bool = False) -> None:
        super().__init__(detail, code=code)
        self.unknown_kid = unknown_kid


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What a verified token vouches for: STS's ``OIDCTokenInfo`` and the trust's context."""

    subject: str
    issuer: str
    audience: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime

    def context(self) -> dict[str, object]:
        """The condition keys a trust policy may test (``oidc:iss``, ``oidc:aud``, ``oidc:sub``)."""
        return {
            "oidc:iss": self.issuer,
            "oidc:aud": list(self.audience),
            "oidc:sub": self.subject,
        }


def _key_for(provider: ProviderFacts, header: dict[str, Any]) -> Any:
    try:
        keys = jwt.PyJWKSet.from_dict(json.loads(provider.jwks)).keys
    except PyJWTError:
        raise TokenRefused(
            "the provider's JWKS holds no key tokens can be verified with",
            code="AuthenticationFail.OIDCToken.InvalidSignature",
        ) from None
    kid = header.get("kid")
    chosen = [k for k in keys if k.key_id == kid] if kid is not None else keys
    if len(chosen) != 1:
        raise TokenRefused(
            "no single key of the provider's JWKS matches the token's kid"
            if kid is not None
            else "the token names no kid and the provider has several keys",
            code="AuthenticationFail.OIDCToken.InvalidSignature",
            unknown_kid=kid is not None and not chosen,
        )
    return chosen[0].key


def verify_token(provider: ProviderFacts, token: object, now: datetime) -> VerifiedToken:
    """The token's claims if ``provider`` signed it for one of its clients and it is fresh."""
    low, high = TOKEN_CHARS
    if not isinstance(token, str) or not low <= len(token) <= high:
        raise TokenRefused(f"the OIDC token must be {low} to {high} characters")
    if token.count(".") != 2:
        raise TokenRefused("the OIDC token must be a JWS in compact form (three parts)")
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        raise TokenRefused("the OIDC token's header cannot be decoded") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise TokenRefused(
            f"the algorithm {str(alg)[:16]!r} is not accepted: only {', '.join(ALGORITHMS)}"
        )
    key = _key_for(provider, header)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=list(provider.client_ids),
            issuer=provider.issuer_url,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "sub", "exp", "iat"]},
        )
    except ExpiredSignatureError:
        raise TokenRefused(
            "the OIDC token has expired", code="AuthenticationFail.OIDCToken.Expired"
        ) from None
    except InvalidAudienceError:
        raise TokenRefused(
            "the token's aud is none of the provider's client ids",
            code="AuthenticationFail.OIDCToken.AudienceNotMatch",
        ) from None
    except InvalidIssuerError:
        raise TokenRefused(
            "the token's iss is not the provider's issuer URL",
            code="AuthenticationFail.OIDCToken.IssuerNotMatch",
        ) from None
    except InvalidSignatureError:
        raise TokenRefused(
            "the OIDC token's signature does not verify with the provider's keys",
            code="AuthenticationFail.OIDCToken.InvalidSignature",
        ) from None
    except (ImmatureSignatureError, InvalidIssuedAtError):
        raise TokenRefused("the OIDC token is not valid yet (nbf or iat in the future)") from None
    except MissingRequiredClaimError as missing:
        raise TokenRefused(f"the OIDC token lacks the {missing.claim} claim") from None
    except PyJWTError:
        raise TokenRefused("the OIDC token cannot be verified") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_SUBJECT_CHARS:
        # OpenID Connect Core §2: sub "MUST NOT exceed 255 ASCII characters"; it is recorded
        # in the session's audit context and tested by oidc:sub conditions
        raise TokenRefused(f"the token's sub must be 1 to {MAX_SUBJECT_CHARS} characters")
    issued_at = datetime.fromtimestamp(int(claims["iat"]), UTC)
    if now - issued_at > timedelta(hours=provider.issuance_limit_time):
        raise TokenRefused(
            f"the OIDC token was issued more than {provider.issuance_limit_time} hours ago "
            "(the provider's issuance_limit_time)",
            code="AuthenticationFail.OIDCToken.Expired",
        )
    audience = claims["aud"]
    return VerifiedToken(
        subject,
        claims["iss"],
        tuple(audience) if isinstance(audience, list) else (str(audience),),
        issued_at,
        datetime.fromtimestamp(int(claims["exp"]), UTC),
    )
