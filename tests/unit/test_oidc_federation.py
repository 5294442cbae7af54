"""AssumeRoleWithOIDC and OIDC providers in the ledger (in-memory store): RAM's rules.

Pages the rules follow:
- CreateOIDCProvider (limits: 50 client ids, 5 fingerprints; issuer https, unique name):
  https://www.alibabacloud.com/help/en/ram/developer-reference/api-ims-2019-08-15-createoidcprovider
- Manage OIDC IdPs (issuer: https, no ?, # or @; earliest issuance 1-168 hours, default 12):
  https://www.alibabacloud.com/help/en/ram/user-guide/manage-an-oidc-idp
- AssumeRoleWithOIDC (parameters; the token 4-20,000 characters; anonymous call):
  https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerolewithoidc
- STS error codes (AuthenticationFail.OIDCToken.Expired / .Invalid / .AudienceNotMatch /
  .InvalidSignature; "No such OIDC Provider registered."):
  https://help.aliyun.com/zh/ram/developer-reference/api-sts-2015-04-01-errorcodes
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from mandate.domain.common.errors import Conflict, InvalidInput, NotFound, NotPermitted
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.federation import read_oidc_provider
from mandate.domain.sts.oidc_tokens import TokenRefused
from mandate.domain.sts.session_tokens import SessionTokenSigner
from mandate.domain.sts.sessions import Session, session_aggregate_id
from tests.oidc_support import (
    CLIENT_ID,
    ISSUER,
    SUBJECT,
    federated_trust,
    jwks,
    token,
    unsigned_token,
)

PROVIDER = "ci-idp"


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        hasher=SecretHasher("k", {"k": b"k" * 32}),
        token_signer=SessionTokenSigner("t1", {"t1": b"t" * 32}),
    )


def _setup(ledger: Ledger, **trust: str) -> str:
    account = ledger.open_account("Acme").account_id
    ledger.create_oidc_provider(
        account, PROVIDER, issuer_url=ISSUER, client_ids=[CLIENT_ID], jwks=jwks()
    )
    ledger.create_role(account, "deployer", federated_trust(account, PROVIDER, **trust))
    return account


def _assume(ledger: Ledger, account: str, oidc_token: str, **more: Any) -> Any:
    return ledger.assume_role_with_oidc(
        oidc_provider_arn=more.pop("provider_arn", f"acs:ram::{account}:oidc-provider/{PROVIDER}"),
        role_arn=more.pop("role_arn", f"acs:ram::{account}:role/deployer"),
        oidc_token=oidc_token,
        role_session_name=more.pop("role_session_name", "ci-run"),
        **more,
    )


def _positions(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def test_a_token_whose_sub_and_aud_match_the_trust_is_exchanged_for_a_session(
    ledger: Ledger,
) -> None:
    """A role whose trust names the provider as ``Principal.Federated`` with ``oidc:sub`` and
    ``oidc:aud`` conditions admits a token carrying them
    (https://www.alibabacloud.com/help/en/ram/user-guide/edit-the-trust-policy-of-a-ram-role;
    https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerolewithoidc)."""
    account = _setup(ledger, sub=SUBJECT, aud=CLIENT_ID, iss=ISSUER)
    for alg in ("RS256", "ES256"):
        federated = _assume(ledger, account, token(alg=alg), role_session_name=f"ci-{alg}")
        issued = federated.issued
        assert issued.arn == f"acs:ram::{account}:assumed-role/deployer/ci-{alg}"
        assert federated.token.subject == SUBJECT
        assert federated.token.audience == (CLIENT_ID,)
        session = ledger.repository.get(session_aggregate_id(issued.access_key_id))
        assert isinstance(session, Session)
        # the lineage names the provider (no user, no parent)
        assert session.source_arn == f"acs:ram::{account}:oidc-provider/{PROVIDER}"
        assert session.source_user_id is None
        assert session.parent_access_key_id is None


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (
            lambda: token(iss="https://evil.example.test"),
            "AuthenticationFail.OIDCToken.IssuerNotMatch",
        ),
        (lambda: token(aud="someone-else"), "AuthenticationFail.OIDCToken.AudienceNotMatch"),
        (
            lambda: token(iat=int(time.time()) - 7_200, exp=int(time.time()) - 3_600),
            "AuthenticationFail.OIDCToken.Expired",
        ),
        (
            # not expired, but issued longer ago than the provider's 12 hours
            lambda: token(iat=int(time.time()) - 13 * 3_600),
            "AuthenticationFail.OIDCToken.Expired",
        ),
        (
            lambda: token(key=rsa.generate_private_key(public_exponent=65_537, key_size=2_048)),
            "AuthenticationFail.OIDCToken.InvalidSignature",
        ),
        (unsigned_token, "AuthenticationFail.OIDCToken.Invalid"),
        (lambda: token(alg="HS256", key=b"x" * 32), "AuthenticationFail.OIDCToken.Invalid"),
        (lambda: token(sub=None), "AuthenticationFail.OIDCToken.Invalid"),
        (lambda: token(sub="s" * 256), "AuthenticationFail.OIDCToken.Invalid"),
        (lambda: "abc", "AuthenticationFail.OIDCToken.Invalid"),
    ],
    ids=[
        "issuer",
        "audience",
        "expired",
        "issuance-limit",
        "signature",
        "alg-none",
        "hs256",
        "no-sub",
        "long-sub",
        "not-a-jwt",
    ],
)
def test_a_token_the_provider_did_not_vouch_for_is_refused_and_writes_nothing(
    ledger: Ledger, make: Any, code: str
) -> None:
    """Expired, wrongly signed or of another audience: STS's AuthenticationFail.OIDCToken.* codes
    (https://help.aliyun.com/zh/ram/developer-reference/api-sts-2015-04-01-errorcodes)."""
    account = _setup(ledger)
    before = _positions(ledger)
    with pytest.raises(TokenRefused) as refused:
        _assume(ledger, account, make())
    assert refused.value.code == code
    assert "eyJ" not in refused.value.detail  # never the token
    assert _positions(ledger) == before


def test_an_unknown_provider_is_refused_as_sts_words_it(ledger: Ledger) -> None:
    """STS's words, "No such OIDC Provider registered." (STS error codes,
    https://help.aliyun.com/zh/ram/developer-reference/api-sts-2015-04-01-errorcodes)."""
    account = _setup(ledger)
    before = _positions(ledger)
    with pytest.raises(NotPermitted, match="No such OIDC Provider registered"):
        _assume(ledger, account, token(), provider_arn=f"acs:ram::{account}:oidc-provider/nope")
    ledger.delete_oidc_provider(account, PROVIDER)
    after_delete = _positions(ledger)
    with pytest.raises(NotPermitted, match="No such OIDC Provider registered"):
        _assume(ledger, account, token())
    assert after_delete > before
    assert _positions(ledger) == after_delete
    # a closed account's providers are as unknown (its state is not told to anyone)
    other = _setup(ledger)
    ledger.close_account(other)
    with pytest.raises(NotPermitted, match="No such OIDC Provider registered"):
        _assume(ledger, other, token())
    with pytest.raises(NotPermitted, match="No such OIDC Provider registered"):
        _assume(ledger, account, token(), provider_arn="acs:ram::1999999999999999:oidc-provider/x")


def test_a_trust_that_does_not_name_the_provider_or_whose_sub_differs_refuses(
    ledger: Ledger,
) -> None:
    """The trust decides who assumes the role: a ``Federated`` principal naming another provider,
    or an ``oidc:sub`` condition the token does not meet, refuses
    (https://www.alibabacloud.com/help/en/ram/user-guide/edit-the-trust-policy-of-a-ram-role)."""
    account = _setup(ledger, sub="system:serviceaccount:ci:someone-else")
    other = f"{ISSUER}/other"  # an issuer URL serves one provider of an account
    ledger.create_oidc_provider(
        account, "other-idp", issuer_url=other, client_ids=[CLIENT_ID], jwks=jwks()
    )
    before = _positions(ledger)
    with pytest.raises(NotPermitted, match="Condition"):
        _assume(ledger, account, token())
    with pytest.raises(NotPermitted, match="does not name"):
        _assume(
            ledger,
            account,
            token(iss=other),
            provider_arn=f"acs:ram::{account}:oidc-provider/other-idp",
        )
    # a trust naming RAM principals never admits a token
    ledger.create_role(
        account,
        "ram-only",
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": [f"acs:ram::{account}:root"]},
                }
            ],
        },
    )
    before = _positions(ledger)
    with pytest.raises(NotPermitted, match="does not name"):
        _assume(ledger, account, token(), role_arn=f"acs:ram::{account}:role/ram-only")
    with pytest.raises(NotFound):
        _assume(ledger, account, token(), role_arn=f"acs:ram::{account}:role/missing")
    assert _positions(ledger) == before


