"""The one rule for every instant a command or a query accepts.

An instant must name its zone, be representable in UTC, and lie in [1970-01-01, 9999-01-01)
UTC. ``0001-01-01T00:00:00+14:00`` is a valid Python ``datetime`` but not a UTC one: stored
in an event it would break every reader that converts it (the audit trail, the temporal
index, ledger arithmetic) for ever. So the API's schemas (the ``Instant`` type) and the
domain's commands (``check_instant``) share this check, and no path writes such an event.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from mandate.domain.common.errors import FieldError, InvalidInput

__all__ = [
    "EARLIEST",
    "EPOCH_REFUSED",
    "LATEST",
    "Instant",
    "check_instant",
    "instant_fault",
    "refuse_epoch_seconds",
]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_RANGE = "must lie between 1970-01-01T00:00:00Z and 9999-01-01T00:00:00Z"
_NUMBER = re.compile(r"\s*[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*")


def instant_fault(value: datetime) -> str | None:
    """Why ``value`` is not an acceptable instant, or ``None`` when it is."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "must carry a time zone (RFC 3339)"
    try:
        moment = value.astimezone(UTC)
    except (OverflowError, ValueError):
        return f"is not representable in UTC: it {_RANGE}"
    if not EARLIEST <= moment < LATEST:
        return _RANGE
    return None


def check_instant(field: str, value: datetime) -> datetime:
    """``value`` in UTC, or ``InvalidInput`` naming ``field`` (commands call this)."""
    if not isinstance(value, datetime):
        raise InvalidInput(FieldError(field, "must be an RFC 3339 instant with a zone"))
    fault = instant_fault(value)
    if fault is not None:
        raise InvalidInput(FieldError(field, fault))
    return value.astimezone(UTC)


def refuse_epoch_seconds(value: object) -> object:
    """pydantic reads a number, or text that is one (``to=0.5``), as Unix seconds: an instant
    that names no zone, which the rule refuses (a ``BeforeValidator``)."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise PydanticCustomError("instant", "must be an RFC 3339 instant with a zone")
    return value


def _validated(value: datetime) -> datetime:
    fault = instant_fault(value)
    if fault is not None:
        raise PydanticCustomError("instant", fault)
    return value.astimezone(UTC)


EPOCH_REFUSED = BeforeValidator(refuse_epoch_seconds)
"""For a query parameter typed ``datetime``: its text must not be a number."""

Instant = Annotated[datetime, EPOCH_REFUSED, AfterValidator(_validated)]
"""A pydantic field type: an aware, UTC-representable instant in range, given back in UTC."""
