"""Refusing stale and replayed requests: a ±15-minute clock window and a nonce memory.

A signed request is good only while its time is within ``window`` of the server's clock, so a
nonce need be remembered only until the request's own time plus the window: after that the
clock check refuses a replay anyway. ``NonceCache`` keeps an 8-byte key per ``(AccessKeyId,
nonce)`` (Python's per-process keyed hash of the pair) with that expiry, purging the expired
as it goes, bounded by ``max_entries``; when full of live entries it refuses
(``NonceCacheFull``) rather than forget one, since forgetting would reopen a replay. Only
requests whose signature held reach it, so filling it takes valid keys.
An entry costs about 180 bytes (CPython 3.11, measured with tracemalloc): the default
262,144 entries, about 145 requests a second sustained over the 30-minute life of a nonce,
hold at most some 48 MB.

The memory is per process: with several workers or hosts, a replay sent to another process
within the window would not be caught by it alone. So ``ReplayGuard`` may be given a
``shared`` store too (on PostgreSQL, ``projections.store.nonces.SharedNonces``: one table every
process claims nonces in). The process's own cache is asked first — a replay to the same
process is refused without I/O — and a nonce new to it is then claimed in the shared store:
for every signed request (``share_all``) or only for those that may write (the caller says,
``writes``; ``MANDATE_SHARED_NONCES``). A shared store that cannot answer refuses the request
(``NonceStoreUnavailable``, 503 with Retry-After) and the nonce is forgotten locally, so the
retry is not refused as a replay: an outage never turns the guard off.

OSS signatures carry no nonce: a header-signed OSS request can be replayed within the window
and a presigned URL until it expires, as with OSS itself.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import ClassVar, Protocol

from mandate.api.signing.canonical import SignedRequest
from mandate.api.signing.errors import (
    IncompleteSignature,
    InvalidTimeStampExpired,
    SignatureNonceUsed,
    SigningError,
)

WINDOW = timedelta(minutes=15)
log = logging.getLogger("mandate.signing")
_DIGEST = hashlib.blake2b(digest_size=16)
"""An empty 128-bit BLAKE2b, only copied: a nonce's key in the shared store, the same in
every process (copying skips the constructor's argument parsing)."""


class NonceCacheFull(SigningError):
    """More live nonces than the memory may hold: the request is refused, not the guard."""

    code: ClassVar[str] = "ServiceUnavailable"
    http_status: ClassVar[int] = 503


class NonceStoreUnavailable(SigningError):
    """The shared nonce store did not answer: the request is refused (fail closed), retry."""

    code: ClassVar[str] = "ServiceUnavailable"
    http_status: ClassVar[int] = 503


class NonceStore(Protocol):
    """Where nonces are remembered: ``add`` answers False when ``key`` is already there."""

    def add(self, key: bytes, expires_at: float, now: float) -> bool: ...


class NonceCache:
    """An in-memory ``NonceStore``, thread-safe, holding at most ``max_entries`` live keys."""

    def __init__(self, max_entries: int = 262_144) -> None:
        self.max_entries = max_entries
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, key: bytes, expires_at: float, now: float) -> bool:
        with self._lock:
            self._purge(now)
            if key in self._expiry:
                return False
            if len(self._expiry) >= self.max_entries:
                raise NonceCacheFull(
                    "Too many requests within the replay window: try again shortly."
                )
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return True

    def discard(self, key: bytes) -> None:
        """Forget ``key`` (its request was refused before it was served: the shared store was
        down); its heap entry goes when it expires."""
        with self._lock:
            self._expiry.pop(key, None)

    def _purge(self, now: float) -> None:
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            if expiry.get(key) == at:  # not a discarded key's stale entry, since re-added
                del expiry[key]


class ReplayGuard:
    """The clock and nonce checks, around a parsed request's ``verify``."""

    def __init__(
        self,
        nonces: NonceStore | None = None,
        *,
        shared: NonceStore | None = None,
        share_all: bool = False,
        window: timedelta = WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.nonces: NonceStore = nonces if nonces is not None else NonceCache()
        self.shared = shared
        self.share_all = share_all
        self.window = window.total_seconds()
        self.clock = clock

    def check_time(self, request: SignedRequest, now: float | None = None) -> None:
        """Raise ``InvalidTimeStampExpired`` if the request's time is not acceptable now."""
        now = self.clock() if now is None else now
        if request.expires is not None:
            if now > request.expires.timestamp():
                raise InvalidTimeStampExpired("Request has expired.")
            if request.timestamp is not None and request.timestamp.timestamp() - now > self.window:
                raise InvalidTimeStampExpired("The request's time is in the future.")
            return
        if request.timestamp is None:
            raise IncompleteSignature("The request carries no time.")
        skew = request.timestamp.timestamp() - now
        if abs(skew) > self.window:
            raise InvalidTimeStampExpired(
                f"The request's time {request.timestamp:%Y-%m-%dT%H:%M:%SZ} is more than "
                f"{self.window / 60:g} minutes from the server's."
            )

    def remember_nonce(
        self, request: SignedRequest, now: float | None = None, *, writes: bool = True
    ) -> None:
        """Raise ``SignatureNonceUsed`` if this key's nonce was seen within the window: by
        this process, or (a request that ``writes``, or any with ``share_all``) by any
        process sharing the ``shared`` store."""
        if request.nonce is None:
            return
        now = self.clock() if now is None else now
        pair = (request.access_key_id, request.nonce)
        # this process's key: Python's hash, keyed per process (SipHash), 8 bytes. Equal
        # pairs always collide, so a replay is always caught; two pairs colliding by chance
        # (p ~ entries / 2^64, and unforgeable without the process's key) refuse a request,
        # never admit one.
        key = hash(pair).to_bytes(8, "little", signed=True)
        signed_at = request.timestamp.timestamp() if request.timestamp else now
        expires_at = signed_at + self.window
        if not self.nonces.add(key, expires_at, now):
            raise _used(self.window)
        if self.shared is None or not (writes or self.share_all):
            return
        digest = _DIGEST.copy()  # the processes' key: the same in every one of them
        digest.update("\0".join(pair).encode())
        try:
            claimed = self.shared.add(digest.digest(), expires_at, now)
        except Exception as error:  # whatever it is, the request is refused: never let through
            log.warning(
                "the shared nonce store did not answer: %s: %s", type(error).__name__, error
            )
            discard = getattr(self.nonces, "discard", None)
            if discard is not None:
                discard(key)  # not served: the retry is not a replay
            raise NonceStoreUnavailable(
                "The signature nonce could not be checked: try again shortly."
            ) from None
        if not claimed:
            raise _used(self.window)

    def check(self, request: SignedRequest, secret: str, *, writes: bool = True) -> None:
        """Clock, then signature, then nonce: only a proven request spends its nonce."""
        now = self.clock()
        self.check_time(request, now)
        request.verify(secret)
        self.remember_nonce(request, now, writes=writes)


def _used(window: float) -> SignatureNonceUsed:
    return SignatureNonceUsed(
        f"The signature nonce was used before within {window / 60:g} minutes."
    )


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def v1_writes(method: str, path: str) -> bool:
    """Whether a signed ``/v1`` request may write: not a GET/HEAD, nor a decision asked of
    ``/v1/authorize`` (the enforcement points' hot path, which writes nothing)."""
    return method.upper() not in _READ_METHODS and not path.startswith("/v1/authorize")


def rpc_writes(action: str) -> bool:
    """Whether an RPC action may write: every action but RAM's and STS's Get*/List* reads."""
    return not action.startswith(("Get", "List"))
