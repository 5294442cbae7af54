"""Throwaway OIDC keys and tokens for tests: an RSA and an EC key made per process, their
public JWKS (what a provider registers) and ID tokens signed with them (what a workload
presents). Nothing here is a real identity provider's."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/tenant"
CLIENT_ID = "mandate-workloads"
SUBJECT = "system:serviceaccount:ci:deployer"


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65_537, key_size=2_048)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def jwks() -> dict[str, Any]:
    """The public JWKS of both keys (kids ``rsa-1`` and ``ec-1``)."""
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key().public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec_key().public_key()))
    return {"keys": [{**rsa_jwk, "kid": "rsa-1"}, {**ec_jwk, "kid": "ec-1"}]}


def token(
    *,
    alg: str = "RS256",
    kid: str | None = None,
    key: Any = None,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """An ID token: ``iss``/``aud``/``sub``/``iat``/``exp`` defaulted, overridden by ``claims``
    (a claim given as None is left out)."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": SUBJECT,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    signing = key if key is not None else (ec_key() if alg.startswith("ES") else rsa_key())
    kid = kid if kid is not None else ("ec-1" if alg.startswith("ES") else "rsa-1")
    return jwt.encode(body, signing, algorithm=alg, headers={"kid": kid, **(headers or {})})


def unsigned_token(**claims: Any) -> str:
    """``alg: none``: a token anyone could write."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": CLIENT_ID, "sub": SUBJECT, "iat": now, "exp": now + 600}
    return jwt.encode({**body, **claims}, None, algorithm="none", headers={"kid": "rsa-1"})


def federated_trust(account_id: str, provider_name: str, **equals: str) -> dict[str, Any]:
    """RAM's trust for an OIDC IdP: Federated = the provider's ARN, StringEquals on oidc:*."""
    condition = {"StringEquals": {f"oidc:{k}": v for k, v in equals.items()}} if equals else None
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": {"Federated": [f"acs:ram::{account_id}:oidc-provider/{provider_name}"]},
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "1", "Statement": [statement]}
