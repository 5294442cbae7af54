"""Input rules shared by every command (the API validates too; the domain never trusts it)."""

from __future__ import annotations

import re

from mandate.domain.common.errors import FieldError, InvalidInput

__all__ = ["ENTITY_NAME_PATTERN", "check_entity_name", "check_optional_text"]

ENTITY_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_ENTITY_NAME = re.compile(ENTITY_NAME_PATTERN)
# Bidirectional embedding, override and isolate controls: text people read later (a display
# name in an access review, a description in an export) could show other than it is stored
# ("Trojan Source"); no name or description needs them.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def check_entity_name(field: str, value: str) -> None:
    if not isinstance(value, str) or not _ENTITY_NAME.fullmatch(value):
        raise InvalidInput(
            FieldError(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'"),
            code=f"InvalidParameter.{field.title().replace('_', '')}",
        )


def check_optional_text(field: str, value: str | None, max_chars: int) -> None:
    if value is not None and len(value) > max_chars:
        raise InvalidInput(FieldError(field, f"must be at most {max_chars} characters"))
    if value is not None and "\x00" in value:  # PostgreSQL's text cannot hold it
        raise InvalidInput(FieldError(field, "must not contain NUL characters"))
    if value is not None and _BIDI_CONTROLS.search(value):
        raise InvalidInput(
            FieldError(
                field, "must not contain bidirectional control characters (U+202A-E, U+2066-9)"
            )
        )
