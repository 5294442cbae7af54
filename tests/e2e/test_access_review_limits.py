"""Access review cannot be turned into a denial of service: bounded work, bounded concurrency."""

from __future__ import annotations

import pytest

from mandate.api.routers import access_review
from tests.e2e.conftest import MandateClient
from tests.e2e.test_access_review_api import _ok, _problem, _review


def test_a_window_beyond_the_instant_bound_is_refused_with_a_reason(
    api: MandateClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More instants than one review may decide at: 400 naming ``from``, and nothing written."""
    account, root = api.open_account()
    for name in ("ana", "bo", "cy"):
        api.create_user(account, root, name)
    monkeypatch.setattr(access_review, "MAX_INSTANTS", 2)
    head = api.log_head()
    refused = _problem(_review(api, account, root), 400)
    [error] = refused["errors"]
    assert error["field"] == "from"
    assert "more than 2 instants" in error["reason"]
    assert api.log_head() == head
    monkeypatch.setattr(access_review, "MAX_INSTANTS", 100_000)
    monkeypatch.setattr(access_review, "MAX_DECISIONS", 1)
    refused = _problem(_review(api, account, root), 400)
    assert "more than 1 decisions" in refused["errors"][0]["reason"]


def test_a_review_beyond_the_concurrency_limit_is_503_with_retry_after(
    api: MandateClient,
) -> None:
    """While every slot of the process computes a review, one more is told to come back."""
    account, root = api.open_account()
    slots = access_review._reviews_of(api.runtime).slots
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    try:
        assert taken == access_review.MAX_CONCURRENT_REVIEWS
        busy = _problem(_review(api, account, root), 503)
        assert "access reviews are being computed" in busy["detail"]
        assert _review(api, account, root).headers["retry-after"] == "2"
    finally:
        for _ in range(taken):
            slots.release()
    assert [i["principal_type"] for i in _ok(_review(api, account, root))["items"]] == ["root"]
