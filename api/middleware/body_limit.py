"""A ceiling on request bodies: anything larger is answered 413 before a route reads it.

Every body is read whole into memory (JSON parsing, the input guard), so without a ceiling
one request could make the process hold as much as a client cares to send. The limit is
``MANDATE_MAX_BODY_BYTES`` (64 KiB by default; the largest legitimate body, a policy
document, is at most 6,144 characters).

* A ``Content-Length`` over the limit is refused at once, nothing read. One within it needs
  no counting: the HTTP server frames the body by that length and never delivers more.
* A body without ``Content-Length`` (chunked) is counted as it streams in; the chunk that
  crosses the limit is refused, and the route never sees the body.

A refused request reaches no route, so it writes no event. The answer is the usual
``application/problem+json`` (with ``Connection: close``: the rest of the body is not read).
A plain ASGI middleware: the decision hot path pays one scan of its headers.
"""

from __future__ import annotations

import contextlib
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mandate.api.middleware.http_only import HttpOnlyMiddleware
from mandate.api.problems import problem

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimitMiddleware"]

DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024
_CONTENT_LENGTH: Final = b"content-length"


class _TooLarge(Exception):
    """Raised from ``receive`` when a streamed body crosses the limit."""


class BodyLimitMiddleware(HttpOnlyMiddleware):
    """Answers 413 to a request whose body is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body; refuse it when the count crosses the limit.

        A route may swallow the error ``receive`` raises (FastAPI turns a failed body read
        into a 400), so once the limit is crossed whatever the app sends is dropped and the
        413 is sent instead.
        """
        limit = self.max_bytes
        received = 0
        crossed = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, crossed
            if crossed:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    crossed = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if crossed and not started:
                return
            started = True
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if crossed and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = f"is larger than {self.max_bytes} bytes (MANDATE_MAX_BODY_BYTES)"
        response = problem(
            413,
            "Request body too large",
            f"body: {reason}",
            headers={"Connection": "close"},
            errors=[{"field": "body", "reason": reason}],
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length, or ``None`` when there is none (or it is not a number)."""
    for name, value in scope["headers"]:
        if name == _CONTENT_LENGTH:
            try:
                return int(value)
            except ValueError:
                return None
    return None
