"""What the runtime raises when the store is away or a committed write is not yet applied.

Its own module so that the key loaders, the runtime and ``api.problems`` (which answers both
with 503 and ``Retry-After``) share them without importing each other.
"""

from __future__ import annotations

__all__ = ["StoreUnavailable", "WriteNotApplied"]


class StoreUnavailable(Exception):
    """The event store cannot be reached (→ 503)."""


class WriteNotApplied(Exception):
    """The write committed but this process's index has not applied it in time (→ 503)."""

    def __init__(self, position: int) -> None:
        super().__init__(f"position {position} is committed but not yet applied here")
        self.position = position
