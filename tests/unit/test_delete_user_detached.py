"""RAM's DeleteUser rule as the ledger's: ``delete_user(..., require_detached=True)``.

RAM refuses DeleteUser while the user has AccessKeys, groups or policies, naming the first in
that order (``DeleteConflict.User.AccessKey``, ``.Group``, ``.Policy``: RAM's DeleteUser page
and error codes). The user aggregate decides it as the command loads it, so a refusal writes
no event; /v1's DELETE keeps its own rule (the user's keys go with it, ``detach`` takes its
policies and groups too).
"""

from __future__ import annotations

import pytest

from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import PreconditionFailed
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger

ACTOR = AuditContext(actor="mandate:admin", credential="test", request_id="t-1")


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )


def _head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def _refused(ledger: Ledger, account: str, **options: bool) -> str:
    """Run a DeleteUser that must be refused; check it wrote nothing; answer its code."""
    head = _head(ledger)
    with pytest.raises(PreconditionFailed) as caught:
        ledger.delete_user(account, "alice", **options)
    assert _head(ledger) == head, "a refused DeleteUser wrote an event"
    return str(caught.value.code)


def test_require_detached_names_keys_then_groups_then_policies_and_writes_nothing(
    ledger: Ledger,
) -> None:
    with acting_as(ACTOR):
        account = ledger.open_account("Acme").account_id
        ledger.create_user(account, "alice", None)
        ledger.create_group(account, "devs")
        ledger.add_user_to_group(account, "devs", "alice")
        ledger.attach_policy(account, "user", "alice", "System", "ReadOnlyAccess")
        key = ledger.create_access_key(account, "alice").access_key_id

        assert _refused(ledger, account, require_detached=True) == "DeleteConflict.User.AccessKey"
        # detach does not lift RAM's rule: it is decided first
        assert _refused(ledger, account, require_detached=True, detach=True) == (
            "DeleteConflict.User.AccessKey"
        )
        ledger.delete_access_key(account, "alice", key)
        assert _refused(ledger, account, require_detached=True) == "DeleteConflict.User.Group"
        ledger.remove_user_from_group(account, "devs", "alice")
        assert _refused(ledger, account, require_detached=True) == "DeleteConflict.User.Policy"
        ledger.detach_policy(account, "user", "alice", "System", "ReadOnlyAccess")

        deleted = ledger.delete_user(account, "alice", require_detached=True)
    assert deleted.position == _head(ledger)


def test_without_the_option_the_users_keys_go_with_it(ledger: Ledger) -> None:
    """/v1's rule is unchanged: keys are deleted with the user, policies refused unless detach."""
    with acting_as(ACTOR):
        account = ledger.open_account("Acme").account_id
        ledger.create_user(account, "alice", None)
        ledger.create_access_key(account, "alice")
        ledger.attach_policy(account, "user", "alice", "System", "ReadOnlyAccess")
        assert _refused(ledger, account) == "DeleteConflict.User"
        head = _head(ledger)
        deleted = ledger.delete_user(account, "alice", detach=True)
    assert deleted.position > head
