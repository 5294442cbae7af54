"""``projections.audit.shown``: a record's sealed display name, as answers show it."""

from __future__ import annotations

from typing import Any

from mandate.domain.identity.principals import display_name_binding
from mandate.projections.audit.shown import shown_record, shown_records

ACCOUNT = "1234567890123456"
SEALED = "v1$p1-1234567890123456$opaque"


def _record(summary: dict[str, Any], accounts: list[str] | None = None) -> dict[str, Any]:
    return {
        "position": 7,
        "accounts": accounts or [ACCOUNT],
        "event_type": "UserCreated",
        "summary": summary,
        "hash": "ab" * 32,
    }


def _reader(answers: dict[tuple[str, str], str]) -> Any:
    asked: list[tuple[str, str]] = []

    def read(sealed: str, bound_to: str) -> str | None:
        asked.append((sealed, bound_to))
        return answers.get((sealed, bound_to))

    read.asked = asked  # type: ignore[attr-defined]
    return read


def test_a_sealed_display_name_is_shown_opened_in_place_of_the_ciphertext() -> None:
    read = _reader({(SEALED, display_name_binding(ACCOUNT)): "Alice"})
    stored = _record({"user_name": "alice", "display_name": None, "display_name_sealed": SEALED})
    shown = shown_record(stored, read)
    assert shown == {**stored, "summary": {"user_name": "alice", "display_name": "Alice"}}
    assert stored["summary"]["display_name_sealed"] == SEALED  # the stored form is untouched
    assert read.asked == [(SEALED, f"user display name|{ACCOUNT}")]


def test_once_its_key_is_gone_it_reads_erased_never_sealed() -> None:
    stored = _record({"user_name": "alice", "display_name": None, "display_name_sealed": SEALED})
    (shown,) = shown_records([stored], _reader({}))
    assert shown["summary"] == {
        "user_name": "alice",
        "display_name": None,
        "personal_data": "erased",
    }
    assert shown["hash"] == stored["hash"]


def test_records_without_a_sealed_value_are_shown_as_stored() -> None:
    read = _reader({})
    legacy = _record({"user_name": "old", "display_name": "Old Clear-Name"})
    other = {**_record({}), "summary": {"group_name": "devs"}}
    assert list(shown_records([legacy, other], read)) == [legacy, other]
    assert read.asked == []


def test_a_record_of_two_accounts_never_opens_a_display_name() -> None:
    read = _reader({(SEALED, display_name_binding(ACCOUNT)): "Alice"})
    stored = _record({"display_name": None, "display_name_sealed": SEALED}, [ACCOUNT, "2" * 16])
    assert shown_record(stored, read)["summary"] == {
        "display_name": None,
        "personal_data": "erased",
    }
    assert read.asked == []
