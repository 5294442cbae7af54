"""ACS3-HMAC-SHA256 (signature V3, alibabacloud-tea-openapi's default): a signed header set.

As alibabacloud-tea-openapi 0.4 signs (``utils.py``: ``Utils.get_authorization``,
``get_canonical_query_string``, ``get_canonicalized_headers``)::

    Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<h1;h2>,Signature=<hex>
    canonical request = METHOD \\n URI \\n query \\n headers \\n signed-headers \\n payload-hash
    string to sign    = "ACS3-HMAC-SHA256\\n" + hex(sha256(canonical request))
    signature         = hex(hmac-sha256(secret, string to sign))

The query is sorted by name, values percent-encoded (RFC 3986). Alibaba's documentation
encodes the names as well; tea-openapi's Python code does not, so when a name changes under
encoding that second form is tried too. Headers are ``name:value`` lower-cased names, trimmed
values (a repeated header's values sorted and joined with commas), sorted. The SDK signs every
header it sends; Alibaba requires at least ``host``, every ``x-acs-*`` header present and
``content-type`` when present to be signed, and so does this module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple

from mandate.api.signing.canonical import (
    HeaderPairs,
    Pairs,
    header_lists,
    hex64,
    hmac_sha256,
    iso8601,
    one_header,
    one_param,
    pairs,
    percent_encode,
    same,
    sha256_hex,
)
from mandate.api.signing.errors import IncompleteSignature, SignatureDoesNotMatch

ALGORITHM = "ACS3-HMAC-SHA256"
_NAMES = r"[a-z0-9!#$%&'*+.^_`|~-]+(?:;[a-z0-9!#$%&'*+.^_`|~-]+)*"
_HEADER_NAMES = re.compile(_NAMES)
_ALWAYS_SIGNED = ("host", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce")
_ALWAYS_SIGNED_SET = frozenset(_ALWAYS_SIGNED)


class Acs3Request(NamedTuple):
    """A request signed with ACS3-HMAC-SHA256, parsed; ``verify`` checks it with the secret.

    ``Signature``'s fields with the canonical request's parts, as a NamedTuple rather than a
    frozen dataclass: one is built per signed request, and the dataclass's field-by-field
    ``object.__setattr__`` was a sixth of the parse (``python -m tests.bench.signing``)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    signed_headers: tuple[str, ...]
    header_values: tuple[str, ...]
    """The canonical value of each signed header, in ``signed_headers``' order."""
    content_sha256: str
    """What ``x-acs-content-sha256`` declares."""
    body_sha256: str
    """What the body hashes to (the canonical request uses this one)."""
    signature: str
    access_key_id: str
    security_token: str | None
    timestamp: datetime
    nonce: str
    expires: datetime | None = None
    """Always None: a V3 signature is good for the clock window, not until a given time."""

    def canonical_request(self, *, raw_query_names: bool = False) -> str:
        """The canonical request (``raw_query_names``: tea-openapi's unencoded names)."""
        query = ""
        if self.query:  # most calls have none
            if raw_query_names:
                pairs = sorted((k, percent_encode(v)) for k, v in self.query)
            else:
                pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in self.query)
            query = "&".join([f"{k}={v}" for k, v in pairs])
        names = self.signed_headers
        headers = "".join([f"{n}:{v}\n" for n, v in zip(names, self.header_values, strict=True)])
        return (
            f"{self.method}\n{self.path or '/'}\n{query}\n{headers}\n"
            f"{';'.join(names)}\n{self.body_sha256}"
        )

    def string_to_sign(self, *, raw_query_names: bool = False) -> str:
        canonical = self.canonical_request(raw_query_names=raw_query_names)
        return f"{ALGORITHM}\n{sha256_hex(canonical.encode())}"

    def verify(self, secret: str) -> None:
        """Raise ``SignatureDoesNotMatch`` unless signed with ``secret`` over this very body."""
        expected = self.string_to_sign()
        if not same(self.content_sha256, self.body_sha256):
            raise SignatureDoesNotMatch(
                expected,
                reason="The x-acs-content-sha256 header is not the SHA-256 of the body.",
                canonical_request=self.canonical_request(),
            )
        key = secret.encode()
        if same(self.signature, hmac_sha256(key, expected).hex()):
            return
        if any(percent_encode(k) != k for k, _ in self.query):
            variant = self.string_to_sign(raw_query_names=True)
            if same(self.signature, hmac_sha256(key, variant).hex()):
                return
        raise SignatureDoesNotMatch(expected, canonical_request=self.canonical_request())


