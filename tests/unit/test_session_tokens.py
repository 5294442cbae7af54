"""Signed security tokens of STS sessions (docs/design.md §3.3): they verify, and nothing else does.

A token binds a session's key id to its expiry under an HMAC; whatever else a client sends
as a token — altered, re-signed with another key, or arbitrary text — is refused with
``InvalidSessionToken`` and never with another exception (a client's JSON can carry any text).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mandate.domain.sts.session_tokens import InvalidSessionToken, SessionToken, SessionTokenSigner

KEY_1 = b"k" * 32
KEY_2 = bytes(range(32, 96))
KEY_ID = "STS.Nq4xT0aWb9Lr2Zc7Vh1K"
EXPIRATION = datetime(2026, 11, 28, 3, 41, 7, tzinfo=UTC)
SIGNER = SessionTokenSigner("t1", {"t1": KEY_1})
TOKEN = SIGNER.issue(KEY_ID, EXPIRATION)


def refused(token: str, signer: SessionTokenSigner = SIGNER) -> str:
    """Verify ``token``, expect ``InvalidSessionToken``, and return its reason."""
    with pytest.raises(InvalidSessionToken) as raised:
        signer.verify(token)
    return str(raised.value)


def with_part(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


# --- issue and verify ------------------------------------------------------------------------


def test_an_issued_token_verifies_to_its_key_id_and_expiry() -> None:
    """verify(issue(k, e)) names k and e."""
    assert SIGNER.verify(TOKEN) == SessionToken(KEY_ID, EXPIRATION)


def test_a_token_has_the_documented_shape_and_no_secret() -> None:
    """``v1.<key id>.<access key id>.<epoch seconds>.<base64url MAC>``."""
    version, key_id, prefix, random_part, expiry, signature = TOKEN.split(".")
    assert (version, key_id, f"{prefix}.{random_part}") == ("v1", "t1", KEY_ID)
    assert int(expiry) == int(EXPIRATION.timestamp())
    assert len(signature) == 43  # 32 bytes of HMAC-SHA256, unpadded base64url
    assert TOKEN.isascii()
    assert KEY_1.decode() not in TOKEN


def test_an_expiry_with_microseconds_verifies_to_the_whole_second() -> None:
    """The token carries epoch seconds: a fraction is dropped, never rounded up."""
    token = SIGNER.issue(KEY_ID, EXPIRATION + timedelta(microseconds=999_999))
    assert SIGNER.verify(token).expiration == EXPIRATION


@given(
    st.from_regex(r"STS\.[A-Za-z0-9]{1,24}", fullmatch=True),
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
)
@example("STS.0", datetime(4148, 1, 1, 0, 0, 0, 999_993, tzinfo=UTC))
@example("STS.0", datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC))
def test_any_session_key_id_and_expiry_round_trip(access_key_id: str, expiry: datetime) -> None:
    """Every ``STS.<random>`` key id and any expiry come back, truncated (never rounded up)
    to the second: a token never claims a later expiry than its session's."""
    verified = SIGNER.verify(SIGNER.issue(access_key_id, expiry))
    assert verified == SessionToken(access_key_id, expiry.replace(microsecond=0))


# --- what does not verify --------------------------------------------------------------------


@pytest.mark.parametrize(
    "altered",
    [
        with_part(TOKEN, 3, "Nq4xT0aWb9Lr2Zc7Vh1L"),
        with_part(TOKEN, 2, "LTAI"),
        with_part(TOKEN, 4, str(int(EXPIRATION.timestamp()) + 1)),
        with_part(TOKEN, 4, str(int(EXPIRATION.timestamp()) + 86_400 * 365)),
        with_part(TOKEN, 4, "0" + str(int(EXPIRATION.timestamp()))),
        TOKEN[:-1] + ("A" if TOKEN[-1] != "A" else "B"),
        TOKEN[:-1],
        TOKEN + "A",
        with_part(TOKEN, 5, ""),
    ],
    ids=[
        "key-id",
        "key-id-prefix",
        "expiry+1s",
        "expiry+1y",
        "expiry-zero-padded",
        "signature-char",
        "signature-short",
        "signature-long",
        "signature-empty",
    ],
)
def test_an_altered_token_does_not_verify(altered: str) -> None:
    """Changing any signed part or the signature breaks the signature."""
    assert refused(altered) == "the security token's signature does not match"


def test_a_token_signed_with_another_key_under_the_same_id_does_not_verify() -> None:
    """A forger who knows the key id but not the key cannot sign."""
    forger = SessionTokenSigner("t1", {"t1": KEY_2})
    forged = forger.issue(KEY_ID, EXPIRATION + timedelta(days=365))
    assert refused(forged) == "the security token's signature does not match"
    assert refused(TOKEN, forger) == "the security token's signature does not match"


def test_a_token_naming_an_unknown_key_id_does_not_verify() -> None:
    """A key id the verifier does not hold is refused as such."""
    other = SessionTokenSigner("t9", {"t9": KEY_2})
    assert refused(other.issue(KEY_ID, EXPIRATION)) == (
        "the security token was signed with an unknown key"
    )
    assert refused(with_part(TOKEN, 1, "t2")) == "the security token was signed with an unknown key"


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "v1",
        "garbage",
        TOKEN.replace("v1.", "v2.", 1),
        TOKEN.replace("v1.", "", 1),
        TOKEN.replace(f".{KEY_ID}.", ".STSNq4x.", 1),  # a key id without its dot
        TOKEN.replace(f".{KEY_ID}.", f".{KEY_ID}.x.", 1),  # one part too many
        "v1.t1.STS.a.1",
    ],
)
def test_a_malformed_token_is_refused_as_malformed(token: str) -> None:
    """The wrong version or number of parts is malformed before any key is consulted."""
    assert refused(token) == "the security token is malformed"


