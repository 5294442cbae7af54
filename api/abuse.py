"""Brute force and abuse: failed authentications limited per source IP and per key id, and
per-caller budgets for expensive reads — without a lock-out an attacker can aim at a user.

Each limit is a GCRA bucket (the generic cell rate algorithm: one "theoretical arrival time"
per key, a burst and a steady rate) held in this process's memory, in an LRU of bounded size:
an idle bucket is full again and costs nothing to forget, so eviction only ever forgives.

**Failed authentications.** A request whose credentials are refused costs one token of its
source IP's bucket and one of the claimed key id's bucket.

* An IP over its limit is answered 429 *before* its credentials are looked at, even correct
  ones: the IP is the attacker's own address, so this stops the hammering (and the hashing or
  HMAC it costs) without touching anyone else.
* A key id over its limit is answered 429 only for *failed* attempts (instead of 401): a
  request whose secret or signature is right still passes, unless its own IP is over the IP
  limit. This is the point of the design. A lock-out per key id (refuse every attempt, right
  or wrong, once too many failed) would hand the attacker a weapon: anyone who knows or guesses
  a victim's AccessKeyId (it is not secret: it appears in logs, URLs and signed requests)
  could hammer it from anywhere and deny the victim its own key. Here, hammering a victim's
  key id from other IPs exhausts only the attackers' IP buckets and the key's failure bucket,
  and neither stops the victim: its IP has not failed, and its right secret is not a failure.
  The per-key bucket still tells a distributed attacker (one guess per IP) to back off, and
  counts the attack (``mandate_rate_limited_total{reason="access_key"}``, the security log).
  Brute force itself is hopeless against Mandate's 30-character random secrets; what these
  limits bound is the cost and noise of trying, per address.

A 429 carries ``Retry-After`` (seconds until the bucket admits one more): ``problem+json`` on
``/v1``, RAM's ``Throttling.User`` on ``/``. Behind a proxy the source IP is the
``X-Forwarded-For`` the trusted proxies (``MANDATE_TRUSTED_PROXIES``) give; without one, a
NAT shared by many users is one IP, which is why the IP limit is generous by default.

**Expensive reads** (access review, audit and security-log exports, trail verification,
effective permissions as of T) spend one token of the caller's own bucket (by ARN): beyond,
429 with Retry-After. A caller can exhaust only its own budget.

Every limit is per process (with N API processes an address gets N times the rate); the
thresholds are settings (``MANDATE_AUTH_FAILURE_*``, ``MANDATE_EXPENSIVE_READ_*``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

from prometheus_client import Counter
from starlette.requests import Request

from mandate.api.middleware.request_ids import request_id_of

if TYPE_CHECKING:
    from mandate.api.runtime import Runtime

__all__ = [
    "AUTH_FAILURES",
    "RATE_LIMITED",
    "Attempt",
    "AuthThrottle",
    "GcraLimiter",
    "Throttled",
    "admit_attempt",
    "authentication_failed",
    "claimed_key_id",
    "guards_of",
    "may_log_denial",
    "spend_read_budget",
]

AUTH_FAILURES: Final = Counter(
    "mandate_auth_failures",
    "Requests whose credentials were refused (401 on /v1, an authentication error on /).",
    ["surface"],
)
RATE_LIMITED: Final = Counter(
    "mandate_rate_limited",
    "Requests answered 429, by the limit reached: source_ip, access_key (failed "
    "authentications) or expensive_read (a caller's read budget).",
    ["reason"],
)


class Throttled(Exception):
    """A limit is reached (→ 429 with ``Retry-After``); ``reason`` names the limit."""

    def __init__(self, detail: str, *, reason: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason
        self.retry_after = retry_after


class GcraLimiter:
    """GCRA buckets by key: ``burst`` requests at once, then one per ``1 / rate`` seconds.

    Each key holds one float (its theoretical arrival time); at most ``max_keys`` are kept,
    the least recently used forgotten first (a forgotten bucket is a full one).
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 1.0 / rate
        self.window = self.interval * burst  # how far ahead of now a bucket may run
        self.max_keys = max_keys
        self.clock = clock
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds before ``key`` may take a token (0: it may now); takes nothing."""
        tat = self._tat.get(key)  # one atomic read: no lock
        if tat is None:
            return 0.0
        return max(0.0, tat + self.interval - self.clock() - self.window)

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0 when taken, else the seconds to wait (nothing taken)."""
        now = self.clock()
        with self._lock:
            tat = max(self._tat.get(key, now), now) + self.interval
            excess = tat - now - self.window
            if excess > 0:
                return excess
            self._tat[key] = tat
            self._tat.move_to_end(key)
            while len(self._tat) > self.max_keys:
                self._tat.popitem(last=False)
            return 0.0

    def __len__(self) -> int:
        return len(self._tat)


