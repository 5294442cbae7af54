"""``POST /v1/authorize``'s one definition of its shapes: the pydantic models it parses with
(``AuthorizeBody``) and answers in (``AnswerBody``) are the ones its OpenAPI entry is
generated from, and every kind of answer the hand-encoded hot path writes fits the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mandate.api.schemas import AnswerBody, AuthorizeBody
from tests.e2e.conftest import MandateClient

ALLOW_OSS_READ = [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}]
DENY_OSS_DELETE = [{"Effect": "Deny", "Action": "oss:DeleteObject", "Resource": "*"}]


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].removeprefix("#/components/schemas/")
    resolved: dict[str, Any] = document["components"]["schemas"][name]
    return resolved


def test_the_openapi_entry_is_generated_from_the_models_the_route_uses(
    api: MandateClient,
) -> None:
    """Body and answer schemas are the models' own; Min-Position is a header parameter."""
    document = api.get("/openapi.json").json()
    operation = document["paths"]["/v1/authorize"]["post"]
    assert operation["operationId"] == "authorize"
    assert operation["tags"] == ["decisions"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/AuthorizeBody"}
    body_schema = _resolve(body, document)
    model_schema = AuthorizeBody.model_json_schema()
    assert body_schema["properties"].keys() == model_schema["properties"].keys()
    assert body_schema["required"] == model_schema["required"] == ["action", "resource"]
    assert body_schema["additionalProperties"] is False
    assert body_schema["properties"]["action"]["maxLength"] == 256
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    answer_schema = _resolve(answer, document)
    assert answer_schema["properties"].keys() == AnswerBody.model_fields.keys()
    assert {"400", "401", "403", "503"} <= operation["responses"].keys()
    headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert headers == ["Min-Position"]


def test_every_kind_of_answer_fits_the_answer_model(api: MandateClient) -> None:
    """Allow, deny, a memoised repeat, refused credentials, an unknown principal, the past."""
    account_id, root = api.open_account()
    ana = api.create_user(account_id, root, "ana")
    api.create_policy(account_id, root, "Reader", ALLOW_OSS_READ)
    api.create_policy(account_id, root, "NoDelete", DENY_OSS_DELETE)
    api.attach(account_id, root, "users/ana", "Custom", "Reader")
    api.attach(account_id, root, "users/ana", "Custom", "NoDelete")
    resource = f"acs:oss:*:{account_id}:bucket/b/o"
    ana_arn = f"acs:ram::{account_id}:user/ana"
    answers = [
        api.authorize(ana, action="oss:GetObject", resource=resource),
        api.authorize(ana, action="oss:GetObject", resource=resource),  # memoised
        api.authorize(ana, action="oss:DeleteObject", resource=resource),
        api.authorize(ana, action="ecs:StartInstance", resource=resource),
        api.authorize(root, action="oss:GetObject", resource=resource),
        api.authorize(root, action="oss:GetObject", resource=resource, principal=ana_arn),
        api.authorize(
            root,
            action="oss:GetObject",
            resource=resource,
            credentials={"access_key_id": "LTAI-none", "access_key_secret": "x"},
        ),
        api.authorize(
            root,
            action="oss:GetObject",
            resource=resource,
            principal=f"acs:ram::{account_id}:user/nobody",
        ),
        api.authorize(
            root,
            action="oss:GetObject",
            resource=resource,
            principal=ana_arn,
            as_of=datetime.now(UTC).isoformat(),
        ),
    ]
    parsed = [AnswerBody.model_validate(a) for a in answers]
    assert [p.decision for p in parsed] == [
        "Allow",
        "Allow",
        "ExplicitDeny",
        "ImplicitDeny",
        "Allow",
        "Allow",
        "ImplicitDeny",
        "ImplicitDeny",
        "Allow",
    ]
    assert parsed[2].matched[0].effect == "Deny"
    assert parsed[6].authenticated is False
    assert parsed[7].authenticated is None
    assert "authenticated" in answers[7]
    assert parsed[8].as_of is not None


def test_credentials_and_principal_together_are_one_400_naming_principal(
    api: MandateClient,
) -> None:
    """The model's own check: the same 400 (field ``principal``) as every body error."""
    account_id, root = api.open_account()
    response = api.post(
        "/v1/authorize",
        json={
            "action": "oss:GetObject",
            "resource": "*",
            "principal": f"acs:ram::{account_id}:root",
            "credentials": {"access_key_id": "LTAI-x", "access_key_secret": "y"},
        },
        headers=root,
    )
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert errors == [
        {"field": "principal", "reason": "give either credentials or principal, not both"}
    ]
