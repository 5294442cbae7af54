"""Logs: one line per request and every ``mandate.*`` message, as JSON or as text.

``MANDATE_LOG_FORMAT=json`` (the default) writes one JSON object per line on stderr, which
log shippers parse without a grammar; ``text`` is for a terminal. A request's line carries its
id (the one echoed in ``X-Request-Id``), the caller's ARN once authenticated, the method, the
route *template* (``/v1/accounts/{account_id}/users``, never the raw path, which may carry
whatever a client typed), the status and the duration. No header, body, query or credential is
ever logged: the request id is safe by construction (``api.middleware.request_ids``), an ARN
is not a secret. ``MANDATE_LOG_REQUESTS=false`` turns the per-request lines off.

A request's line is handed to a background thread (one queue put, about a microsecond) which
makes the record and runs the handlers: formatting and writing a line costs ~50 µs, which the
event loop serving ``/v1/authorize`` should not wait for. ``flush_request_lines`` waits until
every line handed over so far has been written (tests and shutdown).
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from typing import Any, Final, Literal, NamedTuple

__all__ = [
    "CALLER_KEY",
    "REQUESTS",
    "JsonFormatter",
    "configure_logging",
    "flush_request_lines",
    "log_request",
]

CALLER_KEY: Final = "mandate.caller"
"""Where authentication leaves the caller's ARN in the ASGI scope, for the request's line."""

REQUESTS: Final = logging.getLogger("mandate.requests")
_HANDLER_NAME: Final = "mandate"
_FIELDS: Final = ("request_id", "caller", "method", "route", "status", "duration_ms")
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, default=str)


def _utc_stamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds; the seconds part is formatted once per second."""
    global _last_second
    whole = int(created)
    second, text = _last_second  # one tuple, replaced whole: safe from any thread
    if second != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second = (whole, text)
    return f"{text}.{int((created - whole) * 1000):03d}+00:00"


_last_second: tuple[int, str] = (-1, "")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and a request's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": _utc_stamp(record.created),
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
        return _ENCODER.encode(line)


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


class _Line(NamedTuple):
    """One request's line as handed to the writer: the request's own time and its fields."""

    created: float
    request_id: str | None
    caller: str | None
    method: str
    route: str
    status: int
    seconds: float


_pending: queue.SimpleQueue[_Line | threading.Event] = queue.SimpleQueue()
_writer: list[threading.Thread] = []
_writer_lock = threading.Lock()


def log_request(
    request_id: str | None,
    caller: str | None,
    method: str,
    route: str,
    status: int,
    seconds: float,
) -> None:
    """The request's one line (the caller is None when it never authenticated), written by
    the background writer."""
    if not _writer:
        _start_writer()
    _pending.put(_Line(time.time(), request_id, caller, method, route, status, seconds))


def flush_request_lines(timeout: float = 5.0) -> bool:
    """Wait until every line handed over before this call has been written."""
    if not _writer:
        return True
    done = threading.Event()
    _pending.put(done)
    return done.wait(timeout)


def _start_writer() -> None:
    with _writer_lock:
        if not _writer:
            thread = threading.Thread(target=_write_lines, name="mandate-request-log", daemon=True)
            thread.start()
            _writer.append(thread)


def _write_lines() -> None:
    while True:
        item = _pending.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        try:
            _write_line(item)
        except Exception:  # a log line must never kill the writer
            logging.getLogger("mandate").exception("a request's log line could not be written")


def _write_line(line: _Line) -> None:
    if REQUESTS.disabled or not REQUESTS.isEnabledFor(logging.INFO):
        return
    duration_ms = round(line.seconds * 1000, 3)
    record = REQUESTS.makeRecord(
        REQUESTS.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %d %.3f ms",
        (line.method, line.route, line.status, duration_ms),
        None,
        # every field of the line by name; duration_ms, the one it lacks, from above
        extra={field: getattr(line, field, duration_ms) for field in _FIELDS},
    )
    record.created = line.created
    record.msecs = (line.created - int(line.created)) * 1000
    REQUESTS.handle(record)