def test_aud_may_be_a_list_and_stringlike_conditions_use_the_same_evaluator(ledger: Ledger) -> None:
    """``oidc:aud`` and ``oidc:sub`` are condition keys like any other: a list of values is OR'd
    and ``StringLike`` matches wildcards
    (https://www.alibabacloud.com/help/en/ram/conditional-operator)."""
    account = ledger.open_account("Acme").account_id
    ledger.create_oidc_provider(
        account, PROVIDER, issuer_url=ISSUER, client_ids=["other", CLIENT_ID], jwks=jwks()
    )
    trust = federated_trust(account, PROVIDER)
    trust["Statement"][0]["Condition"] = {"StringLike": {"oidc:sub": "system:serviceaccount:ci:*"}}
    ledger.create_role(account, "deployer", trust)
    assert _assume(ledger, account, token(aud=["x", CLIENT_ID])).issued.access_key_id
    with pytest.raises(NotPermitted):
        _assume(ledger, account, token(sub="system:serviceaccount:prod:deployer"))


def test_duration_and_session_policy_follow_assume_role(ledger: Ledger) -> None:
    """DurationSeconds and Policy as AssumeRoleWithOIDC documents them (the session policy only
    narrows the role)
    (https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerolewithoidc)."""
    account = _setup(ledger)
    with pytest.raises(InvalidInput) as too_long:
        _assume(ledger, account, token(), duration_seconds=7_200)
    assert too_long.value.code == "InvalidParameter.DurationSeconds"
    policy = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}],
    }
    issued = _assume(ledger, account, token(), policy=policy, duration_seconds=900).issued
    session = ledger.repository.get(session_aggregate_id(issued.access_key_id))
    assert '"oss:GetObject"' in session.session_policy
    assert (issued.expiration - session.issued_at).total_seconds() <= 900