def parse_acs3(
    method: str,
    path: str,
    query: Pairs,
    headers: HeaderPairs,
    *,
    body: bytes | None,
    body_sha256: str | None = None,
) -> Acs3Request:
    """Read a request signed with ACS3-HMAC-SHA256.

    ``path`` is the path as sent (still percent-encoded, without the query); ``query`` the
    decoded parameters; ``body`` the body's bytes, or None with ``body_sha256`` (hex) when the
    caller hashed it while reading. Raises ``IncompleteSignature`` for a missing or malformed
    Authorization or signing header, ``InvalidTimeStampFormat`` for an unreadable
    ``x-acs-date``.
    """
    if body is not None:
        actual = sha256_hex(body)
    elif body_sha256 is not None:
        actual = body_sha256.lower()
    else:
        raise ValueError("parse_acs3 needs the body or its SHA-256")
    source: list[tuple[str, str]]
    if type(headers) is list:  # Starlette's ``Headers.items()``: no copy needed
        source = headers
    else:
        source = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    single = dict(source)
    if not "".join(single).islower():  # ASGI servers lower-case names; anyone else, here
        single = {name.lower(): value for name, value in source}
    repeats = len(single) != len(source)
    every = header_lists(source) if repeats else {}
    # no header repeats (as the SDKs send them): read each from ``single``, no lists built
    if repeats:
        authorization = one_header(every, "authorization")
    else:
        authorization = single.get("authorization", "").strip()
    items = pairs(query) if query else []  # most calls have none: no type checks
    if not authorization:
        raise IncompleteSignature("The request is not signed: the Authorization header is missing.")
    access_key_id, signed, signature = _parse_authorization(authorization)
    fault = _layout_fault(tuple(single), signed)
    if fault is not None:
        raise IncompleteSignature(fault)
    one: Callable[[str], str | None]
    if repeats:
        values = tuple([_canonical_value(every[name]) for name in signed])
        one = functools.partial(one_header, every)
    else:
        values = tuple(map(str.strip, map(single.__getitem__, signed)))
        one = dict(zip(signed, values, strict=True)).get  # present x-acs-* are signed
    content_sha256 = one("x-acs-content-sha256") or ""
    if not hex64(content_sha256):
        raise IncompleteSignature(
            "x-acs-content-sha256 must be the body's SHA-256 in lower-case hex."
        )
    timestamp = iso8601(one("x-acs-date") or "", "x-acs-date")
    nonce = one("x-acs-signature-nonce")
    if not nonce:
        raise IncompleteSignature("The x-acs-signature-nonce header is empty.")
    key_header = one("x-acs-accesskey-id")
    if key_header is not None and key_header != access_key_id:
        raise IncompleteSignature("x-acs-accesskey-id is not the Credential's AccessKeyId.")
    return Acs3Request(
        method=method.upper(),
        path=path,
        query=tuple(items),
        signed_headers=signed,
        header_values=values,
        content_sha256=content_sha256,
        body_sha256=actual,
        signature=signature,
        access_key_id=access_key_id,
        # tea-openapi sends the header; a SecurityToken parameter is signed as well
        security_token=(one("x-acs-security-token") or one_param(items, "SecurityToken") or None),
        timestamp=timestamp,
        nonce=nonce,
    )


@functools.lru_cache(maxsize=256)
def _layout_fault(present: tuple[str, ...], signed: tuple[str, ...]) -> str | None:
    """Why a request sending the headers ``present`` and signing ``signed`` is refused, or
    None: ``host`` and the ``x-acs-*`` headers the scheme needs are sent and signed, every
    signed header is sent, and no ``x-acs-*`` header nor ``content-type`` is sent unsigned.
    Remembered by layout (a client sends and signs the same header names request after
    request, and names are no secret), so these set checks run once per client, not per
    request."""
    names, signed_set = frozenset(present), frozenset(signed)
    for name in _ALWAYS_SIGNED:
        if name not in names:
            return f"The {name} header is missing."
    missing = [name for name in signed if name not in names]
    if missing:
        return f"The signed header {missing[0]} is not in the request."
    unsigned = [name for name in _ALWAYS_SIGNED if name not in signed_set] + sorted(
        name for name in names - signed_set if name.startswith("x-acs-") or name == "content-type"
    )
    if unsigned:
        return f"These headers must be signed: {';'.join(dict.fromkeys(unsigned))}."
    return None


def _canonical_value(values: list[str]) -> str:
    """A signed header's value: trimmed; a repeated header's values sorted, comma-joined."""
    if len(values) == 1:
        return values[0].strip()
    return ",".join(sorted(v.strip() for v in values))


@functools.lru_cache(maxsize=256)
def _sorted_names(names: str) -> tuple[str, ...] | None:
    """``SignedHeaders``' names when well-formed and each comes once, sorted; else None.
    Remembered (a client signs the same header set request after request; names are no
    secret), so the names are checked, split and sorted once, and later requests share the
    same strings."""
    signed = tuple(names.split(";"))
    if not _HEADER_NAMES.fullmatch(names) or list(signed) != sorted(set(signed)):
        return None
    return signed


_PREFIX = ALGORITHM + " Credential="


def _parse_authorization(value: str) -> tuple[str, tuple[str, ...], str]:
    """``(AccessKeyId, signed header names, signature)`` from the Authorization header."""
    if value.startswith(_PREFIX):  # as tea-openapi writes it, read with three partitions
        credential, comma, rest = value[len(_PREFIX) :].partition(",SignedHeaders=")
        names, signature_at, signature = rest.partition(",Signature=")
        if (
            comma
            and signature_at
            and credential
            and credential.isprintable()
            and "," not in credential
            and " " not in credential
            and hex64(signature)
        ):
            signed = _sorted_names(names)
            if signed is not None:
                return credential, signed, signature
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(
            f"Authorization algorithm {algorithm!r} is not supported: use {ALGORITHM}."
        )
    fields: dict[str, str] = {}
    for part in rest.strip().split(","):
        name, equals, field = part.strip().partition("=")
        if not equals or name not in ("Credential", "SignedHeaders", "Signature"):
            raise IncompleteSignature(
                f"Authorization part {part.strip()!r} is not Credential=, SignedHeaders= "
                "or Signature=."
            )
        if name in fields:
            raise IncompleteSignature(f"Authorization gives {name} twice.")
        fields[name] = field
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not fields.get(n)]
    if missing:
        raise IncompleteSignature(f"Authorization lacks {', '.join(missing)}.")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not _HEADER_NAMES.fullmatch(fields["SignedHeaders"]) or list(signed) != sorted(set(signed)):
        raise IncompleteSignature(
            "SignedHeaders must list lower-case header names, sorted, each once, joined by ';'."
        )
    if not hex64(fields["Signature"]):
        raise IncompleteSignature("Signature must be 64 lower-case hex digits.")
    return fields["Credential"], signed, fields["Signature"]
