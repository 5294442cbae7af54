"""A member's compiled control levels are cached per directory epoch; a reader outside the
index's ``steady`` lock (a management call's authorisation, the access review) may compute
them while a directory event applies. Levels read mid-change must never be served as current
afterwards: here a Deny control policy attached meanwhile must bound the member at once.

RAM's rule (control policies bound every RAM identity of the accounts beneath, an explicit
Deny wins): https://www.alibabacloud.com/help/en/resource-management/resource-directory/user-guide/overview-of-a-control-policy
"""

from __future__ import annotations

import pytest

import mandate.projections.decisions.directory_events as directory_events
from tests.e2e.conftest import MandateClient
from tests.e2e.test_resource_directory_api import NO_ECS, _join, _set_up


def test_levels_computed_during_an_attach_are_not_served_after_it(
    api: MandateClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    management, root_m, member, root_a = _set_up(api)
    rd = f"/v1/accounts/{management}/resource-directory"
    root = api.post(rd, headers=root_m).json()["root_folder_id"]
    _join(api, management, root_m, member, root_a)
    created = api.post(
        f"{rd}/control-policies",
        json={"policy_name": "NoEcs", "policy_document": NO_ECS},
        headers=root_m,
    )
    assert created.status_code == 201, created.text
    ecs = {
        "principal": f"acs:ram::{member}:user/dev",
        "action": "ecs:RunInstances",
        "resource": f"acs:ecs:*:{member}:instance/*",
    }
    assert api.authorize(root_a, **ecs)["decision"] == "Allow"
    index = api.runtime.index
    index._control_levels.clear()
    compile_levels = directory_events.compile_levels
    attached: list[int] = []

    def attach_meanwhile(levels: object, documents: object) -> object:
        out = compile_levels(levels, documents)  # type: ignore[arg-type]
        if not attached:  # the attach applies after the levels were read, before they're stored
            attached.append(1)
            done = api.put(f"{rd}/attachments/{root}/NoEcs", headers=root_m)
            assert done.status_code == 200, done.text
        return out

    monkeypatch.setattr(directory_events, "compile_levels", attach_meanwhile)
    directory_events.control_of(index, member)  # as a reader outside ``steady`` does
    monkeypatch.setattr(directory_events, "compile_levels", compile_levels)
    assert attached
    assert api.authorize(root_a, **ecs)["decision"] == "ExplicitDeny"
