"""``MANDATE_SECRET_CACHE_SIZE`` bounds what the process's keyring remembers of the secrets it
opened (``Keyring.open_secret``); 0 remembers nothing."""

from __future__ import annotations

import pytest

from mandate.api.settings import Settings
from mandate.api.signing import oss4
from mandate.api.startup.secret_keys import open_keyring
from tests.integration.test_secret_keys import OLD_KEK, datastore


@pytest.mark.parametrize(("size", "kept"), [(2, 2), (0, 0)])
def test_the_setting_bounds_the_opened_secrets(sqlite_url: str, size: int, kept: int) -> None:
    settings = Settings(database_url=sqlite_url, secret_key=OLD_KEK, secret_cache_size=size)
    with datastore(sqlite_url) as store:
        keyring = open_keyring(settings, store, create_table=True)
        for n in range(3):
            sealed = keyring.seal(f"secret-{n}", bound_to=f"LTAI5t{n}")
            assert keyring.open_secret(sealed, bound_to=f"LTAI5t{n}") == f"secret-{n}"
        assert keyring.opened_count == kept


def test_the_default_keeps_ten_thousand() -> None:
    assert Settings().secret_cache_size == 10_000


def test_the_keyring_served_forgets_the_derived_v4_keys_on_rotation(sqlite_url: str) -> None:
    """``open_keyring`` sizes the OSS V4 signing-key memory like the opened secrets, and the
    keyring's rotation empties both."""
    settings = Settings(database_url=sqlite_url, secret_key=OLD_KEK, secret_cache_size=3)
    with datastore(sqlite_url) as store:
        keyring = open_keyring(settings, store, create_table=True)
        try:
            oss4._signing_keys("secret", "20261207", "cn-hangzhou", "oss")
            assert oss4._signing_keys.cache_info().maxsize == 3
            assert oss4._signing_keys.cache_info().currsize == 1
            keyring.rotate()
            assert oss4._signing_keys.cache_info().currsize == 0
        finally:
            oss4.remember_signing_keys(Settings().secret_cache_size)
