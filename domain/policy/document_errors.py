"""pydantic's validation errors as faults at JSON paths into the policy document as written.

A private helper of ``domain.policy.document``, kept apart so that the policy language (its element
rules, models and parsing) reads on its own (STYLE: small modules). ``field_errors`` turns a
``ValidationError`` into ``FieldError``s whose paths are zero-based and follow the document
the client sent (``Statement[1].Action``), with RAM-worded reasons for the common faults;
``join_path`` places a relative path under a prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from mandate.domain.common.errors import FieldError

__all__ = ["field_errors", "join_path"]

_REASONS: Final = {
    "missing": "is required",
    "extra_forbidden": "is not a key this object may have",
    "too_short": "must not be empty",
    "string_type": "must be a string",
    "tuple_type": "must be a string or a list of strings",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "enum": 'must be "Allow" or "Deny"',
    "literal_error": 'must be "1"',
}


def field_errors(invalid: ValidationError, raw: object, prefix: str) -> list[FieldError]:
    """Each of pydantic's errors as a fault at its path in ``raw``, placed under ``prefix``."""
    return [
        FieldError(join_path(prefix, _json_path(error["loc"], raw)), _reason(error))
        for error in invalid.errors()
    ]


def _reason(error: ErrorDetails) -> str:
    reason = _REASONS.get(error["type"])
    if reason is not None:
        return reason
    message = error["msg"]
    return message[:1].lower() + message[1:]


def _json_path(loc: Sequence[int | str], raw: object) -> str:
    """pydantic's ``loc`` as a path into the document *as written*.

    Walking the raw document drops what pydantic adds of its own: the index of a single
    string that stood for a list (``Action[0]`` for ``"Action": "oss"`` is just ``Action``)
    and the names of validators or union members.
    """
    path = ""
    current: object = raw
    for part in loc:
        if isinstance(part, int):
            if isinstance(current, list):
                path += f"[{part}]"
                current = current[part] if 0 <= part < len(current) else None
        elif isinstance(current, Mapping):
            path = join_path(path, part)
            if part not in current:  # a missing key: nothing further down
                break
            current = current[part]
    return path


def join_path(prefix: str, path: str) -> str:
    """``path`` under ``prefix``: ``a`` + ``b`` is ``a.b``, ``a`` + ``[1]`` is ``a[1]``."""
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"