def _throttled(reason: str, detail: str, wait: float) -> Throttled:
    """The 429 for the limit ``reason`` (counted in ``mandate_rate_limited``), retried after
    ``wait`` rounded up to whole seconds, at least one."""
    RATE_LIMITED.labels(reason).inc()
    return Throttled(detail, reason=reason, retry_after=max(1, math.ceil(wait)))


_FROM_ADDRESS: Final = "too many failed authentications from this address; retry later"
_FOR_KEY: Final = "too many failed authentications for this AccessKeyId; retry later"


class AuthThrottle:
    """The failed-authentication limits of one process (see the module's docstring)."""

    def __init__(self, by_ip: GcraLimiter, by_key: GcraLimiter) -> None:
        self.by_ip = by_ip
        self.by_key = by_key

    def admit(self, source_ip: str | None) -> None:
        """Before credentials are checked: refuse an IP over its failure limit."""
        if source_ip is None:
            return
        wait = self.by_ip.wait(source_ip)
        if wait > 0:
            raise _throttled("source_ip", _FROM_ADDRESS, wait)

    def failed(self, source_ip: str | None, key_id: str | None) -> Throttled | None:
        """Count a refused attempt; the 429 to answer instead of the refusal, if a limit is
        now exceeded (the IP's first, then the key id's), else None."""
        ip_wait = self.by_ip.take(source_ip) if source_ip is not None else 0.0
        key_wait = self.by_key.take(key_id) if key_id else 0.0
        if ip_wait > 0:
            return _throttled("source_ip", _FROM_ADDRESS, ip_wait)
        if key_wait > 0:
            return _throttled("access_key", _FOR_KEY, key_wait)
        return None


DENIAL_ROWS_BURST: Final = 600
DENIAL_ROWS_PER_MINUTE: Final = 600
"""Refused management calls one caller may put in the security log at once, and per minute."""


class Guards:
    """One runtime's limits: failed authentications and expensive-read budgets."""

    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        size = s.rate_limit_buckets
        self.auth = AuthThrottle(
            GcraLimiter(
                rate=s.auth_failures_per_minute_per_ip / 60,
                burst=s.auth_failure_burst_per_ip,
                max_keys=size,
            ),
            GcraLimiter(
                rate=s.auth_failures_per_minute_per_key / 60,
                burst=s.auth_failure_burst_per_key,
                max_keys=size,
            ),
        )
        self.denials = GcraLimiter(
            rate=DENIAL_ROWS_PER_MINUTE / 60, burst=DENIAL_ROWS_BURST, max_keys=size
        )
        self.reads = GcraLimiter(
            rate=s.expensive_reads_per_minute / 60,
            burst=s.expensive_read_burst,
            max_keys=size,
        )


_guards: weakref.WeakKeyDictionary[Runtime, Guards] = weakref.WeakKeyDictionary()
_guards_lock = threading.Lock()


def guards_of(runtime: Runtime) -> Guards:
    """The runtime's limits (made on first use: one set per runtime, i.e. per process)."""
    guards = _guards.get(runtime)
    if guards is None:
        with _guards_lock:
            guards = _guards.get(runtime)
            if guards is None:
                guards = _guards[runtime] = Guards(runtime)
    return guards


def claimed_key_id(authorization: str) -> str | None:
    """The AccessKeyId an ``Authorization`` header claims (Basic or ACS3), unverified and
    bounded; never the secret. None for the admin's Bearer or what cannot be read."""
    scheme, _sep, value = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip()[:1024], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        key_id, sep, _secret = decoded.partition(":")  # the secret is dropped here
        return key_id[:128] if sep and key_id else None
    if scheme.startswith("acs3-"):
        found = _ACS3_CREDENTIAL.search(value[:2048])
        return found.group(1)[:128] if found else None
    return None


