"""ARN helpers: building entity ARNs, parsing principals, finding a resource's account."""

from __future__ import annotations

import json

import pytest

from mandate.domain.common.arns import (
    ACCOUNT_ID_RE,
    NAME_RE,
    PrincipalArn,
    PrincipalKind,
    account_of_resource,
    assumed_role_arn,
    group_arn,
    parse_principal_arn,
    policy_arn,
    role_arn,
    root_arn,
    user_arn,
)
from mandate.domain.common.errors import InvalidInput

A = "1837465920374651"


def test_entity_arns_follow_the_design() -> None:
    """Each helper builds the ARN form of docs/design.md §1."""
    assert root_arn(A) == f"acs:ram::{A}:root"
    assert user_arn(A, "ravi.k") == f"acs:ram::{A}:user/ravi.k"
    assert group_arn(A, "ops") == f"acs:ram::{A}:group/ops"
    assert role_arn(A, "msa-2026-117") == f"acs:ram::{A}:role/msa-2026-117"
    assert policy_arn(A, "ManifestWriter") == f"acs:ram::{A}:policy/ManifestWriter"
    assert assumed_role_arn(A, "r", "s-1") == f"acs:ram::{A}:assumed-role/r/s-1"


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        (A, True),
        ("183746592037465", False),
        ("18374659203746510", False),
        (f"{A}\n", False),
        ("١٨٣٧٤٦٥٩٢٠٣٧٤٦٥١", False),
    ],
)
def test_an_account_id_is_exactly_sixteen_ascii_digits(text: str, matches: bool) -> None:
    """Account ids are sixteen ASCII digits, with nothing before or after."""
    assert (ACCOUNT_ID_RE.match(text) is not None) is matches


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("a", True),
        ("ravi.k_2-x", True),
        ("x" * 64, True),
        ("", False),
        ("x" * 65, False),
        ("ravi k", False),
        ("ravi/k", False),
        ("ravi\n", False),
    ],
)
def test_a_name_is_one_to_sixty_four_allowed_characters(text: str, matches: bool) -> None:
    """Names are 1 to 64 of letters, digits, dot, underscore and hyphen."""
    assert (NAME_RE.match(text) is not None) is matches


@pytest.mark.parametrize(
    ("resource", "account"),
    [
        (f"acs:oss:cn-hangzhou:{A}:photos/u-42/a.jpg", A),
        (f"acs:ram::{A}:user/ravi", A),
        (f"acs:oss:*:{A}:a:b:c", A),
        ("acs:oss:cn-hangzhou:*:photos/a.jpg", None),
        ("acs:oss:cn-hangzhou:123:photos/a.jpg", None),
        (f"arn:oss:cn-hangzhou:{A}:x", None),
        (f"acs:oss:{A}", None),
        ("*", None),
        ("", None),
    ],
)
def test_the_account_of_a_resource_is_its_fourth_field(resource: str, account: str | None) -> None:
    """A resource's account is its fourth field when that is an account id, else none."""
    assert account_of_resource(resource) == account


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (f"acs:ram::{A}:root", PrincipalArn(A, "root")),
        (f"acs:ram::{A}:user/ravi.k", PrincipalArn(A, PrincipalKind.USER, "ravi.k")),
        (f"acs:ram::{A}:group/ops", PrincipalArn(A, PrincipalKind.GROUP, "ops")),
        (f"acs:ram::{A}:role/msa-2026-117", PrincipalArn(A, PrincipalKind.ROLE, "msa-2026-117")),
        (
            f"acs:ram::{A}:assumed-role/msa-2026-117/ravi@oncall",
            PrincipalArn(A, "assumed-role", "msa-2026-117", "ravi@oncall"),
        ),
    ],
)
def test_a_principal_arn_parses_and_renders_back(text: str, parsed: PrincipalArn) -> None:
    """Each principal kind parses to its parts, and the parts render the same ARN."""
    assert parse_principal_arn(text) == parsed
    assert type(parse_principal_arn(text).kind) is type(parsed.kind)  # a member, for user…
    assert parsed.arn == text
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("segment", "kind", "text"),
    [
        ("users", PrincipalKind.USER, "user"),
        ("groups", PrincipalKind.GROUP, "group"),
        ("roles", PrincipalKind.ROLE, "role"),
    ],
)
def test_a_principal_kind_is_its_string_and_its_url_segment_is_the_plural(
    segment: str, kind: PrincipalKind, text: str
) -> None:
    """Stored events and answers keep the bare strings; URLs name the plural collection."""
    assert PrincipalKind.from_plural(segment) is kind
    assert kind.plural == segment
    assert kind == text
    assert f"{kind}" == text
    assert json.dumps({"kind": kind}) == json.dumps({"kind": text})


@pytest.mark.parametrize("segment", ["user", "Users", "policies", "", "roless"])
def test_any_other_url_segment_names_no_principal_kind(segment: str) -> None:
    with pytest.raises(ValueError, match="names no principal collection"):
        PrincipalKind.from_plural(segment)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "mandate:admin",
        f"acs:ram::{A}:user/",
        f"acs:ram::{A}:user/ravi k",
        f"acs:ram::{A}:user/a/b",
        f"acs:ram::{A}:policy/P",
        f"acs:ram::{A}:Root",
        f"acs:ram::{A}:assumed-role/r",
        f"acs:ram::{A}:assumed-role/r/s",
        f"acs:ram:cn-hangzhou:{A}:root",
        "acs:ram::123:root",
        f"acs:oss::{A}:user/ravi",
        f"acs:ram::{A}:user/{'x' * 65}",
    ],
)
def test_a_malformed_principal_arn_is_refused_on_the_principal_field(text: str) -> None:
    """A malformed principal ARN raises InvalidInput naming the principal field."""
    with pytest.raises(InvalidInput) as caught:
        parse_principal_arn(text)
    assert [e.field for e in caught.value.errors] == ["principal"]
    assert caught.value.errors[0].reason
