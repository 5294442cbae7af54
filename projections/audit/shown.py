"""Audit records as answers show them: personal data opened, or marked erased.

A record stores — and both its chains hash — a display name only as the event recorded it:
sealed under the account's personal-data key (``summary.display_name_sealed``, with
``display_name`` null). That is what keeps every chain and signed checkpoint verifying after
the key is destroyed, so verification (``verify_trail``) and offline bundles read records as
stored. An answer is read by people: it shows the display name opened while the key lives,
and ``"display_name": null, "personal_data": "erased"`` once it was destroyed — never the
ciphertext, which opens nowhere then and says nothing to a reader before. A record whose
display name was recorded in clear (before sealing) is shown as stored.

The record's ``hash`` is kept: it is the stored record's place in its chain. A shown record
with an opened display name does not re-hash to it; re-hash the stored form (a bundle of
``mandate audit export --bundle``) to verify a chain offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from mandate.domain.identity.principals import display_name_binding

__all__ = ["ERASED", "PersonalReader", "shown_record", "shown_records"]

PersonalReader = Callable[[str, str], str | None]
"""``read(sealed, bound_to)``: the clear value, or None once its key was erased (the
keyring's ``personal_reader()``, one per answer)."""

ERASED: Final = "erased"
"""``summary.personal_data`` of a record whose display name's key was destroyed (as the
``personal_data`` of a user's /v1 answer)."""

_SEALED: Final = "display_name_sealed"


def shown_record(record: dict[str, Any], read: PersonalReader) -> dict[str, Any]:
    """``record`` with its sealed display name opened (or marked erased); others as they are.

    The binding is the account the record concerns: a user's events concern exactly its own
    account. A sealed value that does not open (another binding, a damaged value) reads as
    erased, like one whose key is gone: it is never shown.
    """
    summary = record.get("summary")
    if not isinstance(summary, dict) or _SEALED not in summary:
        return record
    sealed = summary[_SEALED]
    accounts = record.get("accounts")
    clear: str | None = None
    if isinstance(sealed, str) and isinstance(accounts, list) and len(accounts) == 1:
        clear = read(sealed, display_name_binding(str(accounts[0])))
    opened = {key: value for key, value in summary.items() if key != _SEALED}
    opened["display_name"] = clear
    if clear is None:
        opened["personal_data"] = ERASED
    return {**record, "summary": opened}


def shown_records(
    records: Iterable[dict[str, Any]], read: PersonalReader
) -> Iterator[dict[str, Any]]:
    """Each of ``records`` as ``shown_record`` shows it, lazily (exports stream)."""
    for record in records:
        yield shown_record(record, read)
