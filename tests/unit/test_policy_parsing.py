"""Parsing policy documents: every refusal names its JSON path and reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.policy.document import (
    MAX_POLICY_DOCUMENT_CHARS,
    DocumentKind,
    Effect,
    PolicyDocument,
    parse_policy_document,
)

A = "1837465920374651"
PHOTOS = f"acs:oss:*:{A}:照片/*"


def doc(*statements: Any) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def allow(**overrides: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}
    statement.update(overrides)
    return {k: v for k, v in statement.items() if v is not ...}


def with_condition(condition: Any) -> dict[str, Any]:
    return doc(allow(Condition=condition))


def trust(**overrides: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": {"RAM": [f"acs:ram::{A}:root"]},
    }
    statement.update(overrides)
    return doc({k: v for k, v in statement.items() if v is not ...})


def refusal(raw: Any, kind: DocumentKind = DocumentKind.IDENTITY) -> list[FieldError]:
    with pytest.raises(InvalidInput) as caught:
        parse_policy_document(raw, kind=kind)
    return caught.value.errors


BAD_IDENTITY_DOCUMENTS: list[tuple[str, Any, str, str]] = [
    ("not JSON", '{"Version": "1",', "", "not valid JSON"),
    ("a duplicate key", '{"Version": "1", "Version": "1", "Statement": []}', "", "twice"),
    ("a NaN", '{"Version": "1", "Statement": [], "X": NaN}', "", "not valid JSON"),
    ("a JSON array", "[]", "", "JSON object"),
    ("no Version", {"Statement": [allow()]}, "Version", "required"),
    ("another Version", {"Version": "2012-10-17", "Statement": [allow()]}, "Version", '"1"'),
    ("a numeric Version", {"Version": 1, "Statement": [allow()]}, "Version", '"1"'),
    ("an unknown top-level key", {**doc(allow()), "Id": "x"}, "Id", "not a key"),
    ("no Statement", {"Version": "1"}, "Statement", "required"),
    ("an empty Statement list", doc(), "Statement", "empty"),
    ("a Statement object", {"Version": "1", "Statement": allow()}, "Statement", "list"),
    ("a statement that is not an object", doc(allow(), "Allow"), "Statement[1]", "object"),
    ("no Effect", doc(allow(Effect=...)), "Statement[0].Effect", "required"),
    ("a lower-case Effect", doc(allow(Effect="allow")), "Statement[0].Effect", '"Allow"'),
    ("both Action and NotAction", doc(allow(NotAction="ram:*")), "Statement[0]", "not both"),
    ("neither Action nor NotAction", doc(allow(Action=...)), "Statement[0]", "Action"),
    ("an empty Action list", doc(allow(Action=[])), "Statement[0].Action", "empty"),
    (
        "a number among the actions",
        doc(allow(), allow(Action=["oss:GetObject", "oss:PutObject", 7])),
        "Statement[1].Action[2]",
        "string",
    ),
    (
        "an action without a service",
        doc(allow(Action="GetObject")),
        "Statement[0].Action",
        "service",
    ),
    (
        "a NotAction with a bad pattern",
        doc(allow(Action=..., NotAction=["ram:*", "oss:Get Object"])),
        "Statement[0].NotAction[1]",
        "service:Action",
    ),
    (
        "an action that is an object",
        doc(allow(Action={"oss": "Get"})),
        "Statement[0].Action",
        "list",
    ),
    ("no Resource", doc(allow(Resource=...)), "Statement[0].Resource", "required"),
    ("an empty Resource list", doc(allow(Resource=[])), "Statement[0].Resource", "empty"),
    (
        "a resource that is not an ARN",
        doc(allow(Resource="photos/*")),
        "Statement[0].Resource",
        "acs:",
    ),
    (
        "a Principal in an identity policy",
        doc(allow(Principal={"RAM": [A]})),
        "Statement[0].Principal",
        "trust policy",
    ),
    ("an unknown statement key", doc(allow(Label="one")), "Statement[0].Label", "not a key"),
    ("a Sid that is not a string", doc(allow(Sid=1)), "Statement[0].Sid", "string"),
    ("a Condition that is a list", with_condition([]), "Statement[0].Condition", "object"),
    ("an empty Condition", with_condition({}), "Statement[0].Condition", "at least one"),
    (
        "an unknown condition operator",
        with_condition({"StringEqualz": {"oss:Prefix": "a"}}),
        "Statement[0].Condition.StringEqualz",
        "not a condition operator",
    ),
    (
        "an IfExists operator",
        with_condition({"StringEqualsIfExists": {"oss:Prefix": "a"}}),
        "Statement[0].Condition.StringEqualsIfExists",
        "not a condition operator",
    ),
    (
        "an operator holding a list",
        with_condition({"StringEquals": ["oss:Prefix"]}),
        "Statement[0].Condition.StringEquals",
        "object",
    ),
    (
        "an operator with no keys",
        with_condition({"StringEquals": {}}),
        "Statement[0].Condition.StringEquals",
        "at least one",
    ),
    (
        "an empty list of condition values",
        with_condition({"StringEquals": {"oss:Prefix": []}}),
        "Statement[0].Condition.StringEquals.oss:Prefix",
        "empty",
    ),
    (
        "a null condition value",
        with_condition({"StringEquals": {"oss:Prefix": None}}),
        "Statement[0].Condition.StringEquals.oss:Prefix",
        "single value",
    ),
    (
        "a nested list of condition values",
        with_condition({"StringEquals": {"oss:Prefix": [["a"]]}}),
        "Statement[0].Condition.StringEquals.oss:Prefix[0]",
        "single value",
    ),
    (
        "a number that is not a number",
        with_condition({"NumericLessThan": {"oss:MaxKeys": "ten"}}),
        "Statement[0].Condition.NumericLessThan.oss:MaxKeys",
        "not a finite number",
    ),
    (
        "a second number that is not a number",
        with_condition({"NumericEquals": {"oss:MaxKeys": [10, "1_000"]}}),
        "Statement[0].Condition.NumericEquals.oss:MaxKeys[1]",
        "not a finite number",
    ),
    (
        "a boolean given as a number",
        with_condition({"NumericEquals": {"oss:MaxKeys": True}}),
        "Statement[0].Condition.NumericEquals.oss:MaxKeys",
        "not a finite number",
    ),
    (
        "a date without a zone",
        with_condition({"DateLessThan": {"acs:CurrentTime": "2027-01-01T00:00:00"}}),
        "Statement[0].Condition.DateLessThan.acs:CurrentTime",
        "zone",
    ),
    (
        "a day that does not exist",
        with_condition({"DateGreaterThan": {"acs:CurrentTime": "2027-02-30"}}),
        "Statement[0].Condition.DateGreaterThan.acs:CurrentTime",
        "YYYY-MM-DD",
    ),
    (
        "a date that does not exist",
        with_condition({"DateEquals": {"acs:CurrentTime": "2027-02-30T00:00:00Z"}}),
        "Statement[0].Condition.DateEquals.acs:CurrentTime",
        "RFC 3339",
    ),
    (
        "a boolean that is not a boolean",
        with_condition({"Bool": {"acs:SecureTransport": "yes"}}),
        "Statement[0].Condition.Bool.acs:SecureTransport",
        "not a boolean",
    ),
    (
        "an address that is not an address",
        doc(
            allow(), allow(Condition={"IpAddress": {"acs:SourceIp": ["10.0.0.300", "10.0.0.0/8"]}})
        ),
        "Statement[1].Condition.IpAddress.acs:SourceIp[0]",
        "not an IP address",
    ),
    (
        "a block with too long a prefix",
        with_condition({"NotIpAddress": {"acs:SourceIp": "10.0.0.0/33"}}),
        "Statement[0].Condition.NotIpAddress.acs:SourceIp",
        "CIDR",
    ),
]


@pytest.mark.parametrize(
    ("document", "path", "reason"),
    [pytest.param(d, p, r, id=name) for name, d, p, r in BAD_IDENTITY_DOCUMENTS],
)
def test_a_malformed_identity_document_is_refused_with_its_path_and_reason(
    document: Any, path: str, reason: str
) -> None:
    """A malformed identity document is refused naming the faulty path and why."""
    errors = refusal(document)
    assert path in [e.field for e in errors], errors
    assert any(reason in e.reason for e in errors if e.field == path), errors


BAD_TRUST_DOCUMENTS: list[tuple[str, Any, str, str]] = [
    ("no Principal", trust(Principal=...), "Statement[0].Principal", "required"),
    ("a Resource", trust(Resource="*"), "Statement[0].Resource", "trust policy"),
    ("an empty Principal", trust(Principal={}), "Statement[0].Principal", "RAM or Service"),
    (
        "an unknown principal kind",
        trust(Principal={"AWS": "x"}),
        "Statement[0].Principal.AWS",
        "key",
    ),
    (
        "a RAM principal that is not an ARN",
        trust(Principal={"RAM": [f"acs:ram::{A}:root", "ravi"]}),
        "Statement[0].Principal.RAM[1]",
        "account id",
    ),
    (
        "an empty Service list",
        trust(Principal={"Service": []}),
        "Statement[0].Principal.Service",
        "empty",
    ),
]


@pytest.mark.parametrize(
    ("document", "path", "reason"),
    [pytest.param(d, p, r, id=name) for name, d, p, r in BAD_TRUST_DOCUMENTS],
)
def test_a_malformed_trust_document_is_refused_with_its_path_and_reason(
    document: Any, path: str, reason: str
) -> None:
    """A malformed trust document is refused naming the faulty path and why."""
    errors = refusal(document, DocumentKind.TRUST)
    assert path in [e.field for e in errors], errors
    assert any(reason in e.reason for e in errors if e.field == path), errors


def test_every_fault_of_a_document_is_reported_at_once() -> None:
    """Faults in several statements and keys are all reported in one refusal."""
    errors = refusal(
        {
            "Version": "2",
            "Statement": [
                allow(Effect="Permit", Condition={"Bool": {"acs:MFAPresent": "maybe"}}),
                allow(Resource=...),
            ],
        }
    )
    assert [e.field for e in errors] == [
        "Version",
        "Statement[0].Effect",
        "Statement[0].Condition.Bool.acs:MFAPresent",
        "Statement[1].Resource",
    ]


def test_shape_faults_are_reworded_as_human_phrases() -> None:
    """Shape faults found by pydantic read as lower-case phrases, never as internal codes."""
    errors = refusal(doc(allow(Effect=3, Action=[1], Resource={"a": 1})))
    assert errors
    for error in errors:
        assert error.reason[:1].islower()
        assert "_type" not in error.reason


def test_a_single_string_equals_a_one_element_list() -> None:
    """A single string for Action, Resource, a principal or a condition value means a list of it."""
    short = parse_policy_document(
        doc(allow(Action="oss:GetObject", Resource="*", Condition={"Bool": {"k": "true"}}))
    )
    long = parse_policy_document(
        doc(allow(Action=["oss:GetObject"], Resource=["*"], Condition={"Bool": {"k": ["true"]}}))
    )
    assert short.statements[0].actions == long.statements[0].actions == ("oss:GetObject",)
    assert short.statements[0].resource == long.statements[0].resource == ("*",)
    ram = parse_policy_document(trust(Principal={"RAM": A}), kind=DocumentKind.TRUST)
    principal = ram.statements[0].principal
    assert principal is not None
    assert principal.ram == (A,)


def test_a_statement_exposes_its_parts() -> None:
    """A parsed statement gives its effect, actions, negation and compiled conditions."""
    parsed = parse_policy_document(
        doc(
            allow(Action=..., NotAction="ram:*", Effect="Deny"),
            allow(Condition={"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}),
        )
    )
    first, second = parsed.statements
    assert first.effect is Effect.DENY
    assert first.negated
    assert first.actions == ("ram:*",)
    assert first.conditions is None
    assert not second.negated
    assert second.conditions is not None
    assert second.conditions.keys == frozenset({"acs:sourceip"})


def test_text_and_mapping_give_the_same_document() -> None:
    """A document given as JSON text equals the same document given as a mapping."""
    mapping = doc(allow(Condition={"NumericLessThan": {"oss:MaxKeys": 100}}))
    assert parse_policy_document(json.dumps(mapping, indent=4)) == parse_policy_document(mapping)


def test_canonical_json_is_sorted_and_compact() -> None:
    """The canonical text sorts keys, has no whitespace and keeps the document as written."""
    parsed = parse_policy_document(
        '{"Statement": [{"Resource": "*", "Effect": "Allow", "Action": "oss:Get*"}],\n'
        ' "Version": "1"}'
    )
    assert parsed.canonical_json() == (
        '{"Statement":[{"Action":"oss:Get*","Effect":"Allow","Resource":"*"}],"Version":"1"}'
    )


def test_canonical_json_is_stable_under_key_order_and_reparsing() -> None:
    """Reordered keys give the same canonical text, and parsing it gives an equal document."""
    one = parse_policy_document(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Resource": PHOTOS, "Action": "oss:*"}]}
    )
    two = parse_policy_document(
        {"Statement": [{"Action": "oss:*", "Resource": PHOTOS, "Effect": "Allow"}], "Version": "1"}
    )
    assert one.canonical_json() == two.canonical_json()
    assert "照片" in one.canonical_json()
    again = parse_policy_document(one.canonical_json())
    assert again == one
    assert hash(again) == hash(one)
    assert again.canonical_json() == one.canonical_json()


def test_as_dict_is_a_fresh_copy_of_the_document() -> None:
    """``as_dict`` returns the document's JSON, and changing it does not change the document."""
    parsed = parse_policy_document(doc(allow()))
    copy = parsed.as_dict()
    assert copy == doc(allow())
    copy["Version"] = "2"
    assert parsed.as_dict() == doc(allow())


