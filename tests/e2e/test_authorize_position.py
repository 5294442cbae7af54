"""``POST /v1/authorize`` answers the position of exactly the state it decided on (issue 14).

The answer's ``position`` used to be read after deciding, so an event applied in between
made it name a later state than the one the decision used: an Allow answered with the
position of the detach that ended it. Here the detach is committed and handed to the index's
follower from inside the decision itself (a hook on ``decide_for``), on the real app over
SQLite and PostgreSQL: the answer must carry the position the decision read, and a decision
as of that position's ledger time must agree with it — while the next state denies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from mandate.domain.common.arns import PrincipalKind
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.policy.decisions import Answer
from mandate.projections.decisions.credentials import Credential
from tests.e2e.conftest import MandateClient

ADMIN = AuditContext(actor="mandate:admin")
READ = "oss:GetObject"


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def test_the_answer_names_the_state_decided_on_not_a_later_one(
    api: MandateClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = api.runtime
    index = runtime.index
    account, root = api.open_account("Positions")
    alice = api.create_user(account, root, "alice")
    resource = f"acs:oss:*:{account}:photos/x.jpg"
    api.create_policy(
        account, root, "Reader", [{"Effect": "Allow", "Action": READ, "Resource": "*"}]
    )
    api.attach(account, root, "users/alice", "Custom", "Reader")
    decide_for: Callable[[Credential, Any], Answer] = index.decide_for
    seen: list[tuple[int, datetime]] = []  # what the decision read: position, ledger time
    detached: list[int] = []

    def detach_while_deciding(credential: Credential, request: Any) -> Answer:
        if detached:
            return decide_for(credential, request)
        assert index.ledger_time is not None
        seen.append((index.position, index.ledger_time))
        answer = decide_for(credential, request)
        with acting_as(ADMIN):
            written = runtime.ledger.detach_policy(
                account, PrincipalKind.USER, "alice", "Custom", "Reader"
            )
        detached.append(written.position)
        started = threading.Event()

        def apply() -> None:
            started.set()
            runtime.follower.catch_up(written.position)

        applier = threading.Thread(target=apply, name="apply-during-decision")
        applier.start()
        started.wait()
        # Give the event every chance to apply now, before the answer's position is read:
        # a decision that holds events off makes this join give up, and the answer stands.
        applier.join(timeout=0.5)
        return answer

    monkeypatch.setattr(index, "decide_for", detach_while_deciding)
    answer = api.authorize(alice, action=READ, resource=resource)
    monkeypatch.undo()
    assert detached
    assert answer["decision"] == "Allow"
    [(decided_at, decided_time)] = seen
    assert answer["position"] == decided_at < detached[0]
    assert runtime.follower.wait_for(detached[0], 10)
    assert api.authorize(alice, action=READ, resource=resource)["decision"] == "ImplicitDeny"
    # the temporal property: as of the answered position's instant, the same decision
    then = api.authorize(
        root,
        principal=f"acs:ram::{account}:user/alice",
        action=READ,
        resource=resource,
        as_of=_rfc3339(decided_time),
    )
    assert then["decision"] == answer["decision"]
    assert index.ledger_time is not None
    after = api.authorize(
        root,
        principal=f"acs:ram::{account}:user/alice",
        action=READ,
        resource=resource,
        as_of=_rfc3339(index.ledger_time),
    )
    assert after["decision"] == "ImplicitDeny"
