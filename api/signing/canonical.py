"""The pieces every scheme shares: input shapes, percent-encodings, HMACs, times.

Inputs are plain values so no web framework leaks in: query and form parameters as a mapping
or (better, since names may repeat) an iterable of ``(name, value)`` pairs, already
percent-decoded (Starlette: ``request.query_params.multi_items()``, keeping blank values);
headers as a mapping or pairs whose names compare case-insensitively (Starlette's ``Headers``
``items()`` yields every pair, repeats included).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, NamedTuple, Protocol
from urllib.parse import quote, quote_plus

from mandate.api.signing.errors import IncompleteSignature, InvalidTimeStampFormat

Pairs = Mapping[str, str] | Iterable[tuple[str, str]]
"""Parameters: a mapping, or ``(name, value)`` pairs when a name may repeat."""


class HeaderLists(dict[str, list[str]]):
    """Headers already read by ``header_lists`` (lower-cased name -> every value): handed on
    as they are, so a caller that looked at them first does not make the parser read them
    again."""


HeaderPairs = Mapping[str, str] | Iterable[tuple[str, str]]
"""Headers: names compared case-insensitively; repeated names may come as several pairs."""

Headers = HeaderLists | HeaderPairs
"""Headers as sent, or as ``header_lists`` read them."""


class Received(NamedTuple):
    """An OSS request as an enforcement point received it, what both OSS schemes canonicalise:
    the method, bucket (None: the service itself) and decoded object key, the query's pairs
    and the headers by lower-cased name (``header_lists``)."""

    method: str
    bucket: str | None
    key: str
    params: list[tuple[str, str]]
    headers: dict[str, list[str]]


@dataclass(frozen=True, kw_only=True)
class Signature:
    """What a parsed RPC or ACS3 request carries beside what it signs: the signature, who
    signed it, with which token, when and with which nonce (``SignedRequest``'s fields)."""

    signature: str
    access_key_id: str
    security_token: str | None
    timestamp: datetime
    nonce: str
    expires: datetime | None = None


class SignedRequest(Protocol):
    """What every parsed scheme offers the caller and ``ReplayGuard``."""

    @property
    def access_key_id(self) -> str: ...

    @property
    def security_token(self) -> str | None: ...

    @property
    def timestamp(self) -> datetime | None:
        """When the client says it signed (None for an OSS V1 presigned URL)."""

    @property
    def expires(self) -> datetime | None:
        """A presigned URL's end of validity (None for a signed request)."""

    @property
    def nonce(self) -> str | None: ...

    def verify(self, secret: str) -> None:
        """Raise ``SignatureDoesNotMatch`` unless signed with ``secret``."""


def pairs(items: Pairs) -> list[tuple[str, str]]:
    """The parameters as a list of pairs, whatever shape they came in."""
    if isinstance(items, Mapping):
        return list(items.items())
    return list(items)


def header_lists(headers: Headers) -> HeaderLists:
    """Lower-cased name -> every value sent under it, in order."""
    if type(headers) is HeaderLists:
        return headers
    out = HeaderLists()
    add = out.setdefault
    source: Iterable[tuple[str, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in source:
        add(name.lower(), []).append(value)
    return out


def one_header(headers: dict[str, list[str]], name: str) -> str | None:
    """The value of a header that must not repeat (None when absent)."""
    values = headers.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise IncompleteSignature(f"The {name} header is given {len(values)} times.")
    return values[0].strip()


def joined_header(values: list[str]) -> str:
    """A repeated header's values as one (trimmed, joined with commas, as HTTP folds them)."""
    if len(values) == 1:
        return values[0].strip()
    return ",".join([v.strip() for v in values])


def one_param(params: list[tuple[str, str]], name: str) -> str | None:
    """The value of a parameter that must not repeat (None when absent)."""
    found = [value for key, value in params if key == name]
    if not found:
        return None
    if len(found) > 1:
        raise IncompleteSignature(f"The {name} parameter is given {len(found)} times.")
    return found[0]


_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
_ESCAPE = {c: (chr(c) if chr(c) in _UNRESERVED else f"%{c:02X}") for c in range(128)}
_ESCAPE_KEEP_SLASH = {**_ESCAPE, ord("/"): "/"}
_ESCAPE_PLUS = {**_ESCAPE, ord(" "): "+"}


def percent_encode(text: str, *, keep_slash: bool = False) -> str:
    """RFC 3986: UTF-8, everything but ``A-Za-z0-9-_.~`` (and ``/`` if kept) as ``%XX``.

    A space is ``%20``, ``*`` is ``%2A``; the same as ``urllib.parse.quote(text, safe="")``,
    with ASCII text (nearly all of it) translated in one C call rather than quote's loop.
    """
    if text.isascii():
        return text.translate(_ESCAPE_KEEP_SLASH if keep_slash else _ESCAPE)
    return quote(text, safe="/" if keep_slash else "")


def form_encode(text: str) -> str:
    """``quote_plus``: as ``percent_encode`` but a space becomes ``+`` (form encoding)."""
    if text.isascii():
        return text.translate(_ESCAPE_PLUS)
    return quote_plus(text, safe="")


_SHA256: Final = hashlib.sha256()
_SHA1: Final = hashlib.sha1()  # noqa: S324 (HMAC-SHA1: the V1 schemes, as the SDKs sign)
"""Empty hashes, never updated, only copied. With OpenSSL 3, CPython 3.11's
``hashlib.sha256(…)`` and ``hmac.digest(…)`` fetch the algorithm on every call: about 1 µs in a
tight loop, but 4 µs (a hash) and 13 µs (an HMAC) measured in the serving process, where that
was most of what verifying a signature cost; a copy fetches nothing."""
_BLOCK: Final = 64
"""The block size of SHA-1 and SHA-256, which RFC 2104 pads the key to."""
_INNER: Final = bytes(b ^ 0x36 for b in range(256))
_OUTER: Final = bytes(b ^ 0x5C for b in range(256))


def _hmac(empty: Any, key: bytes, message: bytes) -> bytes:
    """HMAC (RFC 2104) over copies of the empty hash ``empty``: ``hmac.digest``'s value (the
    tests compare them), as the standard library's own fallback computes it."""
    if len(key) > _BLOCK:
        long_key = empty.copy()
        long_key.update(key)
        key = long_key.digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = empty.copy()
    inner.update(key.translate(_INNER))
    inner.update(message)
    outer = empty.copy()
    outer.update(key.translate(_OUTER))
    outer.update(inner.digest())
    digest: bytes = outer.digest()
    return digest


def sha256_hex(data: bytes) -> str:
    digest = _SHA256.copy()
    digest.update(data)
    return digest.hexdigest()


def hmac_sha1_base64(key: str, message: str) -> str:
    digest = _hmac(_SHA1, key.encode(), message.encode())
    return base64.b64encode(digest).decode("ascii")


def hmac_sha256(key: bytes, message: str) -> bytes:
    return _hmac(_SHA256, key, message.encode())


def same(given: str, computed: str) -> bool:
    """Constant-time equality, so timing tells nothing about how much of a signature held.
    ASCII text (every signature and digest a parser lets through) is compared as it is."""
    try:
        return hmac.compare_digest(given, computed)
    except TypeError:  # not ASCII
        return hmac.compare_digest(given.encode(), computed.encode())


_ISO8601 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
_COMPACT = re.compile(r"\d{8}T\d{6}Z")


def iso8601(value: str, what: str) -> datetime:
    """``2026-12-07T09:25:16Z`` (the RPC ``Timestamp``, ``x-acs-date``); fractions allowed."""
    parsed = _iso8601_utc(value)
    if parsed is None:
        raise InvalidTimeStampFormat(
            f"The {what} {value!r} is not a UTC time of the form yyyy-MM-ddTHH:mm:ssZ."
        )
    if parsed is _NOT_A_TIME:
        raise InvalidTimeStampFormat(f"The {what} {value!r} is not a valid time.")
    return parsed


_NOT_A_TIME = datetime.min.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=256)
def _iso8601_utc(value: str) -> datetime | None:
    """``iso8601``'s reading, remembered: requests signed within the same second share their
    time, so most are a dictionary hit (bounded; a time is no secret). None: not the form;
    ``_NOT_A_TIME``: the form, but no such time (a 13th month)."""
    if not _ISO8601.fullmatch(value):
        return None
    try:  # the pattern holds, so the fields are digits where expected (faster than strptime)
        return datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            tzinfo=UTC,
        )
    except ValueError:
        return _NOT_A_TIME


def compact_iso8601(value: str, what: str) -> datetime:
    """``20261207T092516Z`` (OSS V4's ``x-oss-date``)."""
    parsed = _compact_utc(value)
    if parsed is None:
        raise InvalidTimeStampFormat(
            f"The {what} {value!r} is not a UTC time of the form yyyyMMddTHHmmssZ."
        )
    if parsed is _NOT_A_TIME:
        raise InvalidTimeStampFormat(f"The {what} {value!r} is not a valid time.")
    return parsed


@functools.lru_cache(maxsize=256)
def _compact_utc(value: str) -> datetime | None:
    """``compact_iso8601``'s reading, remembered as ``_iso8601_utc``'s is. None: not the
    form; ``_NOT_A_TIME``: the form, but no such time."""
    if not _COMPACT.fullmatch(value):
        return None
    try:
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return _NOT_A_TIME


def hex64(text: str) -> bool:
    """64 lower-case hex digits (``str.strip`` in C: this runs on every request, where a
    regular expression's engine, otherwise cold, cost more than the check)."""
    return len(text) == 64 and not text.strip("0123456789abcdef")


def http_date(value: str, what: str) -> datetime:
    """An RFC 1123 date (``Mon, 07 Dec 2026 09:25:16 GMT``: OSS V1's ``Date``)."""
    parsed = _http_date_utc(value)
    if parsed is None:
        raise InvalidTimeStampFormat(f"The {what} {value!r} is not an HTTP date in GMT.")
    return parsed


@functools.lru_cache(maxsize=256)
def _http_date_utc(value: str) -> datetime | None:
    """``http_date``'s reading, remembered as ``_iso8601_utc``'s is (the standard library's
    parser is pure Python, some 10 µs a call); None: not an HTTP date with a zone."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)
