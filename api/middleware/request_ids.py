"""``X-Request-Id``: the client's, when it is short and plain, else one made here.

The request id is copied into every event a request writes, into the audit trail and its
exports, and into responses; a client chooses it. Left as sent, a 10 KB header, a newline or
a formula (``=HYPERLINK(…)``) would be stored for ever in a tamper-evident log, and could
forge lines in whatever reads it later. So an id is accepted only when it is at most
``MAX_LENGTH`` characters of ``[A-Za-z0-9._:-]`` (UUIDs, ULIDs, ``trace:span`` forms pass);
anything else is replaced, not trimmed or escaped — a part of a hostile id is still hostile.
The response always echoes the id actually used, so a client can find its events either way.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

from starlette.requests import HTTPConnection
from starlette.types import Message, Receive, Scope, Send

from mandate.api.middleware.http_only import HttpOnlyMiddleware

__all__ = ["MAX_LENGTH", "RequestIdMiddleware", "accepted_request_id", "request_id_of"]

MAX_LENGTH: Final = 128
_SAFE: Final = re.compile(rb"[A-Za-z0-9._:-]{1,%d}" % MAX_LENGTH)
_HEADER: Final = b"x-request-id"
SCOPE_KEY: Final = "mandate.request_id"


def accepted_request_id(given: bytes | None) -> str:
    """The id this request goes by: ``given`` if it is safe, else a new random one."""
    if given is not None and _SAFE.fullmatch(given):
        return given.decode("ascii")
    return uuid.uuid4().hex


def request_id_of(connection: HTTPConnection) -> str:
    """The id the middleware chose for this request (chosen here if it did not run)."""
    chosen = connection.scope.get(SCOPE_KEY)
    if isinstance(chosen, str):
        return chosen
    chosen = accepted_request_id(_given(connection.scope))
    connection.scope[SCOPE_KEY] = chosen
    return chosen


def _given(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == _HEADER:
            return bytes(value)
    return None


class RequestIdMiddleware(HttpOnlyMiddleware):
    """Chooses each HTTP request's id before anything reads it, and echoes it in the response.

    A plain ASGI middleware (no ``BaseHTTPMiddleware``): it adds a dictionary lookup and one
    header to every request, the decision hot path included.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = accepted_request_id(_given(scope))
        scope[SCOPE_KEY] = request_id
        echoed = (_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER]
                message = {**message, "headers": [*headers, echoed]}
            await send(message)

        await self.app(scope, receive, send_with_id)
