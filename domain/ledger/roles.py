"""Role commands: create, update (trust included), delete, and revoke a role's sessions.

A role whose name is claimed by an entrustment is managed by that contract, and these
commands refuse it (``LedgerCore._live_role``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.common.instants import check_instant
from mandate.domain.common.tags import MAX_ROLE_TAG_VALUE_CHARS, check_tags
from mandate.domain.common.validation import check_entity_name, check_optional_text
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import Created, Written
from mandate.domain.sts.assume_role import check_trust_policy
from mandate.domain.sts.roles import DEFAULT_MAX_SESSION_DURATION, Role, check_max_session_duration

__all__ = ["RoleCommands"]


class RoleCommands(LedgerCore):
    """Roles: their trust policy, session duration and life, and revoking their sessions."""

    @command
    def create_role(
        self,
        account_id: str,
        role_name: str,
        assume_role_policy_document: str | Mapping[str, Any],
        *,
        max_session_duration: int | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Created:
        """RAM's CreateRole; ``tags`` (CreateRole's ``Tag``) are recorded in the same save."""
        check_entity_name("role_name", role_name)
        check_optional_text("description", description, 1024)
        checked = (
            None
            if tags is None
            else check_tags("tags", tags, max_value_chars=MAX_ROLE_TAG_VALUE_CHARS)
        )
        trust = check_trust_policy("assume_role_policy_document", assume_role_policy_document)
        duration = (
            DEFAULT_MAX_SESSION_DURATION
            if max_session_duration is None
            else check_max_session_duration("max_session_duration", max_session_duration)
        )
        self._open_account(account_id)
        role = Role(
            account_id=account_id,
            role_name=role_name,
            description=description,
            trust_policy=trust,
            max_session_duration=duration,
        )
        if checked:
            role.tag(checked)
        return self._create_named(account_id, "role", role_name, role)

    @command
    def update_role(
        self,
        account_id: str,
        role_name: str,
        *,
        description: str | None = None,
        max_session_duration: int | None = None,
        assume_role_policy_document: str | Mapping[str, Any] | None = None,
    ) -> Written:
        check_optional_text("description", description, 1024)
        if max_session_duration is not None:
            check_max_session_duration("max_session_duration", max_session_duration)
        trust = (
            None
            if assume_role_policy_document is None
            else check_trust_policy("assume_role_policy_document", assume_role_policy_document)
        )
        self._open_account(account_id)
        _, role = self._live_role(account_id, role_name)
        role.update(description=description, max_session_duration=max_session_duration)
        if trust is not None:
            role.set_trust_policy(trust, rebind=True)  # writing it binds names anew
        return Written(self._commit(role))

    @command
    def delete_role(
        self,
        account_id: str,
        role_name: str,
        *,
        detach: bool = False,
        require_detached: bool = False,
    ) -> Written:
        """Delete a role (``detach``: its policies go with it); ``require_detached``: RAM's
        DeleteRole, refused while it has policies (``DeleteConflict.Role.Policy``)."""
        self._open_account(account_id)
        claim, role = self._live_role(account_id, role_name)
        role.delete(detach=detach, require_detached=require_detached)
        claim.release()
        return Written(self._commit(role, claim))

    @command
    def revoke_role_sessions(
        self, account_id: str, role_name: str, issued_before: datetime | None = None
    ) -> Written:
        """Every session of the role issued before ``issued_before`` (≤ now) is dead."""
        now = datetime.now(UTC)
        horizon = now if issued_before is None else check_instant("issued_before", issued_before)
        if horizon > now:
            raise InvalidInput(
                FieldError("issued_before", "must not be in the future"),
                code="InvalidParameter.IssuedBefore",
            )
        self._open_account(account_id)
        _, role = self._live_role(account_id, role_name)
        role.revoke_sessions(horizon)
        return Written(self._commit(role))
