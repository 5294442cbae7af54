"""The audit console: a web page served at ``/console/`` from the API's own process.

The page is static files in ``static/`` (plain ES modules, a stylesheet, Cytoscape.js vendored;
no build step, no CDN) that speak to the same ``/v1`` HTTP API as every other client, signing
each request with ACS3-HMAC-SHA256 in the browser: the server holds no session, and nothing here
reads the ledger. So this module only serves files, with headers that keep the page to its own
origin: a Content-Security-Policy of ``'self'`` (no inline script or style, no other host), no
framing, no referrer (a URL never carries a secret, but an audit query is nobody's business),
and ``no-store`` for the HTML so a shared machine's cache keeps nothing of a session.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "install_console"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Shipped in the wheel (pyproject's package-data), so an installed ``mandate serve`` has it."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""Only this origin: a script injected through a rendered name or statement would not run, and
the page cannot send anything to another host."""

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class ConsoleFiles(StaticFiles):
    """``StaticFiles`` whose every answer (404s included) carries the console's headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as refused:  # 404, 405: a plain answer, with the same headers
            response = PlainTextResponse(refused.detail, refused.status_code, refused.headers)
        response.headers.update(_HEADERS)
        # the page itself is never cached (it is small); its scripts may be revalidated
        is_page = path in ("", ".", "index.html") or path.endswith(".html")
        response.headers["Cache-Control"] = "no-store" if is_page else "no-cache"
        return response


def install_console(app: FastAPI) -> None:
    """Serve the console at ``/console/`` (and send ``/console`` there); not in OpenAPI."""

    async def to_console() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=308)

    app.add_api_route("/console", to_console, methods=["GET"], include_in_schema=False)
    app.mount("/console", ConsoleFiles(directory=STATIC_DIR, html=True), name="console")
