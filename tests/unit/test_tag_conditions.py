"""Tags: RAM's limits on the aggregates, and tag conditions in the evaluator (issue 16).

Pages cited per test. The evaluator is the one every decision uses; tags reach it as context
keys built by ``domain.policy.resource_tags``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mandate.domain.common.errors import InvalidInput, LimitExceeded
from mandate.domain.common.tags import check_tag_keys, check_tags
from mandate.domain.identity.principals import User
from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    DecisionKind,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
    evaluate,
)
from mandate.domain.policy.resource_tags import (
    REQUEST_TAG,
    RESOURCE_TAG,
    ram_tagged_resource,
    tag_context,
    with_resource_tags,
)
from mandate.domain.sts.roles import Role

CONDITIONAL_OPERATORS = "https://www.alibabacloud.com/help/en/ram/conditional-operator"
IMS_TAG_RESOURCES = (
    "https://help.aliyun.com/zh/ram/developer-reference/api-ims-2019-08-15-tagresources"
)
TAG_LIMITS = "https://www.alibabacloud.com/help/en/resource-management/latest/limits"


def _decide(statements: list[dict[str, Any]], resource: str, context: dict[str, Any]) -> str:
    document = parse_policy_document({"Version": "1", "Statement": statements})
    source = PolicySource(Layer.IDENTITY, "Custom", "p", "v1", None)
    layer = PolicySet.of([compile_policy(document, source)], Layer.IDENTITY)
    decision = evaluate([layer], AccessRequest.make("ecs:StartInstance", resource, context))
    return decision.kind.value


def _resource_tags(tags: dict[str, str]) -> dict[str, Any]:
    return dict(tag_context(RESOURCE_TAG, tags))


TEAM_DEV = {
    "Effect": "Allow",
    "Action": "ecs:*",
    "Resource": "*",
    "Condition": {"StringEquals": {"acs:ResourceTag/team": ["dev"]}},
}


def test_a_tag_conditioned_allow_grants_only_the_tagged_resource() -> None:
    """RAM's example: a user manages only ECS instances tagged ``team:dev`` (StringEquals on
    ``acs:ResourceTag/team``), https://www.alibabacloud.com/help/en/ram/conditional-operator."""
    instance = "acs:ecs:cn-hangzhou:1:instance/i-1"
    assert _decide([TEAM_DEV], instance, _resource_tags({"team": "dev"})) == "Allow"
    assert _decide([TEAM_DEV], instance, _resource_tags({"team": "ops"})) == "ImplicitDeny"
    # missing tag: a positive operator on an absent key is false
    assert _decide([TEAM_DEV], instance, _resource_tags({"owner": "dev"})) == "ImplicitDeny"
    assert _decide([TEAM_DEV], instance, {}) == "ImplicitDeny"


def test_a_tag_conditioned_deny_denies_and_its_negation_holds_when_the_tag_is_missing() -> None:
    """A Deny on a tag wins over an Allow; ``StringNotEquals`` on a missing tag holds (a
    negated operator on an absent key is true), so an untagged resource is denied too.
    https://www.alibabacloud.com/help/en/ram/conditional-operator,
    https://www.alibabacloud.com/help/en/ram/policy-evaluation-process"""
    allow_all = {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}
    deny_prod = {
        "Effect": "Deny",
        "Action": "ecs:*",
        "Resource": "*",
        "Condition": {"StringEquals": {"acs:ResourceTag/env": "prod"}},
    }
    only_test = {
        "Effect": "Deny",
        "Action": "ecs:*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"acs:ResourceTag/env": "test"}},
    }
    r = "acs:ecs:*:1:instance/i-1"
    assert _decide([allow_all, deny_prod], r, _resource_tags({"env": "prod"})) == "ExplicitDeny"
    assert _decide([allow_all, deny_prod], r, _resource_tags({"env": "test"})) == "Allow"
    assert _decide([allow_all, only_test], r, _resource_tags({"env": "test"})) == "Allow"
    assert _decide([allow_all, only_test], r, {}) == "ExplicitDeny"


