"""Tag commands: RAM's TagResources / UntagResources on users and roles.

Users are tagged through IMS (``ResourceType=user``) and roles through RAM
(``ResourceType=role``); both keep RAM's limits (``domain.common.tags``). A managed role (an
entrustment's) follows its contract and is refused like every other edit of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.common.tags import (
    MAX_ROLE_TAG_VALUE_CHARS,
    MAX_TAG_VALUE_CHARS,
    check_tag_keys,
    check_tags,
)
from mandate.domain.identity.principals import User
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import Written
from mandate.domain.sts.roles import Role

__all__ = ["MAX_RESOURCES_PER_CALL", "TagCommands"]

_KINDS = ("user", "role")
MAX_RESOURCES_PER_CALL = 50
"""RAM's TagResources / UntagResources take at most 50 resource names (``ResourceNames``)."""


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
        return self.tag_resources(account_id, kind, [name], tags)

    @command
    def untag_resource(
        self, account_id: str, kind: str, name: str, keys: Sequence[str] | None
    ) -> Written:
        """Remove the tags with ``keys`` from the user or role ``name`` (None: every tag)."""
        return self.untag_resources(account_id, kind, [name], keys)

    @command
    def tag_resources(
        self, account_id: str, kind: str, names: Sequence[str], tags: Mapping[str, str]
    ) -> Written:
        """``tag_resource`` on each of ``names`` (RAM's TagResources): all of them or none,
        in one save, so one that is missing or full refuses the whole call."""
        longest = MAX_ROLE_TAG_VALUE_CHARS if kind == "role" else MAX_TAG_VALUE_CHARS
        checked = check_tags("tags", tags, max_value_chars=longest)
        entities = [self._tagged(account_id, kind, name) for name in _names(names)]
        for entity in entities:
            entity.tag(checked)
        return Written(self._commit(*entities))

    @command
    def untag_resources(
        self, account_id: str, kind: str, names: Sequence[str], keys: Sequence[str] | None
    ) -> Written:
        """``untag_resource`` on each of ``names`` (RAM's UntagResources), all or none."""
        checked = None if keys is None else check_tag_keys("tag_keys", keys)
        entities = [self._tagged(account_id, kind, name) for name in _names(names)]
        for entity in entities:
            entity.untag(checked)
        return Written(self._commit(*entities))


def _names(names: Sequence[str]) -> list[str]:
    """1 to 50 distinct names (RAM's ``ResourceNames``), in the order given."""
    if isinstance(names, str) or not 1 <= len(names) <= MAX_RESOURCES_PER_CALL:
        raise InvalidInput(
            FieldError("resource_names", f"must name 1 to {MAX_RESOURCES_PER_CALL} resources"),
            code="InvalidParameter.ResourceNames",
        )
    return list(dict.fromkeys(names))
