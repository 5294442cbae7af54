"""Policy commands: custom policies and their versions, and attaching/detaching policies.

A custom policy's name is held by a ``NameClaim``; an attachment lives on its holder (a
user, group or role), so deleting a policy asks the read port who holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mandate.domain.common.arns import PrincipalKind
from mandate.domain.common.errors import FieldError, InvalidInput, NotFound
from mandate.domain.common.validation import check_entity_name, check_optional_text
from mandate.domain.identity.principals import Group, User
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import Created, PolicyVersionCreated, Written
from mandate.domain.permissions.attachments import Attachment, PolicyType
from mandate.domain.permissions.managed_policies import ManagedPolicy
from mandate.domain.policy.system_policies import SYSTEM_POLICIES
from mandate.domain.sts.roles import Role

__all__ = ["PolicyCommands"]


def _unknown_policy_type() -> InvalidInput:
    """RAM's refusal of a policy type other than ``System`` or ``Custom``."""
    return InvalidInput(
        FieldError("policy_type", "must be 'System' or 'Custom'"),
        code="InvalidParameter.PolicyType",
    )


class PolicyCommands(LedgerCore):
    """Custom policies, their versions, and policies attached to users, groups and roles."""

    # -- custom policies -----------------------------------------------------------------
    @command
    def create_policy(
        self,
        account_id: str,
        policy_name: str,
        policy_document: str | Mapping[str, Any],
        description: str | None = None,
    ) -> Created:
        check_entity_name("policy_name", policy_name)
        check_optional_text("description", description, 1024)
        document = self._document(policy_document, "policy_document")
        self._open_account(account_id)
        policy = ManagedPolicy(
            account_id=account_id,
            policy_name=policy_name,
            description=description,
            document=document,
        )
        return self._create_named(account_id, "policy", policy_name, policy)

    @command
    def create_policy_version(
        self,
        account_id: str,
        policy_name: str,
        policy_document: str | Mapping[str, Any],
        *,
        set_as_default: bool = False,
        rotate: bool = False,
    ) -> PolicyVersionCreated:
        """A new version; ``rotate`` deletes the oldest non-default one at the limit instead
        of refusing (RAM's ``DeleteOldestNonDefaultVersionWhenLimitExceeded``)."""
        document = self._document(policy_document, "policy_document")
        self._open_account(account_id)
        _, policy = self._live(account_id, "policy", policy_name, ManagedPolicy)
        version_id = policy.create_version(document, set_as_default=set_as_default, rotate=rotate)
        return PolicyVersionCreated(version_id, self._commit(policy))

    @command
    def set_default_policy_version(
        self, account_id: str, policy_name: str, version_id: str
    ) -> Written:
        self._open_account(account_id)
        _, policy = self._live(account_id, "policy", policy_name, ManagedPolicy)
        policy.set_default_version(version_id)
        return Written(self._commit(policy))

    @command
    def delete_policy_version(self, account_id: str, policy_name: str, version_id: str) -> Written:
        self._open_account(account_id)
        _, policy = self._live(account_id, "policy", policy_name, ManagedPolicy)
        policy.delete_version(version_id)
        return Written(self._commit(policy))

    @command
    def delete_policy(
        self,
        account_id: str,
        policy_name: str,
        *,
        detach: bool = False,
        require_detached: bool = False,
    ) -> Written:
        """Delete a custom policy: ``detach`` detaches it from its holders in the same write,
        else it is refused while attached (/v1). ``require_detached`` is RAM's DeletePolicy
        without CascadingDelete, whatever ``detach`` says: refused while attached, naming the
        first kind holding it (a user, then a group, then a role), then while it has a
        version other than its default."""
        self._open_account(account_id)
        claim, policy = self._live(account_id, "policy", policy_name, ManagedPolicy)
        key = (PolicyType.CUSTOM.value, policy_name)
        holders: list[User | Group | Role] = []
        held_by: list[PrincipalKind] = []
        kinds: dict[PrincipalKind, type[User | Group | Role]] = {
            PrincipalKind.USER: User,
            PrincipalKind.GROUP: Group,
            PrincipalKind.ROLE: Role,
        }
        for kind, holder_id in self.read_port.policy_holders(policy.id):
            holder = self._get(holder_id, kinds[kind])
            attached = holder.attachments.get(key)
            if not holder.deleted and attached is not None and attached.policy_id == policy.id:
                holders.append(holder)
                held_by.append(kind)
        if detach and not require_detached:
            for holder in holders:
                holder.detach_policy(key)
            held_by = []
        policy.delete(holders=held_by, require_detached=require_detached)
        claim.release()
        return Written(self._commit(*holders, policy, claim))

    # -- attachments ---------------------------------------------------------------------
    def _principal(self, account_id: str, kind: PrincipalKind, name: str) -> User | Group | Role:
        # ``==``, not ``is``: a caller outside the typed code may still hand in the plain string
        if kind == PrincipalKind.USER:
            return self._live(account_id, "user", name, User)[1]
        if kind == PrincipalKind.GROUP:
            return self._live(account_id, "group", name, Group)[1]
        if kind == PrincipalKind.ROLE:
            return self._live_role(account_id, name)[1]
        raise InvalidInput(FieldError("principal_type", "must be 'users', 'groups' or 'roles'"))

    def _attachment(self, account_id: str, policy_type: str, policy_name: str) -> Attachment:
        if policy_type == PolicyType.SYSTEM:
            if policy_name not in SYSTEM_POLICIES:
                raise NotFound(
                    f"System policy {policy_name!r} does not exist",
                    code="EntityNotExist.Policy",
                )
            return Attachment(PolicyType.SYSTEM, policy_name, None)
        if policy_type == PolicyType.CUSTOM:
            _, policy = self._live(account_id, "policy", policy_name, ManagedPolicy)
            return Attachment(PolicyType.CUSTOM, policy_name, policy.id)
        raise _unknown_policy_type()

    @command
    def attach_policy(
        self,
        account_id: str,
        principal_kind: PrincipalKind,
        principal_name: str,
        policy_type: str,
        policy_name: str,
    ) -> Written:
        self._open_account(account_id)
        principal = self._principal(account_id, principal_kind, principal_name)
        principal.attach_policy(self._attachment(account_id, policy_type, policy_name))
        return Written(self._commit(principal))

    @command
    def detach_policy(
        self,
        account_id: str,
        principal_kind: PrincipalKind,
        principal_name: str,
        policy_type: str,
        policy_name: str,
    ) -> Written:
        if policy_type not in (PolicyType.SYSTEM, PolicyType.CUSTOM):
            raise _unknown_policy_type()
        self._open_account(account_id)
        principal = self._principal(account_id, principal_kind, principal_name)
        principal.detach_policy((policy_type, policy_name))
        return Written(self._commit(principal))
