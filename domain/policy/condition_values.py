"""Reading one condition value: from a policy document (strictly) or a request context (leniently).

A private helper of ``domain.policy.conditions``, kept apart so that the operators, clauses and
``ConditionSet`` read on their own (STYLE: small modules). Nothing outside ``domain`` imports
it; ``parse_rfc3339`` is public through ``domain.policy.conditions``.

The ``policy_*`` readers parse a value written in a document, once, when it is accepted, and
raise ``Unreadable`` with the reason given to the client. The ``as_*`` readers take a value
from a request's context and return ``None`` when it cannot be read for the operator, so that
it simply matches no policy value.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

__all__ = [
    "IpAddress",
    "IpNetwork",
    "Unreadable",
    "as_bool",
    "as_date",
    "as_ip",
    "as_number",
    "as_text",
    "parse_rfc3339",
    "policy_bool",
    "policy_date",
    "policy_network",
    "policy_number",
    "policy_text",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Unreadable(ValueError):
    """A policy value that the operator cannot read; the message is the reason given."""


# --- reading one value, from a document (strict: refuses) or a context (lenient: None) -------

_NUMBER_RE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER_RE: Final = re.compile(r"[+-]?[0-9]+")
_RFC3339_RE: Final = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def as_text(value: object) -> str | None:
    """A scalar as the string comparisons see it (booleans and numbers in their JSON form)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return None


def as_number(value: object) -> int | float | None:
    """A finite number from a number or its decimal text (no ``_`` digit separators, no NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value):
        if _INTEGER_RE.fullmatch(value):
            return int(value)
        number = float(value)
        return number if math.isfinite(number) else None
    return None


@lru_cache(maxsize=4096)  # context times repeat (an as-of instant, a client's clock)
def parse_rfc3339(text: str) -> datetime | None:
    """An aware ``datetime`` from RFC 3339 text that names its zone, else ``None``."""
    found = _RFC3339_RE.fullmatch(text)
    if found is None:
        return None
    fraction = (found["fraction"] or "")[:6].ljust(6, "0")
    zone = found["zone"].upper()
    iso = f"{found['date']}T{found['time']}.{fraction}{'+00:00' if zone == 'Z' else zone}"
    try:
        return datetime.fromisoformat(iso)
    except ValueError:  # 2026-02-30, 25:00:00, an offset beyond a day
        return None


def as_date(value: object) -> datetime | None:
    """An aware instant from a ``datetime``, RFC 3339 text, or seconds since the epoch."""
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else None
    if isinstance(value, str):
        return parse_rfc3339(value)
    number = as_number(value)
    if number is None:
        return None
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        folded = value.lower()
        if folded in ("true", "false"):
            return folded == "true"
    return None


@lru_cache(maxsize=4096)  # a client's address repeats across its requests
def _parse_ip(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; policies name them as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def as_ip(value: object) -> IpAddress | None:
    return _parse_ip(value) if isinstance(value, str) else None


def policy_text(value: object) -> str:
    text = as_text(value)
    if text is None or isinstance(value, datetime):
        raise Unreadable("must be a string, a number or a boolean")
    return text


def policy_number(value: object) -> int | float:
    number = as_number(value)
    if number is None:
        raise Unreadable(f"{json.dumps(value)} is not a finite number")
    return number


_DATE_ONLY_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date_only(text: str) -> datetime | None:
    """``YYYY-MM-DD`` as the start of that day in UTC, else None.

    A date alone names a day, not a local wall-clock time, so it is not ambiguous the way a
    date-time without a zone is (which stays refused): ISO 8601's calendar date, read as
    ``T00:00:00Z`` as AWS IAM reads it in ``Date…`` conditions."""
    if not _DATE_ONLY_RE.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(f"{text}T00:00:00+00:00")
    except ValueError:  # 2026-02-30
        return None


def policy_date(value: object) -> datetime:
    if isinstance(value, str):
        date = parse_rfc3339(value) or _date_only(value)
        if date is None:
            raise Unreadable(
                f"{json.dumps(value)} is neither an RFC 3339 date-time with a zone "
                '(for example "2026-01-31T12:00:00Z") nor a date (YYYY-MM-DD, read as its '
                "start in UTC)"
            )
        return date
    date = as_date(value) if not isinstance(value, bool) else None
    if date is None:
        raise Unreadable(
            f"{json.dumps(value)} is neither an RFC 3339 date-time nor seconds since the epoch"
        )
    return date


def policy_bool(value: object) -> bool:
    flag = as_bool(value)
    if flag is None:
        raise Unreadable(f"{json.dumps(value)} is not a boolean (true or false)")
    return flag


def policy_network(value: object) -> IpNetwork:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Unreadable("must be an IP address or a CIDR block, as a string")
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise Unreadable(f"{json.dumps(value)} is not an IP address or a CIDR block") from None
    return network
