"""``Idempotency-Key`` on /v1 writes: a retry is answered the original answer, never a second
write.

How a request with the header goes (POST, PUT, PATCH or DELETE under ``/v1/``):

1. ``IdempotencyMiddleware`` checks the key (1 to 255 visible ASCII characters, else 400), reads
   the body and makes the request's digest: method, path, query and the body's SHA-256.
2. ``Runtime.write`` asks ``Idempotency.begin`` with the authenticated caller's ARN as the
   key's scope (another caller's key is another key). A live row for the key answers at once,
   without running the command: the same digest and a recorded answer → that answer again
   (same status, body, position; ``Idempotency-Replayed: true``); another digest → 422; no
   answer yet → 409 with ``Retry-After`` (the first request is still in flight; also when the
   key is held in this process, or another process committed it first:
   ``IdempotencyKeyTaken``). Otherwise the command runs ``guarded_by`` a ``GuardedWrite``,
   and its events' transaction records the key (``projections.store.idempotency``).
3. The middleware records the answer on the key's row before sending it. Only a 2xx answer of
   a write is recorded: a refused command (4xx) wrote nothing and records nothing, so its
   retry runs again. An answer that carries a secret (a new AccessKey's, a root key's, an STS
   session's secret and token) is recorded sealed by the keyring, bound to the key's scope
   and name, never in clear; a retry is answered the same secret, as the first answer was.
4. A row whose answer was never recorded (the process stopped between the commit and the
   answer, or the write was not applied in time) is answered, once it is older than the
   write's own wait, with its position and a note saying the answer was lost: the write
   stands, and is never made again.

Keys live ``MANDATE_IDEMPOTENCY_TTL_SECONDS`` (24 h); expired rows are purged a bounded number
at a time every ``PURGE_EVERY`` recorded answers. The RPC dialect at ``/`` is not covered:
its SDKs sign every attempt anew (timestamp, nonce), so a digest cannot tell a retry there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mandate.api.middleware.http_only import HttpOnlyMiddleware
from mandate.api.problems import problem
from mandate.domain.ledger.idempotency import GuardedWrite, IdempotencyKeyTaken
from mandate.projections.store.idempotency import IdempotencyKeys

if TYPE_CHECKING:
    from mandate.domain.identity.keyring import Keyring

__all__ = [
    "HEADER",
    "Idempotency",
    "IdempotencyMiddleware",
    "IdempotentRequest",
    "KeyInFlight",
    "KeyReused",
    "Replayed",
    "install_idempotency",
]

HEADER: Final = "Idempotency-Key"
_HEADER_RAW: Final = b"idempotency-key"
_VALID: Final = re.compile(r"[\x21-\x7e]{1,255}")
_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SECRETS: Final = (b'"access_key_secret"', b'"security_token"')
_SEALED: Final = "sealed:"
PURGE_EVERY: Final = 100  # recorded answers between two bounded purges of expired rows
RETRY_AFTER: Final = 1

log = logging.getLogger("mandate")


class IdempotentRequest:
    """What the middleware knows of one request with a key, shared with ``Runtime.write``."""

    __slots__ = ("digest", "guard", "held", "key")

    def __init__(self, key: str, digest: str) -> None:
        self.key = key
        self.digest = digest
        self.guard: GuardedWrite | None = None
        self.held: tuple[str, str] | None = None  # (scope, key) held in this process


_request: ContextVar[IdempotentRequest | None] = ContextVar("mandate_idempotent_request")


class Replayed(Exception):
    """The key's first request was answered: this is that answer again."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class KeyReused(Exception):
    """The key was first used for another request (method, path or body differ): 422."""


class KeyInFlight(Exception):
    """The key's first request has not finished: 409, try again after ``RETRY_AFTER`` s."""


class Idempotency:
    """The process's side of idempotency keys: the table, the keys held here, the sealing."""

    def __init__(
        self,
        keys: IdempotencyKeys,
        *,
        ttl: float,
        pending_window: float,
        keyring: Callable[[], Keyring | None],
    ) -> None:
        self.keys = keys
        self.ttl = ttl
        self.pending_window = pending_window
        """How long a row without an answer counts as in flight (the write's own wait)."""
        self._keyring = keyring
        self._held: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._answers = 0

    def begin(self, scope: str) -> GuardedWrite | None:
        """The key this write must be saved with, or None (no key on this request); raises
        ``Replayed``, ``KeyReused`` or ``KeyInFlight`` instead of letting the write run."""
        request = _request.get(None)
        if request is None:
            return None
        if request.guard is not None:  # a second write of the same request: same key
            return request.guard
        stored = self.keys.get(scope, request.key)
        now = self.keys.clock()
        if stored is not None:
            if stored.digest != request.digest:
                raise KeyReused(request.key)
            if stored.answered:
                assert stored.status is not None
                assert stored.body is not None
                try:
                    body = self._open(stored.body, scope, request.key)
                except Exception as error:  # its data key is gone: the answer is lost
                    log.warning("a sealed idempotent answer did not open: %s", error)
                    raise Replayed(200, _lost(request.key, stored.position)) from None
                raise Replayed(stored.status, body)
            with self._lock:
                held_here = (scope, request.key) in self._held
            if held_here or now - stored.created_at < self.pending_window:
                raise KeyInFlight(request.key)
            raise Replayed(200, _lost(request.key, stored.position))
        with self._lock:
            if (scope, request.key) in self._held:
                raise KeyInFlight(request.key)
            self._held.add((scope, request.key))
        request.held = (scope, request.key)
        request.guard = GuardedWrite(
            scope, request.key, request.digest, created_at=now, expires_at=now + self.ttl
        )
        return request.guard

    def finish(self, request: IdempotentRequest, status: int | None, body: bytes | None) -> None:
        """Record a write's 2xx answer on its key's row; let the key go in this process."""
        try:
            guard = request.guard
            if guard is not None and status is not None and body is not None and status < 300:
                stored = self._seal(body, guard.scope, guard.key)
                self.keys.answer(guard, status, stored)
                self._answers += 1
                if self._answers % PURGE_EVERY == 0:
                    self.keys.purge()
        except Exception as error:
            # The write stands and its answer is still sent; a retry hears its position.
            log.warning("the answer of idempotency key %r was not recorded: %s", request.key, error)
        finally:
            if request.held is not None:
                with self._lock:
                    self._held.discard(request.held)
                request.held = None

    def _seal(self, body: bytes, scope: str, key: str) -> str:
        text = body.decode()
        if not any(field in body for field in _SECRETS):
            return text
        keyring = self._keyring()
        if keyring is None:  # no keyring, no secret kept: the retry is told it was lost
            raise RuntimeError("an answer with a secret cannot be kept without a keyring")
        return _SEALED + keyring.seal(text, bound_to=_bound(scope, key))

    def _open(self, stored: str, scope: str, key: str) -> bytes:
        if not stored.startswith(_SEALED):
            return stored.encode()
        keyring = self._keyring()
        assert keyring is not None
        return keyring.unseal(stored.removeprefix(_SEALED), bound_to=_bound(scope, key)).encode()


