"""The audit records' small conventions: their errors, event types and instants.

Shared by the naming state (``projections.audit.naming``), the per-event rules
(``projections.audit.rules_*``) and the record itself (``projections.audit.records``, whose
doc says what each field means), so each of them writes an instant or an event type the one
way a hash-chained record may show it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from mandate.projections.dispatch import UnknownEvent

__all__ = [
    "AuditRecordError",
    "UnknownAuditEvent",
    "UnnamedEntity",
    "event_type_of",
    "format_ledger_time",
    "key_arn",
    "optional_rfc3339",
    "parse_rfc3339",
    "rfc3339",
]


class AuditRecordError(ValueError):
    """An event cannot be turned into a faithful audit record."""


class UnknownAuditEvent(AuditRecordError, UnknownEvent):
    """No rule says how to record events of this class (register one on ``RULES``).

    An ``UnknownEvent`` of the dispatch registry and an ``AuditRecordError``, so the audit
    projection stalls at it, naming its position, as at any event it cannot record.
    """

    def __init__(self, message: str, topic: str | None = None) -> None:
        ValueError.__init__(self, message)
        self.read_model = "audit trail"
        self.topic = topic


class UnnamedEntity(AuditRecordError):
    """The event's aggregate is not known to the naming state (it missed an earlier event)."""


_TOPIC_RE: Final = re.compile(
    r"\Amandate:(?P<type>[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)*?)"
    r"(?:\.v[0-9]+)?\Z"
)


def event_type_of(topic: str) -> str:
    """``mandate:User.PolicyAttached.v1`` → ``User.PolicyAttached`` (see the records' doc)."""
    known = _EVENT_TYPES.get(topic)
    if known is not None:
        return known
    found = _TOPIC_RE.match(topic)
    if found is None:
        raise UnknownAuditEvent(f"{topic!r} is not a Mandate event topic", topic)
    if len(_EVENT_TYPES) < 1024:  # topics are the log's event classes: a few dozen
        _EVENT_TYPES[topic] = found["type"]
    return str(found["type"])


_EVENT_TYPES: dict[str, str] = {}  # event_type_of's answers, once per topic


def format_ledger_time(ledger_time: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``; a naive datetime is refused.

    The events of one save share their ledger time, so the last answer is kept: an equal
    aware datetime is the same instant, whose text is the same (a naive one never equals it).
    """
    global _last_ledger_time
    last, text = _last_ledger_time
    if ledger_time == last:
        return text
    text = rfc3339(ledger_time, "the ledger time")
    _last_ledger_time = (ledger_time, text)
    return text


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_last_ledger_time: tuple[datetime, str] = (_EPOCH, "1970-01-01T00:00:00.000000Z")


def rfc3339(instant: datetime, what: str) -> str:
    """``instant`` as a record shows it; ``what`` names it when it is naive."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise AuditRecordError(f"{what} must be timezone-aware")
    d = instant if instant.tzinfo is UTC else instant.astimezone(UTC)
    if d.year < 1000:  # strftime's %Y does not pad these: keep its very text
        return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # What strftime writes, a few times faster (once per record of a rebuild).
    return (
        f"{d.year}-{d.month:02d}-{d.day:02d}T"
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}.{d.microsecond:06d}Z"
    )


def optional_rfc3339(instant: datetime | None, what: str) -> str | None:
    return None if instant is None else rfc3339(instant, what)


def parse_rfc3339(text: str) -> datetime:
    """The inverse of ``rfc3339`` (for instants kept in the naming state)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def key_arn(principal_arn: str, access_key_id: str) -> str:
    """The ARN of a principal's AccessKey: ``<principal ARN>/accesskey/<id>``."""
    return f"{principal_arn}/accesskey/{access_key_id}"
