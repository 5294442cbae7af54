"""The keyring: seals and unseals secrets under the store's data keys, unwrapped once.

The data keys live wrapped in the ledger's store (``DataKeySource``: a small mutable table,
never the log); the key-encryption keys come from the settings. ``Keyring.open`` unwraps every
data key once at start — a KEK that does not match, or a data key wrapped under a KEK this
process is not given, is refused there in one line, not on the first request — and creates the
first data key (``d1``) on an empty store; concurrent first starts agree on one (the insert
does nothing when the id is taken, and everyone re-reads).

``rotate`` re-wraps every data key under the current KEK in one transaction of the source,
which serialises concurrent runs; a second run finds nothing left to do. Sealed values never
change: they name their data key, and the data keys stay the same under a new wrapping, so
processes keep serving through a rotation (the ones holding old and new KEKs unwrap either).

Personal data (a RAM user's display name) is sealed under a *per-account* data key,
``p<n>-<account id>``, in the same table, so rotation re-wraps it with the others. Erasing an
account's personal data (``erase_personal``) destroys that key: its row keeps only a tombstone
(no wrapped key), and every value sealed under it reads as erased from then on — in every
process, because ``open_personal`` asks the table whether the key is still live on each read
(an erased key is remembered as such for good). A later display name gets the next key.

``open_secret`` is ``unseal`` for verifying request signatures, remembered in a bounded LRU
(``opened_secrets`` entries): a sealed value always opens to the same secret, so the cache
saves the AES-GCM work and decides nothing (see ``open_secret``).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, NoReturn, Protocol

from mandate.domain.identity.sealing import DataKey, KeyEncryptionKey, SealRefused, sealed_key_id

__all__ = [
    "DataKeySource",
    "KeyEncryptionKeys",
    "Keyring",
    "KeyringRefused",
    "Rotation",
    "WrappedDataKey",
]

_DATA_KEY_ID = re.compile(r"d([1-9][0-9]*)")
_PERSONAL_KEY_ID = re.compile(r"p([1-9][0-9]*)-([0-9A-Za-z_]{1,28})")
OPENED_SECRETS: Final = 10_000
"""How many opened secrets ``open_secret`` remembers by default (``MANDATE_SECRET_CACHE_SIZE``)."""
ERASED_KEK: Final = "erased"
"""The ``kek_id`` of a destroyed personal-data key's tombstone row (its ``wrapped`` is empty)."""


class KeyringRefused(Exception):
    """The configured key-encryption keys cannot open the store's data keys (one line)."""


@dataclass(frozen=True, slots=True)
class WrappedDataKey:
    """One row of the data key table: the key wrapped under the KEK ``kek_id``."""

    id: str
    kek_id: str
    wrapped: str
    created_at: str
    rewrapped_at: str | None = None

    @property
    def erased(self) -> bool:
        """A destroyed personal-data key: the row is a tombstone, no key is left in it."""
        return not self.wrapped


class DataKeySource(Protocol):
    """Where the wrapped data keys are kept (``projections.store.data_keys``)."""

    def all(self) -> list[WrappedDataKey]: ...

    def get(self, key_id: str) -> WrappedDataKey | None: ...

    def add(self, key_id: str, kek_id: str, wrapped: str) -> bool:
        """Insert unless the id is taken; whether this call inserted it."""
        ...

    def rewrap(self, change: Callable[[WrappedDataKey], tuple[str, str] | None]) -> int:
        """In one transaction that excludes other rewraps and inserts: each row ``change``
        answers ``(kek_id, wrapped)`` for is updated; how many were."""
        ...

    def erase(self, key_id: str) -> bool:
        """Destroy the key ``key_id`` (its row becomes a tombstone: no wrapped key); whether
        this call did (False when already erased or absent)."""
        ...


@dataclass(frozen=True, slots=True)
class KeyEncryptionKeys:
    """The current KEK (wraps new and re-wrapped data keys) and the previous ones (still
    unwrap during a rotation)."""

    current: KeyEncryptionKey
    previous: tuple[KeyEncryptionKey, ...] = ()

    def __post_init__(self) -> None:
        ids = [self.current.id, *(kek.id for kek in self.previous)]
        if len(set(ids)) != len(ids):
            raise ValueError("key-encryption key ids must differ")

    def get(self, key_id: str) -> KeyEncryptionKey | None:
        return next((kek for kek in (self.current, *self.previous) if kek.id == key_id), None)

    @property
    def ids(self) -> list[str]:
        return [self.current.id, *(kek.id for kek in self.previous)]

    def unwrap(self, row: WrappedDataKey) -> DataKey:
        """``row``'s data key, under the KEK it records; ``KeyringRefused`` naming why not."""
        kek = self.get(row.kek_id)
        if kek is None:
            raise KeyringRefused(
                f"the store's data key {row.id} is wrapped under key-encryption key "
                f"{row.kek_id}, which this process is not given (it has "
                f"{', '.join(self.ids)}): configure {row.kek_id} as a previous key until "
                "`mandate keys rotate` has re-wrapped every data key"
            )
        try:
            return kek.unwrap(row.id, row.wrapped)
        except SealRefused as error:
            raise KeyringRefused(str(error)) from None