def test_create_oidc_provider_checks_rams_rules_all_at_once(ledger: Ledger) -> None:
    """CreateOIDCProvider's and the IdP guide's rules (issuer URL, client ids, fingerprints,
    issuance limit):
    https://www.alibabacloud.com/help/en/ram/developer-reference/api-ims-2019-08-15-createoidcprovider
    https://www.alibabacloud.com/help/en/ram/user-guide/manage-an-oidc-idp"""
    account = ledger.open_account("Acme").account_id
    with pytest.raises(InvalidInput) as bad:
        ledger.create_oidc_provider(
            account,
            "-bad-",
            issuer_url="http://idp.example.test/?x=1",
            client_ids=[f"c{i}" for i in range(51)],
            fingerprints=["nothex"],
            issuance_limit_time=169,
            jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        )
    fields = {e.field for e in bad.value.errors}
    assert fields == {
        "oidc_provider_name",
        "issuer_url",
        "client_ids",
        "fingerprints",
        "issuance_limit_time",
        "jwks.keys[0]",
    }
    with pytest.raises(InvalidInput, match="not a usable public key"):
        ledger.create_oidc_provider(
            account,
            PROVIDER,
            issuer_url=ISSUER,
            client_ids=[CLIENT_ID],
            jwks={"keys": [{"kty": "RSA", "n": "x"}]},
        )
    private = {"keys": [{**jwks()["keys"][0], "d": "secret-part"}]}
    with pytest.raises(InvalidInput, match="must be a public key"):
        ledger.create_oidc_provider(
            account, PROVIDER, issuer_url=ISSUER, client_ids=[CLIENT_ID], jwks=private
        )
    for issuer in ("https://u:p@idp.example.test", "https://idp.example.test/#f"):
        with pytest.raises(InvalidInput):
            ledger.create_oidc_provider(
                account, PROVIDER, issuer_url=issuer, client_ids=[CLIENT_ID], jwks=jwks()
            )
    ledger.create_oidc_provider(
        account, PROVIDER, issuer_url=ISSUER, client_ids=[CLIENT_ID], jwks=jwks()
    )
    with pytest.raises(Conflict):
        ledger.create_oidc_provider(
            account, PROVIDER, issuer_url=ISSUER, client_ids=[CLIENT_ID], jwks=jwks()
        )
    provider = read_oidc_provider(ledger, account, PROVIDER)
    assert provider.issuance_limit_time == 12
    assert provider.client_ids == [CLIENT_ID]
    assert provider.arn == f"acs:ram::{account}:oidc-provider/{PROVIDER}"


