"""Tag commands: RAM's TagResources / UntagResources on users and roles.

Users are tagged through IMS (``ResourceType=user``) and roles through RAM
(``ResourceType=role``); both keep RAM's limits (``domain.common.tags``). A managed role (an
entrustment's) follows its contract and is refused like every other edit of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.common.tags import check_tag_keys, check_tags
from mandate.domain.identity.principals import User
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import Written
from mandate.domain.sts.roles import Role

__all__ = ["TagCommands"]

_KINDS = ("user", "role")


class TagCommands(LedgerCore):
    """Tags on users and roles."""

    def _tagged(self, account_id: str, kind: str, name: str) -> User | Role:
        if kind not in _KINDS:
            raise InvalidInput(
                FieldError("resource_type", "must be 'user' or 'role'"),
                code="InvalidParameter.ResourceType",
            )
        self._open_account(account_id)
        if kind == "user":
            return self._live(account_id, "user", name, User)[1]
        return self._live_role(account_id, name)[1]

    @command
    def tag_resource(
        self, account_id: str, kind: str, name: str, tags: Mapping[str, str]
    ) -> Written:
        """Add (or re-value) ``tags`` on the user or role ``name``; 20 at most per resource."""
        checked = check_tags("tags", tags)
        entity = self._tagged(account_id, kind, name)
        entity.tag(checked)
        return Written(self._commit(entity))

    @command
    def untag_resource(
        self, account_id: str, kind: str, name: str, keys: Sequence[str] | None
    ) -> Written:
        """Remove the tags with ``keys`` from the user or role ``name`` (None: every tag)."""
        checked = None if keys is None else check_tag_keys("tag_keys", keys)
        entity = self._tagged(account_id, kind, name)
        entity.untag(checked)
        return Written(self._commit(entity))