def test_a_document_at_the_size_limit_is_accepted_and_one_over_is_refused() -> None:
    """The size limit is measured on the text as given, in characters."""
    base = json.dumps(doc(allow(Resource=f"acs:oss:*:{A}:")))
    padding = MAX_POLICY_DOCUMENT_CHARS - len(base)
    at_limit = base.replace(f"{A}:", f"{A}:" + "x" * padding)
    assert len(at_limit) == MAX_POLICY_DOCUMENT_CHARS
    assert isinstance(parse_policy_document(at_limit), PolicyDocument)
    over = at_limit.replace(f"{A}:", f"{A}:x")
    errors = refusal(over)
    assert errors == [FieldError("", f"must be at most 6144 characters; this one has {6145}")]


def test_a_mapping_is_measured_on_its_canonical_json() -> None:
    """A mapping's size is the length of its canonical text, whitespace excluded."""
    mapping = doc(allow())
    size = len(json.dumps(mapping, separators=(",", ":")))
    parse_policy_document(mapping, max_chars=size)
    with pytest.raises(InvalidInput):
        parse_policy_document(mapping, max_chars=size - 1)


def test_whitespace_in_text_counts_towards_the_limit() -> None:
    """Pretty-printed text is measured as given, whitespace included."""
    text = json.dumps(doc(allow()), indent=8)
    compact = len(json.dumps(doc(allow()), separators=(",", ":")))
    with pytest.raises(InvalidInput):
        parse_policy_document(text, max_chars=compact)


