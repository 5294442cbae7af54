"""Contract commands: entrustments (account A → account B) and delegations (B → its users
and groups), the scope each grants, and their amendment, revocation and end.

An entrustment claims a role name in A's roles (a managed role the role commands refuse);
a scope given as ``{"policies": [names]}`` is snapshotted when the contract is signed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import UUID

from mandate.domain.common.arns import PrincipalKind, parse_principal_arn
from mandate.domain.common.errors import Conflict, FieldError, InvalidInput, NotFound
from mandate.domain.common.instants import check_instant
from mandate.domain.common.validation import check_entity_name, check_optional_text
from mandate.domain.contracts.entrustments import (
    Delegation,
    Entrustment,
    merged_scope,
    scope_warnings,
)
from mandate.domain.identity.principals import Group, User
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import GrantedDelegation, GrantedEntrustment, Written
from mandate.domain.policy.document import parse_policy_document

__all__ = ["ContractCommands"]


class ContractCommands(LedgerCore):
    """Entrustments between accounts and the delegations a trustee makes under them."""

    def _scope(self, account_id: str, raw: object, field: str) -> tuple[str, list[str] | None]:
        """A scope: a policy document, or ``{"policies": [names of the account's custom
        policies]}`` snapshotted now (a later version never widens a signed contract)."""
        if isinstance(raw, Mapping) and set(raw) == {"policies"}:
            names = raw["policies"]
            if (
                not isinstance(names, list)
                or not names
                or not all(isinstance(n, str) for n in names)
            ):
                raise InvalidInput(
                    FieldError(f"{field}.policies", "must be a non-empty list of policy names")
                )
            documents = []
            for i, name in enumerate(names):
                text = self.read_port.policy_document(account_id, name)
                if text is None:
                    raise InvalidInput(
                        FieldError(f"{field}.policies[{i}]", f"no custom policy {name!r}"),
                        code="EntityNotExist.Policy",
                    )
                documents.append(parse_policy_document(text))
            return merged_scope(documents), list(names)
        if not isinstance(raw, str | Mapping):
            raise InvalidInput(
                FieldError(field, 'must be a policy document or {"policies": [names]}')
            )
        return self._document(raw, field), None

    @staticmethod
    def _instant(field: str, value: datetime | None) -> datetime | None:
        return check_instant(field, value) if value is not None else None

    def _entrustment(self, account_id: str, entrustment_id: UUID) -> Entrustment:
        self._open_account(account_id)
        entrustment = self._get(entrustment_id, Entrustment)
        if entrustment.account_id != account_id:
            raise NotFound(
                f"entrustment {entrustment_id} does not exist", code="EntityNotExist.Entrustment"
            )
        return entrustment

    # -- entrustments (A → B) ------------------------------------------------------------
    @command
    def grant_entrustment(
        self,
        account_id: str,
        *,
        trustee_account_id: str,
        scope: object,
        contract_ref: str,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        description: str | None = None,
        role_name: str | None = None,
    ) -> GrantedEntrustment:
        """``EntrustmentGranted``, and the managed role's name claimed in A's roles."""
        if not isinstance(contract_ref, str) or not 1 <= len(contract_ref.strip()) <= 128:
            raise InvalidInput(FieldError("contract_ref", "must be 1 to 128 characters"))
        check_optional_text("description", description, 1024)
        if trustee_account_id == account_id:
            raise InvalidInput(FieldError("trustee_account_id", "an account cannot entrust itself"))
        starts = self._instant("starts_at", starts_at)
        ends = self._instant("ends_at", ends_at)
        now = datetime.now(UTC)
        if ends is not None and (ends <= now or (starts is not None and ends <= starts)):
            raise InvalidInput(FieldError("ends_at", "must be after now and after starts_at"))
        name = role_name or re.sub(r"[^A-Za-z0-9._-]", "-", contract_ref.strip())[:64]
        check_entity_name("role_name", name)
        document, policies = self._scope(account_id, scope, "scope")
        self._open_account(account_id)
        try:
            self._open_account(trustee_account_id)
        except (NotFound, Conflict):  # unknown or closed: the same answer, no leak
            raise InvalidInput(
                FieldError("trustee_account_id", "no open account has this id"),
                code="EntityNotExist.Account",
            ) from None
        entrustment = Entrustment(
            account_id=account_id,
            trustee_account_id=trustee_account_id,
            role_name=name,
            scope=document,
            scope_policies=policies,
            contract_ref=contract_ref.strip(),
            starts_at=starts,
            ends_at=ends,
            description=description,
        )
        claim = self._new_claim(account_id, "role", name, entrustment.id)
        return GrantedEntrustment(entrustment.id, name, self._commit(claim, entrustment))

    @command
    def amend_entrustment(self, account_id: str, entrustment_id: UUID, scope: object) -> Written:
        document, policies = self._scope(account_id, scope, "scope")
        entrustment = self._entrustment(account_id, entrustment_id)
        entrustment.amend(document, policies, datetime.now(UTC))
        return Written(self._commit(entrustment))

    @command
    def revoke_entrustment(self, account_id: str, entrustment_id: UUID) -> Written:
        """One event; every delegation and session under the contract is dead from it."""
        entrustment = self._entrustment(account_id, entrustment_id)
        entrustment.revoke(datetime.now(UTC))
        return Written(self._commit(entrustment))

    @command
    def end_entrustment(self, entrustment_id: UUID) -> Written | None:
        """``EntrustmentEnded`` once its term is reached; None when there is nothing to record."""
        entrustment = self._get(entrustment_id, Entrustment)
        if not entrustment.end(datetime.now(UTC)):
            return None
        return Written(self._commit(entrustment))

    # -- delegations (B → its users and groups) ------------------------------------------
    @command
    def grant_delegation(
        self,
        account_id: str,
        *,
        delegation_id: UUID,
        entrustment_id: UUID,
        grantee: str,
        scope: object,
        ends_at: datetime | None = None,
    ) -> GrantedDelegation:
        """B lets one of its users or groups act under an entrustment it received."""
        try:
            parsed = parse_principal_arn(grantee) if isinstance(grantee, str) else None
        except InvalidInput:
            parsed = None
        if parsed is None or parsed.kind not in (PrincipalKind.USER, PrincipalKind.GROUP):
            raise InvalidInput(FieldError("grantee", "must be the ARN of a user or a group"))
        if parsed.account_id != account_id:
            raise InvalidInput(FieldError("grantee", f"must be a user or group of {account_id}"))
        ends = self._instant("ends_at", ends_at)
        if ends is not None and ends <= datetime.now(UTC):
            raise InvalidInput(FieldError("ends_at", "must be in the future"))
        document = self._document(scope if isinstance(scope, str | Mapping) else "", "scope")
        self._open_account(account_id)
        try:
            entrustment: Entrustment | None = self._get(entrustment_id, Entrustment)
        except NotFound:
            entrustment = None
        if entrustment is None or entrustment.trustee_account_id != account_id:
            raise NotFound(
                f"account {account_id} received no entrustment {entrustment_id}",
                code="EntityNotExist.Entrustment",
            )
        entrustment._require_open(datetime.now(UTC), "delegated")
        kind = parsed.kind
        _, holder = self._live(
            account_id, kind, parsed.name or "", User if kind is PrincipalKind.USER else Group
        )
        delegation = Delegation(
            delegation_id=delegation_id,
            account_id=account_id,
            entrustment_id=entrustment.id,
            entrustment_account_id=entrustment.account_id,
            grantee_arn=parsed.arn,
            grantee_kind=kind,
            grantee_id=holder.id,
            scope=document,
            ends_at=ends,
        )
        warnings = scope_warnings(
            parse_policy_document(document), parse_policy_document(entrustment.scope)
        )
        return GrantedDelegation(delegation.id, tuple(warnings), self._commit(delegation))

    @command
    def revoke_delegation(self, account_id: str, delegation_id: UUID) -> Written:
        try:
            delegation: Delegation | None = self._get(delegation_id, Delegation)
        except NotFound:
            delegation = None
        if delegation is None or delegation.account_id != account_id:
            raise NotFound(
                f"delegation {delegation_id} does not exist",
                code="EntityNotExist.Delegation",
            )
        delegation.revoke(datetime.now(UTC))
        return Written(self._commit(delegation))
