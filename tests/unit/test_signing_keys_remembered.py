"""OSS V4's derived signing keys are remembered (bounded, emptied with the keyring's opened
secrets) and change nothing: the same key as derived afresh, a wrong secret still refused,
0 remembers nothing."""

from __future__ import annotations

from collections.abc import Iterator

import oss2
import pytest

from mandate.api.signing import SignatureDoesNotMatch, oss4
from mandate.api.signing.oss4 import forget_signing_keys, remember_signing_keys
from tests.unit.signing_sdk import AK, SECRET
from tests.unit.test_keyring_opened import ring
from tests.unit.test_signing_oss import signed_request, v4_header


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    remember_signing_keys(4)
    yield
    remember_signing_keys(1024)


def test_a_remembered_key_is_the_derived_one_and_a_wrong_secret_is_still_refused() -> None:
    request = v4_header(signed_request(oss2.AuthV4(AK, SECRET)))
    request.verify(SECRET)
    request.verify(SECRET)
    info = oss4._signing_keys.cache_info()
    assert (info.hits, info.currsize) == (1, 1)
    scope = (request.date_time[:8], request.region, request.product)
    assert oss4._signing_keys(SECRET, *scope) == oss4._signing_key(SECRET, *scope)
    with pytest.raises(SignatureDoesNotMatch):
        request.verify("not-the-secret")


def test_zero_remembers_nothing() -> None:
    remember_signing_keys(0)
    request = v4_header(signed_request(oss2.AuthV4(AK, SECRET)))
    request.verify(SECRET)
    request.verify(SECRET)
    assert oss4._signing_keys.cache_info().currsize == 0


def test_the_keyring_forgets_them_with_its_opened_secrets() -> None:
    keyring = ring()
    keyring.also_forget(forget_signing_keys)
    v4_header(signed_request(oss2.AuthV4(AK, SECRET))).verify(SECRET)
    assert oss4._signing_keys.cache_info().currsize == 1
    keyring.rotate()
    assert oss4._signing_keys.cache_info().currsize == 0
