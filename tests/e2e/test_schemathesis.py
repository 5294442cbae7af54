"""Schemathesis over the whole OpenAPI document, authenticated, with every check it has.

Each operation of ``/openapi.json`` gets a bounded number of generated requests (positive and
negative data, derandomised so a failure reproduces) sent over HTTP to the real app on SQLite,
as the root of a fresh account: ``account_id`` in a path is that account's id, so requests reach
the routes' real logic rather than stopping at 401 or 404. Every response must pass all of
schemathesis' checks — no 5xx, a documented status, content type, headers and body schema,
negative data refused, positive data not refused for its shape — or the operation fails with
the case as a reproducible ``curl``.

The bound (``MAX_EXAMPLES`` per operation and generation phase) keeps the run near a minute on
two cores; raise it locally with ``MANDATE_SCHEMATHESIS_EXAMPLES``.

A guard (``test_the_run_reaches_the_routes_logic``) checks that this set-up reaches what the
routes do — most operations answer a 2xx, not only refusals — so that the checks above are not
passed vacuously by 401s and 404s. It makes its own short positive pass over every operation
with the same set-up, so it holds whichever tests run, alone or in any order.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from mandate.api.app import create_app
from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, Headers, MandateClient, serving
from tests.oidc_support import CLIENT_ID, jwks

MAX_EXAMPLES = int(os.environ.get("MANDATE_SCHEMATHESIS_EXAMPLES", "8"))
GUARD_EXAMPLES = 3
"""Positive requests per operation in the guard's own pass."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MandateClient]:
    """The real app over a SQLite file, served on a loopback port for this module."""
    state_dir: Path = tmp_path_factory.mktemp("schemathesis")
    settings_ = Settings(
        database_url=f"sqlite:///{state_dir}/mandate.db",
        admin_token=ADMIN_TOKEN,
        hash_key=HASH_KEY,
        state_dir=state_dir,
        # ignored_auth sends every operation bad credentials, and one caller reads a lot:
        # limits this run would cross (429 is documented; tests/e2e/test_abuse* test them)
        auth_failure_burst_per_ip=1_000_000,
        auth_failure_burst_per_key=1_000_000,
        expensive_read_burst=1_000_000,
    )
    with serving(Runtime(settings_, create_tables=True)) as client:
        yield client


NAMED = "ops"
"""The name of the user, group, role, policy, control policy and OIDC provider each account
holds; every path parameter naming one (``user_name``, ``group_name``, ``role_name``,
``policy_name``, ``provider_name``, ``name``) is it."""
NAME_PARAMETERS = ("user_name", "group_name", "role_name", "policy_name", "provider_name", "name")
FOLDERS: dict[str, str] = {}
"""Each account's folder ``ops`` in the directory it manages: ``folder_id`` and ``target_id``
in a path are it."""


@pytest.fixture
def account(served: MandateClient) -> tuple[str, Headers]:
    """A fresh account per operation (``fresh_account``)."""
    return fresh_account(served)


def fresh_account(served: MandateClient) -> tuple[str, Headers]:
    """A new account holding a user, a group, a role and a policy named ``ops``, and its
    root's headers: one operation's writes (closing the account, rotating its root key,
    deleting the user) never starve another of what it acts on."""
    account_id, root = served.open_account("Schemathesis")
    base = f"/v1/accounts/{account_id}"
    served.create_user(account_id, root, NAMED)
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
            }
        ],
    }
    for path, body in (
        ("groups", {"group_name": NAMED}),
        ("roles", {"role_name": NAMED, "assume_role_policy_document": trust}),
    ):
        created = served.post(f"{base}/{path}", json=body, headers=root)
        assert created.status_code == 201, created.text
    served.create_policy(
        account_id, root, NAMED, [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]
    )
    provider = {
        "oidc_provider_name": NAMED,
        "issuer_url": f"https://idp.example.test/{account_id}",
        "client_ids": [CLIENT_ID],
        "jwks": jwks(),
    }
    directory = f"{base}/resource-directory"
    no_ecs = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}
    enabled = served.post(directory, headers=root)
    assert enabled.status_code in (200, 201), enabled.text
    for path, body in (
        ("oidc-providers", provider),
        ("resource-directory/control-policies", {"policy_name": NAMED, "policy_document": no_ecs}),
    ):
        created = served.post(f"{base}/{path}", json=body, headers=root)
        assert created.status_code == 201, created.text
    folder = served.post(
        f"{directory}/folders",
        json={"folder_name": NAMED, "parent_folder_id": enabled.json()["root_folder_id"]},
        headers=root,
    )
    assert folder.status_code == 201, folder.text
    FOLDERS[account_id] = folder.json()["folder_id"]
    return account_id, root