@dataclass(frozen=True, slots=True)
class Rotation:
    """What ``Keyring.rotate`` did: re-wrapped ``rewrapped`` of ``data_keys`` under ``kek_id``."""

    kek_id: str
    rewrapped: int
    data_keys: int
    new_data_key: str | None
    not_current: tuple[str, ...] = ()
    """Data keys still under another KEK (added meanwhile by a process configured before the
    rotation): run it again."""


def _number(key_id: str) -> int:
    match = _DATA_KEY_ID.fullmatch(key_id)
    return int(match.group(1)) if match else 0


class Keyring:
    """Seals new secrets under the newest data key; unseals under the one a value names.

    Data keys are held unwrapped in memory (unwrapped once; one created by another process
    since is fetched on first use). Never pickled, never in a ``repr``.
    """

    def __init__(
        self,
        keks: KeyEncryptionKeys,
        source: DataKeySource,
        keys: Iterable[DataKey],
        *,
        opened_secrets: int = OPENED_SECRETS,
    ) -> None:
        self._keks = keks
        self._source = source
        self._keys: dict[str, DataKey] = {key.id: key for key in keys}
        self._lock = threading.Lock()
        self._erased: frozenset[str] = frozenset()
        if not self._keys:
            raise ValueError("a keyring needs at least one data key")
        self._current = max(self._keys.values(), key=lambda key: _number(key.id))
        self._opened = functools.lru_cache(maxsize=max(opened_secrets, 0))(self._open)
        self._forget_too: list[Callable[[], None]] = []

    @classmethod
    def open(
        cls, keks: KeyEncryptionKeys, source: DataKeySource, *, opened_secrets: int = OPENED_SECRETS
    ) -> Keyring:
        """Unwrap every data key of ``source`` (creating ``d1`` when there is none)."""
        rows = source.all()
        if not rows:
            first = DataKey.generate("d1")
            source.add(first.id, keks.current.id, keks.current.wrap(first))
            rows = source.all()
        keys = [keks.unwrap(row) for row in rows if not row.erased]
        return cls(keks, source, keys, opened_secrets=opened_secrets)

    @property
    def current_key_id(self) -> str:
        """The data key new secrets are sealed under."""
        return self._current.id

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys, key=_number)

    def seal(self, secret: str, *, bound_to: str) -> str:
        """``secret`` sealed for storage, opening only with the same ``bound_to`` (the
        AccessKeyId it is the secret of): ``v1$<data key id>$…``."""
        return self._current.seal(secret, bound_to=bound_to)

    def unseal(self, sealed: str, *, bound_to: str) -> str:
        """The secret in ``sealed``; ``SealRefused`` when it was altered, is bound to
        something else, or names a data key that does not open."""
        key_id = sealed_key_id(sealed)
        key = self._keys.get(key_id)
        if key is None:
            key = self._fetch(key_id)
        return key.unseal(sealed, bound_to=bound_to)

    def open_secret(self, sealed: str, *, bound_to: str) -> str:
        """``unseal``, remembered: an AccessKey's or session's secret, to verify a request
        signature with (the decision index's ``secret_for``).

        A sealed value names its data key and carries its own nonce, so it always opens to the
        same secret: remembering the answer (keyed by the sealed value and ``bound_to``) only
        saves the AES-GCM work, about 20 µs a request in a serving process. It decides nothing:
        the index hands over a sealed value only for a key or session it still holds, and
        whether that one may act (active, not revoked, not expired) is judged afresh on every
        request after its signature holds. Least recently used first out beyond
        ``opened_secrets`` (0: nothing kept); emptied by ``forget_opened`` (on a rotation and
        an erasure). It lives in this object only, which is never pickled or shown; this
        process already holds the data keys that open every secret.
        """
        return self._opened(sealed, bound_to)

    def _open(self, sealed: str, bound_to: str) -> str:
        return self.unseal(sealed, bound_to=bound_to)

    def forget_opened(self) -> None:
        """Drop every secret ``open_secret`` remembers, and what ``also_forget`` named."""
        self._opened.cache_clear()
        for forget in self._forget_too:
            forget()

    def also_forget(self, forget: Callable[[], None]) -> None:
        """Call ``forget`` whenever the opened secrets are forgotten: for what is derived from
        them elsewhere (the API's OSS V4 signing keys)."""
        self._forget_too.append(forget)

    @property
    def opened_count(self) -> int:
        """How many opened secrets are remembered now (never which)."""
        return self._opened.cache_info().currsize

    def _fetch(self, key_id: str) -> DataKey:
        with self._lock:
            if key_id in self._keys:
                return self._keys[key_id]
            row = self._source.get(key_id)
            if row is None:
                raise SealRefused(f"the store has no data key {key_id}")
            try:
                key = self._keks.unwrap(row)
            except KeyringRefused as error:
                raise SealRefused(str(error)) from None
            self._keys = {**self._keys, key_id: key}  # readers see the old or the new dict
            return key

    def rotate(self, *, new_data_key: bool = False) -> Rotation:
        """Re-wrap every data key not yet under the current KEK, in one transaction; with
        ``new_data_key``, add the next data key (new secrets are sealed under it by processes
        started from then on). Running it again changes nothing. Forgets every opened secret
        (``forget_opened``): nothing opened under the old wrapping outlives a rotation."""
        self.forget_opened()
        current = self._keks.current

        def change(row: WrappedDataKey) -> tuple[str, str] | None:
            if row.kek_id == current.id or row.erased:
                return None
            return current.id, current.wrap(self._keks.unwrap(row))

        rewrapped = self._source.rewrap(change)
        added: str | None = None
        if new_data_key:
            known = self._source.all()
            key = DataKey.generate(f"d{max((_number(row.id) for row in known), default=0) + 1}")
            if self._source.add(key.id, current.id, current.wrap(key)):
                added = key.id
                with self._lock:
                    self._keys = {**self._keys, key.id: key}
                    self._current = key
        rows = [row for row in self._source.all() if not row.erased]
        for row in rows:  # every data key still opens under the keys this process holds
            self._keks.unwrap(row)
        elsewhere = tuple(row.id for row in rows if row.kek_id != current.id)
        self.forget_opened()  # and what was opened while it ran
        return Rotation(current.id, rewrapped, len(rows), added, elsewhere)

    # -- personal data (crypto-shredding) ----------------------------------------------------
    def seal_personal(self, account_id: str, value: str, *, bound_to: str) -> str:
        """``value`` (personal data of ``account_id``) sealed under the account's live
        personal-data key, created on first use (and anew after an erasure); ``bound_to``
        names what it is (e.g. a user's display name), so it opens for nothing else. Reads
        the table each time: a key another process erased is never sealed under again."""
        generation = 1
        while True:
            key_id = f"p{generation}-{account_id}"
            if not _PERSONAL_KEY_ID.fullmatch(key_id):
                raise ValueError("an account id is 1-28 letters, digits or '_'")
            row = self._source.get(key_id)
            if row is None:
                key = DataKey.generate(key_id)
                current = self._keks.current
                if not self._source.add(key_id, current.id, current.wrap(key)):
                    continue  # another process created it first: read theirs
                with self._lock:
                    self._keys = {**self._keys, key_id: key}
                return key.seal(value, bound_to=bound_to)
            if row.erased:
                generation += 1
                continue
            return self._personal_key(row).seal(value, bound_to=bound_to)

    def personal_reader(self) -> Callable[[str, str], str | None]:
        """A reader opening personal values: ``read(sealed, bound_to)`` is the clear value,
        or None when its key was erased (or the value does not open here). It asks the table
        once per key (so one answer listing many users costs one query); keep it for one
        answer only — a key erased meanwhile must read as erased in the next."""
        live: dict[str, DataKey | None] = {}

        def read(sealed: str, bound_to: str) -> str | None:
            try:
                key_id = sealed_key_id(sealed)
            except SealRefused:
                return None
            if key_id not in live:
                live[key_id] = self._live_personal(key_id)
            key = live[key_id]
            if key is None:
                return None
            try:
                return key.unseal(sealed, bound_to=bound_to)
            except SealRefused:
                return None

        return read

    def _live_personal(self, key_id: str) -> DataKey | None:
        if key_id in self._erased or not _PERSONAL_KEY_ID.fullmatch(key_id):
            return None
        row = self._source.get(key_id)
        if row is None or row.erased:
            with self._lock:
                self._erased = self._erased | {key_id}
                self._keys = {k: v for k, v in self._keys.items() if k != key_id}
            return None
        try:
            return self._personal_key(row)
        except KeyringRefused:
            return None

    def _personal_key(self, row: WrappedDataKey) -> DataKey:
        key = self._keys.get(row.id)
        if key is None:
            key = self._keks.unwrap(row)
            with self._lock:
                self._keys = {**self._keys, row.id: key}
        return key

    def erase_personal(self, account_id: str) -> list[str]:
        """Destroy every personal-data key of ``account_id`` (tombstones in the table): the
        ids this call erased — none when there was nothing left to erase (idempotent)."""
        self.forget_opened()
        erased: list[str] = []
        generation = 1
        while (row := self._source.get(f"p{generation}-{account_id}")) is not None:
            if not row.erased and self._source.erase(row.id):
                erased.append(row.id)
            with self._lock:
                self._erased = self._erased | {row.id}
                self._keys = {k: v for k, v in self._keys.items() if k != row.id}
            generation += 1
        return erased

    def __repr__(self) -> str:
        return f"Keyring(current={self._current.id!r}, keys={self.key_ids!r})"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a Keyring is never pickled (it holds keys)")
