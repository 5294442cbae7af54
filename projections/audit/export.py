"""Exports of the audit trail: CSV lines, and a bundle anyone can verify offline.

A bundle is a directory of three files:

* ``records.ndjson`` — one record per line, each with the ``hash`` of its chain (the global
  chain, or the account's for an account's export);
* ``checkpoints.json`` — the signed heads of that chain;
* ``public-key.pem`` — a copy of the Ed25519 public key (an auditor should trust a copy
  obtained apart, e.g. from ``GET /v1/audit/public-key`` at the time, not the bundle's own).

``verify_bundle`` needs nothing but the files and the key: it re-hashes the chain and checks
every checkpoint's signature and head, naming the first position that disagrees.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from mandate.projections.audit.chain import SignedCheckpoint
from mandate.projections.audit.verify import Verification, verify_chain

__all__ = ["CSV_COLUMNS", "csv_lines", "neutralised", "verify_bundle", "write_bundle"]

CSV_COLUMNS = (
    "position",
    "time",
    "accounts",
    "actor",
    "credential",
    "event_type",
    "target",
    "summary",
    "reason",
    "request_id",
    "source_ip",
    "hash",
)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet reads as the start of a formula (OWASP's "CSV injection" list)."""


def neutralised(text: str) -> str:
    """``text`` made inert for a spreadsheet: a formula's first character gets a ``'`` before it.

    A reason, a display name or a request id is chosen by whoever made the request; opened in
    Excel or LibreOffice, ``=HYPERLINK(...)`` or ``@SUM(...)`` would run as a formula on the
    auditor's machine. The quote makes the cell text, as OWASP recommends (with every cell
    quoted, ``csv_lines``' writer does that part).
    """
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return neutralised(json.dumps(value, sort_keys=True, ensure_ascii=False))
    return neutralised(str(value))


def csv_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A header, then one CSV line per record (structured fields as JSON), streamed.

    Every cell is quoted and any cell a spreadsheet would read as a formula is neutralised
    (``neutralised``): an export is opened by people, often in a spreadsheet.
    """
    buffer = io.StringIO()
    csv.writer(buffer).writerow(CSV_COLUMNS)  # constant names: plain, as before
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    for record in records:
        writer.writerow([_cell(record.get(column)) for column in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def write_bundle(
    directory: Path,
    records: Iterable[dict[str, Any]],
    signed: list[SignedCheckpoint],
    public_key_pem: str,
) -> int:
    """Write the three files of a bundle; return how many records it holds."""
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    with (directory / "records.ndjson").open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
    (directory / "checkpoints.json").write_text(
        json.dumps([c.as_dict() for c in signed], indent=2), encoding="utf-8"
    )
    (directory / "public-key.pem").write_text(public_key_pem, encoding="utf-8")
    return count


def verify_bundle(directory: Path, public_key_pem: bytes) -> Verification:
    """Verify a bundle with nothing but its files and a trusted public key."""
    key = load_pem_public_key(public_key_pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    with (directory / "records.ndjson").open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    signed = [
        SignedCheckpoint.from_dict(c)
        for c in json.loads((directory / "checkpoints.json").read_text(encoding="utf-8"))
    ]
    return verify_chain(records, None, signed, key)