def _published_document() -> dict[str, Any]:
    """The OpenAPI document the app publishes at ``/openapi.json`` (built from its routes and
    models; no store is opened for it), read at collection time as parametrize needs it."""
    with tempfile.TemporaryDirectory() as state_dir:
        app = create_app(
            Settings(
                database_url=f"sqlite:///{state_dir}/unused.db",
                admin_token=ADMIN_TOKEN,
                hash_key=HASH_KEY,
                state_dir=Path(state_dir),
            )
        )
        document: dict[str, Any] = app.openapi()
    return document


schema = schemathesis.openapi.from_dict(_published_document())
# A schema-valid request may still be refused 400 for a rule JSON Schema cannot state: a
# policy document's grammar, an ARN's, a position beyond the log's head, ``from`` before
# ``to``, one of ``credentials``/``principal``/``signed``. Those are documented 400 problems;
# every other refusal of valid data (422, 415, 405...) still fails positive_data_acceptance.
_acceptance = schema.config.checks.positive_data_acceptance
_acceptance.expected_statuses = [*_acceptance.expected_statuses, "400"]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(
    case: Any, served: MandateClient, account: tuple[str, Headers]
) -> None:
    """Generated requests, authenticated as the account's root, pass every check."""
    account_id, root = account
    aimed(case, account_id).call_and_validate(base_url=str(served.base_url), headers=root)


def aimed(case: Any, account_id: str) -> Any:
    """``case`` aimed at the account and its entities: ``account_id`` in a path is the
    account's, and every name parameter is ``NAMED``."""
    parameters = case.path_parameters or {}
    if "account_id" in parameters:
        parameters["account_id"] = account_id
    for name in ("folder_id", "target_id"):
        if name in parameters and account_id in FOLDERS:
            parameters[name] = FOLDERS[account_id]
    for name in NAME_PARAMETERS:
        if name in parameters:
            parameters[name] = NAMED
    return case


def test_the_run_reaches_the_routes_logic(served: MandateClient) -> None:
    """With this module's set-up, every operation answers, none a 5xx, and most answer a 2xx
    at least once: the run exercises what they do, not only their refusals. Its own pass of
    ``GUARD_EXAMPLES`` positive requests per operation (a fresh account each, as above), so
    it depends on no other test having run, nor on their order."""
    answers = {
        operation.label: answers_of(operation, served)
        for operation in (result.ok() for result in schema.get_all_operations())
    }
    operations = sum(len(methods) for methods in schema.raw_schema["paths"].values())
    assert len(answers) == operations, sorted(answers)
    assert not [op for op, classes in answers.items() if classes[5]]
    succeeded = [op for op, classes in answers.items() if classes[2]]
    assert len(succeeded) >= len(answers) // 2, sorted(set(answers) - set(succeeded))


def answers_of(operation: Any, served: MandateClient) -> Counter[int]:
    """How many answers of each class (2 for 2xx…) ``GUARD_EXAMPLES`` positive requests to
    ``operation`` received, aimed at a fresh account as its root."""
    classes: Counter[int] = Counter()
    account_id, root = fresh_account(served)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=GUARD_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def probe(case: Any) -> None:
        response = aimed(case, account_id).call(base_url=str(served.base_url), headers=root)
        classes[response.status_code // 100] += 1

    probe()
    return classes