_ACS3_CREDENTIAL: Final = re.compile(r"Credential=([^,\s]+)")


def admit_attempt(runtime: Runtime, source_ip: str | None) -> None:
    """Before credentials are checked: 429 when the source IP is over its failure limit."""
    guards_of(runtime).auth.admit(source_ip)


def authentication_failed(
    runtime: Runtime,
    *,
    surface: str,
    source_ip: str | None,
    key_id: str | None,
    reason: str,
    code: str | None,
    action: str | None,
    request_id: str | None,
    account_id: str | None = None,
) -> Throttled | None:
    """Count a refused authentication, put it in the security log (under the account that
    owns the claimed key id, when one does, else ``account_id``: the account a refused OIDC
    token's provider belongs to) and answer the 429 to send instead, if any."""
    AUTH_FAILURES.labels(surface).inc()
    throttled = guards_of(runtime).auth.failed(source_ip, key_id)
    runtime.security_events.record(
        kind="authentication_failed",
        account_id=_owner_of(runtime, key_id) or account_id,
        caller=None,
        access_key_id=key_id,
        action=action,
        resource=None,
        reason=reason if throttled is None else f"{reason} (then throttled: {throttled.reason})",
        code=code,
        source_ip=source_ip,
        request_id=request_id,
    )
    return throttled


class Attempt:
    """Around one authentication on ``/v1`` (``deps.authenticate``): an address over its
    failure limit is 429 before anything is checked; a ``refusal`` raised inside (the 401,
    with ``reason`` and ``code``) is counted against the address and the claimed key id,
    goes to the security log, and becomes a 429 beyond either limit. A request without
    credentials is no attempt at anyone's key: not counted. ``peer`` (``deps.peer``) is
    called only when needed: while no address has failed, this costs a dictionary lookup."""

    __slots__ = ("peer", "refusal", "request", "runtime")

    def __init__(
        self,
        request: Request,
        runtime: Runtime,
        peer: Callable[[Request, Runtime], tuple[str | None, bool]],
        refusal: type[Exception],
    ) -> None:
        self.request = request
        self.runtime = runtime
        self.peer = peer
        self.refusal = refusal

    def __enter__(self) -> None:
        if len(guards_of(self.runtime).auth.by_ip) and "authorization" in self.request.headers:
            admit_attempt(self.runtime, self.peer(self.request, self.runtime)[0])

    def __exit__(self, kind: object, refused: BaseException | None, _: object) -> Literal[False]:
        if refused is None or not isinstance(refused, self.refusal):
            return False
        request = self.request
        authorization = request.headers.get("authorization")
        if not authorization:
            return False
        route = getattr(request.scope.get("route"), "path", None) or request.url.path
        throttled = authentication_failed(
            self.runtime,
            surface="v1",
            source_ip=self.peer(request, self.runtime)[0],
            key_id=claimed_key_id(authorization),
            reason=str(getattr(refused, "reason", refused)),
            code=getattr(refused, "code", None),
            action=f"{request.method} {route}",
            request_id=request_id_of(request),
        )
        if throttled is not None:
            raise throttled from None
        return False


def _owner_of(runtime: Runtime, key_id: str | None) -> str | None:
    if not key_id:
        return None
    key = runtime.index.access_key(key_id)
    if key is not None:
        return key.account_id
    session = runtime.index.session(key_id)
    return session.record.account_id if session is not None else None


def may_log_denial(runtime: Runtime, caller_arn: str) -> bool:
    """Whether ``caller_arn``'s refused call may take a security-log row (its share left)."""
    return guards_of(runtime).denials.take(caller_arn) == 0


def spend_read_budget(runtime: Runtime, caller_arn: str, what: str) -> None:
    """One expensive read (``what``) by ``caller_arn``, or 429 when its budget is spent."""
    wait = guards_of(runtime).reads.take(caller_arn)
    if wait > 0:
        detail = f"{caller_arn} has used its budget of expensive reads ({what}); retry later"
        raise _throttled("expensive_read", detail, wait)
