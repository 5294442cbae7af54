"""The base of Mandate's plain ASGI middleware: HTTP requests are theirs, the rest passes.

Lifespan (and any other scope type) goes straight to the app, so each middleware writes only
what it does to an HTTP request, in ``handle``. Plain ASGI, not ``BaseHTTPMiddleware``: the
decision hot path pays one method call per middleware, no task or stream.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HttpOnlyMiddleware"]


class HttpOnlyMiddleware:
    """Passes non-HTTP scopes to ``app`` untouched and HTTP requests to ``handle``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (``scope["type"] == "http"``)."""
        raise NotImplementedError
