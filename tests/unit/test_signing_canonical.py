"""The shared encodings equal the SDKs' own (quote, quote_plus, oss2's V4 encoder) on any text,
the time readers take exactly the forms the SDKs write, and the hashes and HMACs (computed over
copies of an empty hash, for speed) are the standard library's."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

import oss2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mandate.api.signing import InvalidTimeStampFormat
from mandate.api.signing.canonical import (
    compact_iso8601,
    form_encode,
    hmac_sha1_base64,
    hmac_sha256,
    http_date,
    iso8601,
    percent_encode,
    sha256_hex,
)
from mandate.api.signing.oss4 import v4_encode

text = st.text(st.characters(blacklist_categories=("Cs",)))
ascii_text = st.text(st.characters(max_codepoint=127))


@given(text | ascii_text)
def test_percent_encoding_is_quote(value: str) -> None:
    assert percent_encode(value) == quote(value, safe="")
    assert percent_encode(value, keep_slash=True) == quote(value, safe="/")
    assert form_encode(value) == quote_plus(value, safe="")


@given(text | ascii_text, st.booleans())
def test_v4_encoding_is_oss2s(value: str, keep_slash: bool) -> None:
    theirs = oss2.AuthV4("a", "b")._ProviderAuthV4__v4_uri_encode(value, keep_slash)
    assert v4_encode(value, keep_slash=keep_slash) == theirs


def test_times_are_read_in_the_sdks_forms() -> None:
    moment = datetime(2026, 12, 7, 9, 25, 16, tzinfo=UTC)
    assert iso8601("2026-12-07T09:25:16Z", "t") == moment
    assert compact_iso8601("20261207T092516Z", "t") == moment
    assert http_date("Mon, 07 Dec 2026 09:25:16 GMT", "t") == moment
    for bad in ("2026-12-07T09:25:16", "2026-12-07T24:00:00Z", "2026-12-07T09:25:16+08:00"):
        with pytest.raises(InvalidTimeStampFormat):
            iso8601(bad, "t")
    for bad in ("20261207T092516", "20261307T092516Z"):
        with pytest.raises(InvalidTimeStampFormat):
            compact_iso8601(bad, "t")
    with pytest.raises(InvalidTimeStampFormat):
        http_date("Mon, 07 Dec 2026 09:25:16", "t")  # no zone


@given(st.binary(max_size=200), text)
def test_hmacs_and_hash_are_the_standard_librarys(key: bytes, message: str) -> None:
    """Keys shorter, equal to and longer than the 64-byte block (hashed first), any message."""
    data = message.encode()
    assert hmac_sha256(key, message) == hmac.digest(key, data, "sha256")
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    secret = key.hex()  # a str key, as the V1 schemes take it
    sha1 = hmac.digest(secret.encode(), data, "sha1")
    assert hmac_sha1_base64(secret, message) == base64.b64encode(sha1).decode()


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 128, 200])
def test_hmac_at_the_block_size_edges(length: int) -> None:
    key = bytes(range(256))[:length]
    assert hmac_sha256(key, "m") == hmac.digest(key, b"m", "sha256")
    assert (
        hmac_sha1_base64("k" * length, "m")
        == base64.b64encode(hmac.digest(b"k" * length, b"m", "sha1")).decode()
    )