def test_tag_values_are_case_sensitive_and_tag_keys_are_not() -> None:
    """StringEquals is case-sensitive, StringEqualsIgnoreCase is not (RAM's conditional
    operators page, https://www.alibabacloud.com/help/en/ram/conditional-operator); condition
    keys match case-insensitively, so ``acs:ResourceTag/TEAM`` names the tag ``team`` — and two
    tags differing only in case both count."""
    r = "acs:ecs:*:1:instance/i-1"
    assert _decide([TEAM_DEV], r, _resource_tags({"team": "Dev"})) == "ImplicitDeny"
    ignore_case = {
        **TEAM_DEV,
        "Condition": {"StringEqualsIgnoreCase": {"acs:ResourceTag/TEAM": "DEV"}},
    }
    assert _decide([ignore_case], r, _resource_tags({"team": "Dev"})) == "Allow"
    assert _decide([TEAM_DEV], r, _resource_tags({"Team": "ops", "team": "dev"})) == "Allow"
    assert tag_context(RESOURCE_TAG, {"Team": "ops", "team": "dev"}) == {
        "acs:resourcetag/team": ("ops", "dev")
    }


def test_string_like_matches_tag_values_with_wildcards() -> None:
    """StringLike: ``*`` any characters, ``?`` one (RAM's conditional operators page,
    https://www.alibabacloud.com/help/en/ram/conditional-operator)."""
    like = {
        "Effect": "Allow",
        "Action": "ecs:*",
        "Resource": "*",
        "Condition": {"StringLike": {"acs:RequestTag/costcenter": "proj-??-*"}},
    }
    r = "acs:ecs:*:1:instance/*"
    assert _decide([like], r, dict(tag_context(REQUEST_TAG, {"costcenter": "proj-42-a"}))) == (
        "Allow"
    )
    assert _decide([like], r, dict(tag_context(REQUEST_TAG, {"costcenter": "proj-4-a"}))) == (
        "ImplicitDeny"
    )


def test_the_index_tags_replace_what_a_request_said_of_a_ram_resource() -> None:
    """A RAM user's or role's tags are RAM's own (TagResources,
    https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-tagresources):
    ``acs:ResourceTag/<key>`` of such a resource is what the ledger holds, whatever a request
    said of it (https://www.alibabacloud.com/help/en/ram/conditional-operator)."""
    vouched = {"acs:resourcetag/team": "dev", "acs:sourceip": "192.0.2.1"}
    assert with_resource_tags(vouched, {"owner": "x"}) == {
        "acs:sourceip": "192.0.2.1",
        "acs:resourcetag/": (),  # the tags are known whole: a missing one is missing
        "acs:resourcetag/owner": "x",
    }
    assert ram_tagged_resource("acs:ram::123:user/alice") == ("123", "user", "alice")
    assert ram_tagged_resource("acs:ram::123:role/ops") == ("123", "role", "ops")
    for other in (
        "acs:ram::123:user/*",
        "acs:ram::123:group/devs",
        "acs:ram:cn-hangzhou:123:user/a",
        "acs:oss:*:123:bucket/a",
        "acs:ram::123:user/a/accesskey/LTAI1",
    ):
        assert ram_tagged_resource(other) is None, other


