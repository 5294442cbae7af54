"""``held_at`` and ended sessions (``GET …/as-of/sessions?ended_since=``), on each store.

A session's expiry is no event, and its revocation closes its fact: an as-of listing leaves
both out (it lists what was alive at T), and with ``ended_since`` lists them as ``expired`` or
``revoked`` if they ended then or later (the audit console's graph draws them ended). The
instants read lie after the session's expiration, in the future of the test's clock: the API
refuses a future ``as_of``, the temporal index answers for any instant from the facts it
holds, so the listing function is asked directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import role_arn, user_arn
from mandate.domain.common.audit import AuditContext
from mandate.domain.ledger.application import IssuedKey, IssuedSession
from mandate.projections.history.as_of_listing import held_at
from tests.integration.runtimes import running

ADMIN = AuditContext(actor="mandate:admin", request_id="req-as-of-expired")
SECOND = timedelta(seconds=1)


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url) as the_runtime:
        yield the_runtime


def test_an_expired_or_revoked_session_is_listed_ended_only_when_asked(runtime: Runtime) -> None:
    ledger = runtime.ledger
    do = runtime.write
    a = do(ADMIN, lambda: ledger.open_account("Acme")).account_id
    do(ADMIN, lambda: ledger.create_user(a, "app", None))
    do(
        ADMIN,
        lambda: ledger.attach_policy(a, "user", "app", "System", "AliyunSTSAssumeRoleAccess"),
    )
    key: IssuedKey = do(ADMIN, lambda: ledger.create_access_key(a, "app"))
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [user_arn(a, "app")]},
            }
        ],
    }
    do(ADMIN, lambda: ledger.create_role(a, "uploader", trust))
    caller = runtime.index.assuming_caller(
        runtime.index.authenticate(key.access_key_id, key.access_key_secret)
    )

    def assume(name: str) -> IssuedSession:
        return do(
            ADMIN,
            lambda: ledger.assume_role(
                caller,
                role_arn=role_arn(a, "uploader"),
                role_session_name=name,
                duration_seconds=900,
            ),
        )

    issued = assume("nightly")
    manual = assume("manual")
    before_revocation = datetime.now(UTC)
    do(ADMIN, lambda: ledger.revoke_session(manual.access_key_id))
    revoked = datetime.now(UTC)
    assert runtime.temporal.wait_for(runtime.head(), 10.0)
    store = runtime.as_of.store
    ends = issued.expiration

    (alive,) = held_at(store, a, "session", ends - SECOND)  # the revoked one: left out
    assert (alive.id, alive.status) == (issued.access_key_id, "active")
    assert held_at(store, a, "session", ends + SECOND) == []  # alive at T: expired, left out
    (expired,) = held_at(store, a, "session", ends + SECOND, ended_since=ends - SECOND)
    assert (expired.id, expired.name, expired.status) == (
        issued.access_key_id,
        "nightly",
        "expired",
    )
    assert expired.details["expiration"] == ends
    assert expired.details["role_name"] == "uploader"
    # expired before the window asked: left out
    assert held_at(store, a, "session", ends + 2 * SECOND, ended_since=ends + SECOND) == []
    # a live session is listed whatever the window; the one revoked in it, as revoked then
    now = datetime.now(UTC)
    listed = held_at(store, a, "session", now, ended_since=before_revocation)
    assert [(h.name, h.status) for h in listed] == [("manual", "revoked"), ("nightly", "active")]
    assert before_revocation <= listed[0].details["ended_at"] <= revoked
    assert held_at(store, a, "session", now, ended_since=revoked + SECOND)[0].name == "nightly"
    assert len(held_at(store, a, "session", now, ended_since=revoked + SECOND)) == 1