def test_a_trust_document_names_principals() -> None:
    """A trust document is parsed with its RAM and Service principals and no resource."""
    parsed = parse_policy_document(
        trust(Principal={"RAM": [A, f"acs:ram::{A}:user/ravi"], "Service": "ecs.aliyuncs.com"}),
        kind=DocumentKind.TRUST,
    )
    assert parsed.kind is DocumentKind.TRUST
    statement = parsed.statements[0]
    assert statement.resource is None
    assert statement.principal is not None
    assert statement.principal.ram == (A, f"acs:ram::{A}:user/ravi")
    assert statement.principal.service == ("ecs.aliyuncs.com",)


def test_the_same_text_as_identity_and_trust_documents_differs() -> None:
    """A trust document's statements need a Principal, so an identity document is not one."""
    errors = refusal(doc(allow()), DocumentKind.TRUST)
    assert {e.field for e in errors} == {"Statement[0].Principal", "Statement[0].Resource"}


VALID_CONDITION_VALUES: list[tuple[str, Any]] = [
    ("NumericEquals", "10"),
    ("NumericEquals", -2.5),
    ("NumericLessThan", "1e3"),
    ("DateLessThan", "2027-01-01T00:00:00Z"),
    ("DateLessThan", "2027-01-01t00:00:00.123456789+08:00"),
    ("DateGreaterThan", 1_800_000_000),
    ("Bool", "TRUE"),
    ("Bool", False),
    ("IpAddress", "203.0.113.5"),
    ("IpAddress", "2001:db8::/32"),
    ("NotIpAddress", ["10.0.0.0/8", "172.16.0.0/12"]),
    ("StringLike", "photos/*"),
    ("StringEquals", 42),
]


@pytest.mark.parametrize(("operator", "value"), VALID_CONDITION_VALUES)
def test_condition_values_may_be_written_as_text_or_numbers(operator: str, value: Any) -> None:
    """Numbers, dates and addresses are accepted as strings or JSON numbers, as RAM allows."""
    parsed = parse_policy_document(with_condition({operator: {"k": value}}))
    assert parsed.statements[0].conditions is not None