@pytest.mark.parametrize(
    "token",
    [
        TOKEN[:-1] + "\u00e9",
        TOKEN[:-1] + "\u00ff",
        TOKEN + "\u2603",
        with_part(TOKEN, 3, "Nq4xT0aWb9Lr2Zc7Vh1\u00e9"),
        with_part(TOKEN, 4, "\u0661\u0662\u0663"),  # digits int() would read
        TOKEN[:-1] + "\ud800",  # a lone surrogate, as a JSON "\ud800" escape decodes
        with_part(TOKEN, 3, "\udcff"),
    ],
    ids=["latin1", "latin1-ff", "snowman", "key-id", "arabic-digits", "surrogate", "surrogate2"],
)
def test_non_ascii_text_is_refused_as_an_invalid_token_not_a_crash(token: str) -> None:
    """Text no signer issues is InvalidSessionToken (it used to raise TypeError/UnicodeError)."""
    refused(token)


def _mutations() -> st.SearchStrategy[str]:
    """The issued token with one character replaced, inserted or deleted, or a piece spliced."""
    position = st.integers(0, len(TOKEN))
    char = st.characters(codec=None)
    return st.one_of(
        st.builds(lambda i, c: TOKEN[:i] + c + TOKEN[i + 1 :], position, char),
        st.builds(lambda i, c: TOKEN[:i] + c + TOKEN[i:], position, char),
        st.builds(lambda i: TOKEN[:i] + TOKEN[i + 1 :], position),
        st.builds(lambda i, t: TOKEN[:i] + t, position, st.text(max_size=60)),
    )


texts = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None, categories=None)),
    st.builds(lambda tail: "v1.t1." + tail, st.text()),
    st.from_regex(
        r"v1\.t[0-9]\.STS\.[A-Za-z0-9]{1,22}\.-?[0-9]{1,20}\.[A-Za-z0-9_-]{0,44}", fullmatch=True
    ),
    _mutations(),
)


@settings(max_examples=600)
@given(texts)
@example(TOKEN)
@example("v1.t1.STS.x.99999999999999999999999999.AAAA")
def test_no_text_verifies_unless_it_is_exactly_an_issued_token(text: str) -> None:
    """Arbitrary text raises only InvalidSessionToken; only the issued token itself verifies."""
    if text == TOKEN:
        assert SIGNER.verify(text) == SessionToken(KEY_ID, EXPIRATION)
        return
    with pytest.raises(InvalidSessionToken):
        SIGNER.verify(text)


# --- rotation and configuration --------------------------------------------------------------


def test_a_rotated_signer_signs_with_the_new_key_and_still_verifies_the_old_tokens() -> None:
    """With keys {t1, t2} and t2 current, t1's tokens verify and new ones name t2."""
    rotated = SessionTokenSigner("t2", {"t1": KEY_1, "t2": KEY_2})
    assert rotated.verify(TOKEN) == SessionToken(KEY_ID, EXPIRATION)
    new = rotated.issue(KEY_ID, EXPIRATION)
    assert new.split(".")[1] == "t2"
    assert rotated.verify(new) == SessionToken(KEY_ID, EXPIRATION)
    assert refused(new) == "the security token was signed with an unknown key"


def test_a_retired_key_no_longer_verifies_its_tokens() -> None:
    """Once t1 is removed from the settings, its tokens are refused."""
    retired = SessionTokenSigner("t2", {"t2": KEY_2})
    assert refused(TOKEN, retired) == "the security token was signed with an unknown key"


@pytest.mark.parametrize(
    ("current", "keys", "message"),
    [
        ("t1", {"t1": b"k" * 31}, "at least 32 bytes"),
        ("t2", {"t1": KEY_1, "t2": b""}, "at least 32 bytes"),
        ("t.1", {"t.1": KEY_1}, "contain no '.'"),
        ("t1", {"t1": KEY_1, "old.1": KEY_2}, "contain no '.'"),
        ("", {"": KEY_1}, "non-empty"),
        ("t\u00e9", {"t\u00e9": KEY_1}, "ASCII"),
        ("t2", {"t1": KEY_1}, "not configured"),
    ],
    ids=["short", "short-other", "dot", "dot-other", "empty-id", "non-ascii-id", "no-current"],
)
def test_a_signer_refuses_short_keys_and_unusable_key_ids(
    current: str, keys: dict[str, bytes], message: str
) -> None:
    """Keys under 32 bytes, ids that are empty, non-ASCII or hold '.', or no current key."""
    with pytest.raises(ValueError, match=message):
        SessionTokenSigner(current, keys)


def test_the_signing_keys_do_not_appear_in_the_signers_repr() -> None:
    """A signer logged by accident (or shown in a traceback) does not print its keys."""
    rotated = SessionTokenSigner("t2", {"t1": KEY_1, "t2": KEY_2})
    for signer in (SIGNER, rotated):
        text = repr(signer)
        assert signer.current_key_id in text
        for key in signer.keys.values():
            assert repr(key) not in text
            assert key.decode("latin-1") not in text