def _bound(scope: str, key: str) -> str:
    return f"idempotency:{scope}:{key}"


def _lost(key: str, position: int | None) -> bytes:
    return json.dumps(
        {
            "position": position,
            "idempotency_key": key,
            "detail": f"the request with this {HEADER} was applied at position {position}, "
            "but its answer was not recorded (the serving process stopped first): it is not "
            "made again; read the resource for its state",
        }
    ).encode()


def digest(method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests the same request (the caller is the key's scope)."""
    parts = [method.encode(), path.encode(), query, hashlib.sha256(body).hexdigest().encode()]
    return hashlib.sha256(b"\n".join(parts)).hexdigest()


def _header(scope: Scope) -> list[bytes]:
    return [value for name, value in scope["headers"] if name == _HEADER_RAW]


class IdempotencyMiddleware(HttpOnlyMiddleware):
    """Steps 1 and 3 above, for /v1 writes that carry the header; the rest passes."""

    def __init__(self, app: ASGIApp, idempotency: Idempotency) -> None:
        super().__init__(app)
        self.idempotency = idempotency

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in _WRITES or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        values = _header(scope)
        if not values:
            await self.app(scope, receive, send)
            return
        key = values[0].decode("latin-1")
        if len(values) > 1 or not _VALID.fullmatch(key):
            response = problem(
                400,
                "Bad Request",
                f"{HEADER} must be one header of 1 to 255 visible ASCII characters",
                header=HEADER,
            )
            await response(scope, receive, send)
            return
        body = await _read_body(receive)
        request = IdempotentRequest(
            key, digest(scope["method"], scope["path"], scope["query_string"], body)
        )
        token = _request.set(request)
        try:
            await self.app(scope, _replaying(body, receive), self._recording(request, send))
        finally:
            _request.reset(token)
            if request.held is not None:  # no answer was sent (an error): let the key go
                await anyio.to_thread.run_sync(self.idempotency.finish, request, None, None)

    def _recording(self, request: IdempotentRequest, send: Send) -> Send:
        held: list[Message] = []
        status: list[int] = []

        async def record(message: Message) -> None:
            if request.guard is None:  # nothing written under the key: pass it on
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                return
            if message["type"] == "http.response.body" and not message.get("more_body"):
                body = b"".join(m.get("body", b"") for m in held[1:])
                await anyio.to_thread.run_sync(
                    self.idempotency.finish, request, status[0] if status else None, body
                )
                for kept in held:
                    await send(kept)
                held.clear()

        return record


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def install_idempotency(app: FastAPI, idempotency: Idempotency) -> None:
    """The middleware (add it innermost: inside the body limit) and the answers it raises."""
    app.add_middleware(IdempotencyMiddleware, idempotency=idempotency)

    async def replayed(_: Request, error: Exception) -> Response:
        assert isinstance(error, Replayed)
        return Response(
            error.body,
            status_code=error.status,
            media_type="application/json",
            headers={"Idempotency-Replayed": "true"},
        )

    async def reused(_: Request, error: Exception) -> JSONResponse:
        return problem(
            422,
            "Unprocessable Content",
            f"this {HEADER} was used for another request (method, path or body differ); "
            "use a new key for a new request",
            header=HEADER,
            code="IdempotencyKeyReused",
        )

    async def in_flight(_: Request, error: Exception) -> JSONResponse:
        return problem(
            409,
            "Conflict",
            f"a request with this {HEADER} is still in flight; retry it after "
            f"{RETRY_AFTER} s to hear its answer",
            headers={"Retry-After": str(RETRY_AFTER)},
            header=HEADER,
            code="IdempotencyKeyInFlight",
        )

    app.add_exception_handler(Replayed, replayed)
    app.add_exception_handler(KeyReused, reused)
    app.add_exception_handler(KeyInFlight, in_flight)
    app.add_exception_handler(IdempotencyKeyTaken, in_flight)
