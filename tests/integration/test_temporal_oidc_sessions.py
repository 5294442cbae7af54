"""Sessions exchanged for OIDC tokens, as of any instant: temporal index vs the live rule.

A scripted history — a provider, a role trusting its tokens for one subject, sessions
exchanged (one narrowed by a session policy), the role's policy detached and attached again,
one session revoked, the role's revocation horizon, the provider deleted (its sessions live
on: RAM documents nothing that ends them), the role deleted — and at every ledger time and
one microsecond before it, ``AsOfReader.session_at`` must answer as the live rule replayed
to that instant (``tests/integration/test_temporal_sessions.py``'s oracle): the same verdict
and reason, chain, layers and decisions.

Pages: AssumeRoleWithOIDC
https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerolewithoidc
"""

from __future__ import annotations

import pytest

from mandate.domain.common.arns import assumed_role_arn, role_arn
from mandate.domain.common.errors import NotPermitted
from mandate.domain.ledger.federation import FederatedSession
from tests.integration.test_temporal_sessions import (
    MICRO,
    Story,
    _assert_sessions_as_of_equal_the_replayed_rule,
    _document,
    _pause,
    runtime,  # noqa: F401 — the fixture, over both stores
)
from tests.oidc_support import CLIENT_ID, ISSUER, SUBJECT, federated_trust, jwks, token

PROVIDER = "ci-idp"


def _exchange(story: Story, name: str, **params: object) -> FederatedSession:
    a = story.a
    federated: FederatedSession = story.do(
        lambda: story.runtime.ledger.assume_role_with_oidc(
            oidc_provider_arn=f"acs:ram::{a}:oidc-provider/{PROVIDER}",
            role_arn=role_arn(a, "deployer"),
            oidc_token=token(),
            role_session_name=name,
            **params,
        ),
        f"issued {name}",
    )
    story.sessions[name] = federated.issued
    return federated


def _tell(story: Story) -> Story:
    ledger = story.runtime.ledger
    story.a = a = story.do(lambda: ledger.open_account("Acme")).account_id
    story.b = story.do(lambda: ledger.open_account("Partner")).account_id
    photos = f"acs:oss:*:{a}:photos/*"
    story.do(
        lambda: ledger.create_policy(
            a, "photos", _document(("Allow", ["oss:GetObject", "oss:PutObject"], photos))
        )
    )
    story.do(
        lambda: ledger.create_oidc_provider(
            a, PROVIDER, issuer_url=ISSUER, client_ids=[CLIENT_ID], jwks=jwks()
        )
    )
    trust = federated_trust(a, PROVIDER, sub=SUBJECT, aud=CLIENT_ID)
    story.do(lambda: ledger.create_role(a, "deployer", trust))
    story.do(lambda: ledger.attach_policy(a, "role", "deployer", "Custom", "photos"))
    narrowed = _document(("Allow", ["oss:GetObject"], f"acs:oss:*:{a}:photos/u-42/*"))
    _exchange(story, "ci-narrow", policy=narrowed, duration_seconds=900)
    _exchange(story, "ci-plain")
    story.do(lambda: ledger.detach_policy(a, "role", "deployer", "Custom", "photos"), "detached")
    story.do(lambda: ledger.attach_policy(a, "role", "deployer", "Custom", "photos"), "attached")
    story.do(lambda: ledger.revoke_session(story.key("ci-narrow")), "revoked ci-narrow")
    _exchange(story, "ci-before-horizon")
    _pause()
    story.do(lambda: ledger.revoke_role_sessions(a, "deployer"), "horizon")
    _pause()
    _exchange(story, "ci-after-horizon", duration_seconds=900)
    story.do(lambda: ledger.delete_oidc_provider(a, PROVIDER), "provider deleted")
    story.do(lambda: ledger.delete_role(a, "deployer", detach=True), "role deleted", "RoleDeleted")
    story.settle()
    return story


@pytest.fixture
def story(runtime: object) -> Story:  # noqa: F811
    return _tell(Story(runtime))  # type: ignore[arg-type]


def test_oidc_sessions_as_of_every_instant_equal_the_live_rule_replayed_to_it(
    story: Story,
) -> None:
    assert _assert_sessions_as_of_equal_the_replayed_rule(story) > 300


def test_an_oidc_session_names_its_provider_outlives_it_and_dies_with_its_role(
    story: Story,
) -> None:
    a = story.a
    provider_arn = f"acs:ram::{a}:oidc-provider/{PROVIDER}"
    deleted = story.at["provider deleted"]
    found, why = story.session_at("ci-after-horizon", deleted)
    assert found is not None, why
    assert found.subject.chain == (
        provider_arn,
        role_arn(a, "deployer"),
        assumed_role_arn(a, "deployer", "ci-after-horizon"),
    )
    own = f"acs:oss:*:{a}:photos/u-7/b.jpg"
    assert story.decision("ci-after-horizon", deleted, "oss:PutObject", own).value == "Allow"
    # issued before the horizon: ended by it; the narrowed one by its own revocation first
    found, why = story.session_at("ci-before-horizon", story.at["horizon"])
    assert found is None
    assert "were revoked" in why
    found, why = story.session_at("ci-narrow", story.at["revoked ci-narrow"])
    assert found is None
    assert why == f"the session {story.key('ci-narrow')} was revoked"
    narrow_then = story.at["revoked ci-narrow"] - MICRO
    assert story.decision("ci-narrow", narrow_then, "oss:PutObject", own).value != "Allow"
    found, why = story.session_at("ci-after-horizon", story.at["role deleted"])
    assert found is None
    assert why == f"the session's role {role_arn(a, 'deployer')} was deleted"
    # the provider is gone: no new exchange, and nothing was written by the refusal
    head = story.runtime.head()
    with pytest.raises(NotPermitted, match="No such OIDC Provider registered"):
        _exchange(story, "ci-too-late")
    assert story.runtime.head() == head
