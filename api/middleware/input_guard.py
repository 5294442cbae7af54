"""Input no route should ever see: refused with 400 before FastAPI parses anything.

Every request's path, query and ``Min-Position`` header, and every request body, pass one
check here, so that no endpoint family can forget it:

* a NUL character anywhere in the path, a query parameter or a JSON string: PostgreSQL's
  ``text`` cannot hold it (the driver raises), and a read model that met one in an event
  would stall;
* a body that is not UTF-8, or whose strings hold a lone surrogate (``"\\ud800"``), which no
  store can encode;
* a body nested more than ``MAX_DEPTH`` levels: Python's parser recurses, and the deepest
  legitimate body (a policy document with conditions) is about six levels;
* a ``Min-Position`` that is not a non-negative integer.

Each refusal is the usual 400 ``application/problem+json`` with ``errors: [{field, reason}]``.
It costs two ``bytes.count`` calls per body in the common case; bodies with more brackets, or
with ``\\u`` escapes, are looked at more closely. A plain ASGI middleware, so that the
decision hot path pays no ``BaseHTTPMiddleware`` overhead.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope, Send

from mandate.api.middleware.http_only import HttpOnlyMiddleware
from mandate.api.problems import problem
from mandate.domain.common.errors import FieldError

__all__ = ["MAX_DEPTH", "InputGuardMiddleware", "body_fault", "target_fault"]

MAX_DEPTH: Final = 32
_NUL = "must not contain NUL characters"
_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET: Final = re.compile(rb"[\[\]{}]")
_POSITION: Final = re.compile(r"[0-9]{1,18}")
_NO_BODY: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def target_fault(scope: Scope) -> FieldError | None:
    """A NUL in the path or a query parameter, or a malformed ``Min-Position``."""
    if "\x00" in scope.get("path", ""):
        return FieldError("path", _NUL)
    raw = scope.get("query_string", b"")
    if raw:
        query = raw.decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
            if "\x00" in name or "\x00" in value:
                return FieldError(name.replace("\x00", "") or "query", _NUL)
    for name, value in scope.get("headers", ()):
        if name == b"min-position":
            text = value.decode("latin-1").strip()
            if not _POSITION.fullmatch(text):
                return FieldError("Min-Position", "must be a non-negative integer ledger position")
    return None


def body_fault(body: bytes) -> FieldError | None:
    """Why ``body`` cannot be a request body, or ``None`` (then the route's parser decides)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return FieldError("body", f"is not valid UTF-8 (byte {bad.start})")
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _depth(body) > MAX_DEPTH:
        return FieldError("body", f"is nested more than {MAX_DEPTH} levels deep")
    if b"\\u" in body or b"\x00" in body:
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return None  # not JSON: the route's parser names the fault
        return _string_fault(value, "")
    return None


def _depth(body: bytes) -> int:
    """The deepest nesting of brackets outside JSON strings."""
    deepest = depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', body)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _string_fault(value: Any, path: str) -> FieldError | None:
    """The first string (or key) holding a NUL or a lone surrogate, named by its path."""
    if isinstance(value, str):
        return _text_fault(value, path or "body")
    if isinstance(value, list):
        for index, item in enumerate(value):
            if fault := _string_fault(item, f"{path}[{index}]"):
                return fault
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if fault := _text_fault(key, where) or _string_fault(item, where):
                return fault
    return None


def _text_fault(text: str, path: str) -> FieldError | None:
    if "\x00" in text:
        return FieldError(path.replace("\x00", ""), _NUL)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        where = path.encode("utf-8", "replace").decode()
        return FieldError(where, "must not hold a lone surrogate")
    return None


class InputGuardMiddleware(HttpOnlyMiddleware):
    """Refuses what ``target_fault`` and ``body_fault`` find; replays the body otherwise."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = target_fault(scope)
        if fault is None and scope.get("method") not in _NO_BODY:
            body, more = await _read_body(receive)
            fault = body_fault(body)
            receive = _replay(body, more, receive)
        if fault is None:
            await self.app(scope, receive, send)
            return
        response = problem(
            400,
            "Invalid input",
            f"{fault.field}: {fault.reason}",
            errors=[{"field": fault.field, "reason": fault.reason}],
        )
        await response(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body, and any other message met on the way (a disconnect)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replay(body: bytes, more: list[Message], receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *more]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
