"""Domain errors: what went wrong, in terms the API can map to a status code once.

The domain never knows about HTTP; the API layer maps each class below to a status
(``InvalidInput`` → 400, ``NotFound`` → 404, ``Conflict`` → 409, ...) in one place.
Guards raise these *before* an event is triggered, so a refused command records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Conflict",
    "DomainError",
    "FieldError",
    "InvalidInput",
    "LimitExceeded",
    "NotFound",
    "NotPermitted",
    "PreconditionFailed",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One fault in a request: where (a dotted/indexed path) and why."""

    field: str
    reason: str


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code: str | None = None

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    """The request itself is malformed; ``errors`` names each field and reason."""

    def __init__(
        self,
        errors: list[FieldError] | FieldError,
        *,
        code: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)
        summary = "; ".join(f"{e.field}: {e.reason}" for e in self.errors)
        super().__init__(detail or summary, code=code)

    def prefixed(self, prefix: str) -> InvalidInput:
        """The same faults with their paths placed under ``prefix`` (a request field)."""
        return InvalidInput(
            [
                FieldError(f"{prefix}.{e.field}" if e.field else prefix, e.reason)
                for e in self.errors
            ],
            code=self.code,
        )


class NotFound(DomainError):
    """The entity does not exist (inside the caller's own account)."""


class NotPermitted(DomainError):
    """The caller may not do this (→ 403); ``code`` is RAM's (``NoPermission``)."""

    code = "NoPermission"


class Conflict(DomainError):
    """The entity exists already, or changed under us."""


class PreconditionFailed(Conflict):
    """RAM's preconditions: e.g. a user with attachments is deleted only with detach."""


class LimitExceeded(Conflict):
    """A RAM quota: 2 keys per user, 10 groups per user, 5 policy versions, ..."""
