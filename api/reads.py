"""What the read endpoints share (users, groups, roles, policies, entrustments, audit, history).

RAM's Get/List calls are authorized like any management call except that the platform admin
may make them too; a listing is paged by ``cursor`` and a ``limit`` of 1 to 1000; a name that
holds nothing is RAM's ``EntityNotExist`` problem. Written once here, so the routers differ
only in what they read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query

from mandate.api.deps import Caller, authorize_management
from mandate.api.presenters import page
from mandate.api.runtime import Runtime
from mandate.domain.common.errors import NotFound

__all__ = ["Limit", "Paging", "PagingDep", "authorize_read", "existing"]

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=1000)]
"""How many items one page holds (RAM's MaxItems): 1 to 1000."""


class Paging:
    """A listing's ``?cursor=…&limit=…`` (a dependency: the same query parameters, in the same
    order, as when each listing declared them)."""

    def __init__(self, cursor: str | None = None, limit: Limit = 100) -> None:
        self.cursor = cursor
        self.limit = limit

    def page(
        self,
        items: Sequence[T],
        sort_key: Callable[[T], str],
        render: Callable[[T], dict[str, Any]],
    ) -> dict[str, Any]:
        """``{items, next_cursor}`` of ``items`` after the cursor, in ``sort_key`` order."""
        return page(items, sort_key, render, cursor=self.cursor, limit=self.limit)


PagingDep = Annotated[Paging, Depends()]


def authorize_read(
    runtime: Runtime, caller: Caller, account_id: str, action: str, resource: str | None = None
) -> None:
    """A Get/List call, which the platform admin may make too; a listing (no ``resource``)
    is asked about the account's every RAM entity, ``acs:ram::<account_id>:*``."""
    if resource is None:
        resource = f"acs:ram::{account_id}:*"
    authorize_management(runtime, caller, account_id, action, resource, admin_may=True)


def existing(found: T | None, what: str, code: str) -> T:
    """``found``, or RAM's 404 saying ``what`` (``user 'alice'``) does not exist."""
    if found is None:
        raise NotFound(f"{what} does not exist", code=code)
    return found