def test_a_user_and_a_role_keep_rams_tag_limits() -> None:
    """IMS TagResources (https://help.aliyun.com/zh/ram/developer-reference/api-ims-2019-08-15-tagresources):
    1 to 20 tags per call, keys 1-128 characters not starting with ``aliyun``/``acs:`` and
    without ``http://``/``https://``, values up to 128 and possibly empty, not starting with
    ``acs:`` (Alibaba Cloud's tag structure); RAM's TagResources for roles allows values of
    256; Resource Management limits
    (https://www.alibabacloud.com/help/en/resource-management/latest/limits): at most 20 tags
    on one resource. A refusal records nothing."""
    user = User(account_id="1", user_name="alice", display_name=None)
    role = Role(
        account_id="1",
        role_name="ops",
        description=None,
        trust_policy="{}",
        max_session_duration=3600,
    )
    for entity in (user, role):
        entity.tag(check_tags("tags", {f"k{i}": "" for i in range(20)}))
        version = entity.version
        with pytest.raises(LimitExceeded) as caught:
            entity.tag(check_tags("tags", {"one-more": "v"}))
        assert caught.value.code == "LimitExceeded.Tag"
        assert entity.version == version
        entity.tag({"k0": "new"})  # re-valuing a key it has is not one more
        assert entity.tags["k0"] == "new"
        entity.untag(["k0", "not-there"])
        assert len(entity.tags) == 19
        version = entity.version
        entity.untag(["not-there"])  # nothing removed: no event
        assert entity.version == version
        entity.untag(None)
        assert entity.tags == {}

    assert check_tags("tags", {"k" * 128: "v" * 128, "e": ""}) == {"k" * 128: "v" * 128, "e": ""}
    bad = {
        "": "empty key",
        "k" * 129: "long key",
        "aliyun:x": "reserved",
        "acs:team": "reserved",
        "see http://x": "url",
        "v-long": "v" * 129,
        "v-url": "https://x",
        "v-acs": "acs:reserved",
        "v-type": 1,
    }
    with pytest.raises(InvalidInput) as refused:
        check_tags("tags", bad)
    assert {e.field for e in refused.value.errors} == {f"tags.{k}" for k in bad}
    # a role's value may have 256 characters (RAM TagResources, ResourceType=role)
    assert check_tags("tags", {"k": "v" * 256}, max_value_chars=256) == {"k": "v" * 256}
    with pytest.raises(InvalidInput):
        check_tags("tags", {"k": "v" * 257}, max_value_chars=256)
    with pytest.raises(InvalidInput):
        check_tags("tags", {f"k{i}": "" for i in range(21)})
    with pytest.raises(InvalidInput):
        check_tags("tags", {})
    with pytest.raises(InvalidInput):
        check_tag_keys("tag_keys", [f"k{i}" for i in range(21)])
    with pytest.raises(InvalidInput):
        check_tag_keys("tag_keys", "team")


def test_a_statement_may_carry_a_sid() -> None:
    """``Sid`` labels a statement (RAM's KMS key-policy examples carry one,
    https://www.alibabacloud.com/help/en/kms/security-and-compliance/condition-key); it is
    kept in the document and never changes a decision."""
    document = parse_policy_document(
        {"Version": "1", "Statement": [{"Sid": "kms policy", **TEAM_DEV}]}
    )
    assert document.as_dict()["Statement"][0]["Sid"] == "kms policy"
    assert _decide([{"Sid": "x", **TEAM_DEV}], "r", _resource_tags({"team": "dev"})) == "Allow"


def test_a_date_only_value_is_the_start_of_that_day_in_utc() -> None:
    """RAM's time-bounded example writes ``acs:CurrentTime`` with a zone
    (https://alibabacloud.com/help/en/ram/user-guide/access-alibaba-cloud-in-a-specified-period-of-time);
    a date alone names a day and is read as its start in UTC, while a date-time without a zone
    stays refused (its wall clock is ambiguous)."""
    until = {
        "Effect": "Allow",
        "Action": "ecs:*",
        "Resource": "*",
        "Condition": {"DateLessThan": {"acs:CurrentTime": "2019-08-13"}},
    }
    before = datetime(2019, 8, 12, 23, 59, 59, 999999, tzinfo=UTC)
    at = datetime(2019, 8, 13, tzinfo=UTC)
    assert _decide([until], "r", {"acs:CurrentTime": before}) == "Allow"
    assert _decide([until], "r", {"acs:CurrentTime": at}) == "ImplicitDeny"
    with pytest.raises(InvalidInput) as refused:
        parse_policy_document(
            {
                "Version": "1",
                "Statement": [
                    {
                        **until,
                        "Condition": {"DateLessThan": {"acs:CurrentTime": "2019-08-13T17:00:00"}},
                    }
                ],
            }
        )
    assert "zone" in refused.value.errors[0].reason


def test_a_tag_condition_makes_a_decision_context_dependent() -> None:
    """Such a decision is never memoised: the tags are not part of the memo's key (Mandate's
    own rule; RAM reads a resource's tags at each request,
    https://www.alibabacloud.com/help/en/ram/conditional-operator)."""
    document = parse_policy_document({"Version": "1", "Statement": [TEAM_DEV]})
    source = PolicySource(Layer.IDENTITY, "Custom", "p", "v1", None)
    layer = PolicySet.of([compile_policy(document, source)], Layer.IDENTITY)
    decision = evaluate(
        [layer], AccessRequest.make("ecs:StartInstance", "r", _resource_tags({"team": "dev"}))
    )
    assert decision.kind is DecisionKind.ALLOW
    assert decision.context_dependent