def test_a_federated_principal_must_be_an_oidc_provider_arn(ledger: Ledger) -> None:
    """RAM's trust form for an OIDC IdP: ``Principal.Federated`` names the provider's ARN,
    acs:ram::<account>:oidc-provider/<name> (the AssumeRoleWithOIDC page's prerequisites;
    https://www.alibabacloud.com/help/en/ram/user-guide/edit-the-trust-policy-of-a-ram-role)."""
    account = ledger.open_account("Acme").account_id
    trust = federated_trust(account, PROVIDER)
    trust["Statement"][0]["Principal"] = {"Federated": "https://idp.example.test"}
    with pytest.raises(InvalidInput, match="OIDC provider ARN"):
        ledger.create_role(account, "deployer", trust)


def test_updating_the_provider_rotates_its_keys_and_client_ids(ledger: Ledger) -> None:
    """UpdateOIDCProvider (client ids, issuance limit, description; keys here too): the next
    exchange is verified with the new state, and the name and issuer stay
    (https://www.alibabacloud.com/help/en/ram/user-guide/manage-an-oidc-idp)."""
    account = _setup(ledger)
    rotated = rsa.generate_private_key(public_exponent=65_537, key_size=2_048)
    new_jwk = json.loads(RSAAlgorithm.to_jwk(rotated.public_key()))
    with pytest.raises(TokenRefused):
        _assume(ledger, account, token(key=rotated, kid="rsa-2"))
    ledger.update_oidc_provider(
        account, PROVIDER, jwks={"keys": [{**new_jwk, "kid": "rsa-2"}]}, client_ids=["new-aud"]
    )
    with pytest.raises(TokenRefused) as old_key:
        _assume(ledger, account, token(aud="new-aud"))  # signed with rsa-1, gone now
    assert old_key.value.code == "AuthenticationFail.OIDCToken.InvalidSignature"
    with pytest.raises(TokenRefused) as old_aud:
        _assume(ledger, account, token(key=rotated, kid="rsa-2"))
    assert old_aud.value.code == "AuthenticationFail.OIDCToken.AudienceNotMatch"
    assert _assume(ledger, account, token(key=rotated, kid="rsa-2", aud="new-aud")).issued
    provider = read_oidc_provider(ledger, account, PROVIDER)
    assert provider.issuer_url == ISSUER
    with pytest.raises(InvalidInput):
        ledger.update_oidc_provider(account, PROVIDER, issuance_limit_time=0)
    with pytest.raises(NotFound):
        ledger.update_oidc_provider(account, "nope", client_ids=["x"])
