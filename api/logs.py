"""Logs: one line per request and every ``mandate.*`` message, as JSON or as text.

``MANDATE_LOG_FORMAT=json`` (the default) writes one JSON object per line on stderr, which
log shippers parse without a grammar; ``text`` is for a terminal. A request's line carries its
id (the one echoed in ``X-Request-Id``), the caller's ARN once authenticated, the method, the
route *template* (``/v1/accounts/{account_id}/users``, never the raw path, which may carry
whatever a client typed), the status and the duration. No header, body, query or credential is
ever logged: the request id is safe by construction (``api.request_ids``), an ARN is not a
secret. ``MANDATE_LOG_REQUESTS=false`` turns the per-request lines off.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, Literal

__all__ = ["CALLER_KEY", "REQUESTS", "JsonFormatter", "configure_logging", "log_request"]

CALLER_KEY: Final = "mandate.caller"
"""Where authentication leaves the caller's ARN in the ASGI scope, for the request's line."""

REQUESTS: Final = logging.getLogger("mandate.requests")
_HANDLER_NAME: Final = "mandate"
_FIELDS: Final = ("request_id", "caller", "method", "route", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and a request's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at each record, never to a stream since replaced
    and closed (test runners and tools swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(log_format: Literal["json", "text"], *, requests: bool = True) -> None:
    """Send ``mandate.*`` records to stderr in ``log_format`` (idempotent: one handler)."""
    root = logging.getLogger("mandate")
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = _Stderr()
        handler.set_name(_HANDLER_NAME)
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else _TextFormatter())
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    REQUESTS.disabled = not requests


def log_request(
    request_id: str | None,
    caller: str | None,
    method: str,
    route: str,
    status: int,
    seconds: float,
) -> None:
    """The request's one line (the caller is None when it never authenticated)."""
    duration_ms = round(seconds * 1000, 3)
    REQUESTS.info(
        "%s %s %d %.3f ms",
        method,
        route,
        status,
        duration_ms,
        extra={
            "request_id": request_id,
            "caller": caller,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
        },
    )
