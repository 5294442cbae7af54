"""The ledger: one eventsourcing ``Application``, one log, one position, one audit order.

Each command loads what it needs, asks one aggregate (or a few) to change — their guards
raise before any event exists, so a refused command writes nothing — and saves everything
that must commit together in one transaction, whose last notification id is the
ledger position handed back to the client. Commands that save at the same moment share
that transaction (``domain.ledger.group_commit``); each still hears only its own outcome.

Concurrency: saves are optimistic. When another writer extended one of our aggregates
first, the save fails with an ``IntegrityError`` and the whole command is re-run against
the new state (guards included), a few times, before answering ``Conflict``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording

from domain.common.arns import assumed_role_arn, parse_principal_arn
from domain.common.errors import Conflict, FieldError, InvalidInput, NotFound
from domain.common.identifiers import account_aggregate_id, name_claim_id, new_account_id
from domain.common.instants import check_instant
from domain.common.validation import check_entity_name, check_optional_text
from domain.contracts.entrustments import (
    Delegation,
    Entrustment,
    ScopeWarning,
    merged_scope,
    scope_warnings,
)
from domain.identity.accounts import Account
from domain.identity.name_claims import NameClaim
from domain.identity.principals import AccessKeyStatus, Group, User
from domain.identity.secrets import SecretHasher, new_access_key_id, new_access_key_secret
from domain.ledger.group_commit import GroupCommitter
from domain.ledger.ports import ReadPort
from domain.permissions.attachments import Attachment, PolicyType
from domain.permissions.managed_policies import ManagedPolicy
from domain.policy.document import parse_policy_document
from domain.policy.system_policies import SYSTEM_POLICIES
from domain.sts.assume_role import (
    AssumingCaller,
    RoleFacts,
    check_parameters,
    check_trust_policy,
    plan_session,
)
from domain.sts.roles import DEFAULT_MAX_SESSION_DURATION, Role, check_max_session_duration
from domain.sts.session_tokens import SessionTokenSigner
from domain.sts.sessions import Session, session_aggregate_id

__all__ = ["APPLICATION_NAME", "IssuedKey", "IssuedSession", "Ledger", "OpenedAccount"]

APPLICATION_NAME = "mandate"
_COMMAND_ATTEMPTS = 4
T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly made AccessKey: the only moment its secret exists outside its holder."""

    access_key_id: str
    access_key_secret: str
    position: int


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """Temporary credentials from AssumeRole: the only moment their secret exists here."""

    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: datetime
    arn: str
    assumed_role_id: str
    position: int


@dataclass(frozen=True, slots=True)
class OpenedAccount:
    account_id: str
    root_key: IssuedKey


class _NoReadPort:
    def group_member_ids(self, group_id: UUID) -> list[UUID]:
        return []

    def policy_holders(self, policy_id: UUID) -> list[tuple[str, UUID]]:
        return []

    def role_facts(self, account_id: str, role_name: str) -> RoleFacts | None:
        return None

    def policy_document(self, account_id: str, policy_name: str) -> str | None:
        return None


class Ledger(Application[UUID]):
    """Commands of accounts, users, keys, groups, policies and attachments."""

    name = APPLICATION_NAME
    is_snapshotting_enabled = False
    # Commands read aggregates from a cache, fast-forwarded from the log on every read (one
    # query for the events after the cached version) and deep-copied for the command, so a
    # write costs the same on an aggregate of 2 events or 2,000 and a refused command never
    # touches the cached copy. Correct across processes: a stale copy is brought up to date
    # from the log, and a save racing another writer still raises IntegrityError, which
    # ``_command`` answers by deciding again. The process environment may override these.
    env: ClassVar[dict[str, str]] = {
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        hasher: SecretHasher,
        read_port: ReadPort | None = None,
        token_signer: SessionTokenSigner | None = None,
    ) -> None:
        super().__init__(env)
        self._group: GroupCommitter[ProcessingEvent[UUID], Recording[UUID]] = GroupCommitter(
            self._record, self._merged, lambda batch: len(batch.events)
        )
        self.hasher = hasher
        self.token_signer = token_signer
        self.read_port: ReadPort = read_port or _NoReadPort()

    # -- plumbing ------------------------------------------------------------------------
    def _command(self, run: Callable[[], T]) -> T:
        for _ in range(_COMMAND_ATTEMPTS - 1):
            try:
                return run()
            except IntegrityError:
                continue  # someone extended one of our aggregates first: decide again
        try:
            return run()
        except IntegrityError:
            raise Conflict(
                "the entity was changed concurrently; retry the request",
                code="ConcurrentModification",
            ) from None

    def _commit(self, *aggregates: Aggregate) -> int:
        """Save what one command changed — with other commands' changes when they queue up
        (``GroupCommitter``) — and answer the position of its own last event."""
        batch: ProcessingEvent[UUID] = ProcessingEvent()
        batch.collect_events(*aggregates)
        if not batch.events:
            return self.recorder.max_notification_id() or 0
        recordings = self._group.commit(batch)
        self._take_snapshots(batch)
        self._notify(recordings)
        return int(recordings[-1].notification.id)

    @staticmethod
    def _merged(batches: list[ProcessingEvent[UUID]]) -> ProcessingEvent[UUID]:
        merged: ProcessingEvent[UUID] = ProcessingEvent()
        for batch in batches:
            merged.events.extend(batch.events)
            merged.aggregates.update(batch.aggregates)
        return merged

    def _get(self, aggregate_id: UUID, kind: type[A]) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{kind.__name__} not found") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"{kind.__name__} not found")
        return aggregate

    def _open_account(self, account_id: str) -> Account:
        try:
            account: Aggregate = self.repository.get(account_aggregate_id(account_id))
        except AggregateNotFoundError:
            raise NotFound(
                f"account {account_id} does not exist", code="EntityNotExist.Account"
            ) from None
        assert isinstance(account, Account)
        account.require_open()
        return account

    def _claim(self, account_id: str, kind: str, name: str) -> NameClaim | None:
        try:
            claim: Aggregate = self.repository.get(name_claim_id(account_id, kind, name))
        except AggregateNotFoundError:
            return None
        assert isinstance(claim, NameClaim)
        return claim

    def _live(self, account_id: str, kind: str, name: str, entity: type[A]) -> tuple[NameClaim, A]:
        claim = self._claim(account_id, kind, name)
        if claim is None or claim.entity_id is None:
            raise NotFound(
                f"{kind} {name!r} does not exist", code=f"EntityNotExist.{kind.capitalize()}"
            )
        return claim, self._get(claim.entity_id, entity)

    def _new_claim(self, account_id: str, kind: str, name: str, entity_id: UUID) -> NameClaim:
        claim = self._claim(account_id, kind, name)
        if claim is None:
            return NameClaim(account_id=account_id, kind=kind, name=name, entity_id=entity_id)
        claim.claim_again(entity_id)
        return claim

    def _issue_key(self, prefix: str = "LTAI") -> tuple[str, str, str]:
        key_id = new_access_key_id(prefix)
        secret = new_access_key_secret()
        return key_id, secret, self.hasher.hash(secret)

    # -- accounts ------------------------------------------------------------------------
    def open_account(self, name: str) -> OpenedAccount:
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 128:
            raise InvalidInput(FieldError("name", "must be 1 to 128 characters"))

        def run() -> OpenedAccount:
            account_id = new_account_id()
            key_id, secret, secret_hash = self._issue_key()
            account = Account(
                account_id=account_id,
                name=name.strip(),
                root_access_key_id=key_id,
                root_secret_hash=secret_hash,
            )
            position = self._commit(account)
            return OpenedAccount(account_id, IssuedKey(key_id, secret, position))

        # A clash of random account ids is an IntegrityError too: a new id is drawn.
        return self._command(run)

    def close_account(self, account_id: str) -> int:
        def run() -> int:
            account = self._open_account(account_id)
            account.close()
            return self._commit(account)

        return self._command(run)

    def rotate_root_access_key(self, account_id: str) -> IssuedKey:
        def run() -> IssuedKey:
            account = self._open_account(account_id)
            key_id, secret, secret_hash = self._issue_key()
            account.rotate_root_access_key(key_id, secret_hash)
            return IssuedKey(key_id, secret, self._commit(account))

        return self._command(run)

    # -- users ---------------------------------------------------------------------------
    def create_user(self, account_id: str, user_name: str, display_name: str | None) -> int:
        check_entity_name("user_name", user_name)
        check_optional_text("display_name", display_name, 128)

        def run() -> int:
            self._open_account(account_id)
            user = User(account_id=account_id, user_name=user_name, display_name=display_name)
            claim = self._new_claim(account_id, "user", user_name, user.id)
            return self._commit(claim, user)

        return self._command(run)

    def update_user(
        self,
        account_id: str,
        user_name: str,
        *,
        new_user_name: str | None,
        new_display_name: str | None,
    ) -> int:
        if new_user_name is not None:
            check_entity_name("new_user_name", new_user_name)
        check_optional_text("new_display_name", new_display_name, 128)

        def run() -> int:
            self._open_account(account_id)
            claim, user = self._live(account_id, "user", user_name, User)
            changed: list[Aggregate] = [user]
            if new_user_name is not None and new_user_name != user_name:
                claim.release()
                changed += [claim, self._new_claim(account_id, "user", new_user_name, user.id)]
            user.update(new_user_name=new_user_name, new_display_name=new_display_name)
            return self._commit(*changed)

        return self._command(run)

    def delete_user(self, account_id: str, user_name: str, *, detach: bool = False) -> int:
        def run() -> int:
            self._open_account(account_id)
            claim, user = self._live(account_id, "user", user_name, User)
            user.delete(detach=detach)
            claim.release()
            return self._commit(user, claim)

        return self._command(run)

    # -- access keys ---------------------------------------------------------------------
    def create_access_key(self, account_id: str, user_name: str) -> IssuedKey:
        def run() -> IssuedKey:
            self._open_account(account_id)
            _, user = self._live(account_id, "user", user_name, User)
            key_id, secret, secret_hash = self._issue_key()
            user.create_access_key(key_id, secret_hash)
            return IssuedKey(key_id, secret, self._commit(user))

        return self._command(run)

    def set_access_key_status(
        self, account_id: str, user_name: str, access_key_id: str, status: str
    ) -> int:
        try:
            wanted = AccessKeyStatus(status)
        except ValueError:
            raise InvalidInput(
                FieldError("status", "must be 'Active' or 'Inactive'"),
                code="InvalidParameter.Status",
            ) from None

        def run() -> int:
            self._open_account(account_id)
            _, user = self._live(account_id, "user", user_name, User)
            user.set_access_key_status(access_key_id, wanted)
            return self._commit(user)

        return self._command(run)

    def delete_access_key(self, account_id: str, user_name: str, access_key_id: str) -> int:
        def run() -> int:
            self._open_account(account_id)
            _, user = self._live(account_id, "user", user_name, User)
            user.delete_access_key(access_key_id)
            return self._commit(user)

        return self._command(run)

    # -- groups --------------------------------------------------------------------------
    def create_group(self, account_id: str, group_name: str, comments: str | None = None) -> int:
        check_entity_name("group_name", group_name)
        check_optional_text("comments", comments, 128)

        def run() -> int:
            self._open_account(account_id)
            group = Group(account_id=account_id, group_name=group_name, comments=comments)
            claim = self._new_claim(account_id, "group", group_name, group.id)
            return self._commit(claim, group)

        return self._command(run)

    def delete_group(self, account_id: str, group_name: str, *, detach: bool = False) -> int:
        def run() -> int:
            self._open_account(account_id)
            claim, group = self._live(account_id, "group", group_name, Group)
            members = [
                self._get(user_id, User) for user_id in self.read_port.group_member_ids(group.id)
            ]
            members = [m for m in members if not m.deleted and group.id in m.groups]
            group.delete(member_count=len(members), detach=detach)
            for member in members:
                member.remove_from_group(group.id)
            claim.release()
            return self._commit(*members, group, claim)

        return self._command(run)

    def add_user_to_group(self, account_id: str, group_name: str, user_name: str) -> int:
        def run() -> int:
            self._open_account(account_id)
            _, group = self._live(account_id, "group", group_name, Group)
            _, user = self._live(account_id, "user", user_name, User)
            user.add_to_group(group.id, group.group_name)
            return self._commit(user)

        return self._command(run)

    def remove_user_from_group(self, account_id: str, group_name: str, user_name: str) -> int:
        def run() -> int:
            self._open_account(account_id)
            _, group = self._live(account_id, "group", group_name, Group)
            _, user = self._live(account_id, "user", user_name, User)
            user.remove_from_group(group.id)
            return self._commit(user)

        return self._command(run)

    # -- custom policies -----------------------------------------------------------------
    @staticmethod
    def _document(raw: str | Mapping[str, Any], field: str) -> str:
        try:
            return parse_policy_document(raw).canonical_json()
        except InvalidInput as error:
            raise error.prefixed(field) from None

    def create_policy(
        self,
        account_id: str,
        policy_name: str,
        policy_document: str | Mapping[str, Any],
        description: str | None = None,
    ) -> int:
        check_entity_name("policy_name", policy_name)
        check_optional_text("description", description, 1024)
        document = self._document(policy_document, "policy_document")

        def run() -> int:
            self._open_account(account_id)
            policy = ManagedPolicy(
                account_id=account_id,
                policy_name=policy_name,
                description=description,
                document=document,
            )
            claim = self._new_claim(account_id, "policy", policy_name, policy.id)
            return self._commit(claim, policy)

        return self._command(run)

    def create_policy_version(
        self,
        account_id: str,
        policy_name: str,
        policy_document: str | Mapping[str, Any],
        *,
        set_as_default: bool = False,
    ) -> tuple[str, int]:
        document = self._document(policy_document, "policy_document")

        def run() -> tuple[str, int]:
            self._open_account(account_id)
            _, policy = self._live(account_id, "policy", policy_name, ManagedPolicy)
            version_id = policy.create_version(document, set_as_default=set_as_default)
            return version_id, self._commit(policy)

        return self._command(run)

    def set_default_policy_version(self, account_id: str, policy_name: str, version_id: str) -> int:
        def run() -> int:
            self._open_account(account_id)
            _, policy = self._live(account_id, "policy", policy_name, ManagedPolicy)
            policy.set_default_version(version_id)
            return self._commit(policy)

        return self._command(run)

    def delete_policy_version(self, account_id: str, policy_name: str, version_id: str) -> int:
        def run() -> int:
            self._open_account(account_id)
            _, policy = self._live(account_id, "policy", policy_name, ManagedPolicy)
            policy.delete_version(version_id)
            return self._commit(policy)

        return self._command(run)

    def delete_policy(self, account_id: str, policy_name: str, *, detach: bool = False) -> int:
        def run() -> int:
            self._open_account(account_id)
            claim, policy = self._live(account_id, "policy", policy_name, ManagedPolicy)
            key = (PolicyType.CUSTOM.value, policy_name)
            holders: list[User | Group | Role] = []
            kinds: dict[str, type[User | Group | Role]] = {
                "user": User,
                "group": Group,
                "role": Role,
            }
            for kind, holder_id in self.read_port.policy_holders(policy.id):
                holder = self._get(holder_id, kinds[kind])
                attached = holder.attachments.get(key)
                if not holder.deleted and attached is not None and attached.policy_id == policy.id:
                    holders.append(holder)
            if detach:
                for holder in holders:
                    holder.detach_policy(key)
                policy.delete(attachment_count=0)
            else:
                policy.delete(attachment_count=len(holders))
            claim.release()
            return self._commit(*holders, policy, claim)

        return self._command(run)

    # -- attachments ---------------------------------------------------------------------
    def _principal(self, account_id: str, kind: str, name: str) -> User | Group | Role:
        if kind == "user":
            return self._live(account_id, "user", name, User)[1]
        if kind == "group":
            return self._live(account_id, "group", name, Group)[1]
        if kind == "role":
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
        raise InvalidInput(
            FieldError("policy_type", "must be 'System' or 'Custom'"),
            code="InvalidParameter.PolicyType",
        )

    def attach_policy(
        self,
        account_id: str,
        principal_kind: str,
        principal_name: str,
        policy_type: str,
        policy_name: str,
    ) -> int:
        def run() -> int:
            self._open_account(account_id)
            principal = self._principal(account_id, principal_kind, principal_name)
            principal.attach_policy(self._attachment(account_id, policy_type, policy_name))
            return self._commit(principal)

        return self._command(run)

    def detach_policy(
        self,
        account_id: str,
        principal_kind: str,
        principal_name: str,
        policy_type: str,
        policy_name: str,
    ) -> int:
        if policy_type not in (PolicyType.SYSTEM, PolicyType.CUSTOM):
            raise InvalidInput(
                FieldError("policy_type", "must be 'System' or 'Custom'"),
                code="InvalidParameter.PolicyType",
            )

        def run() -> int:
            self._open_account(account_id)
            principal = self._principal(account_id, principal_kind, principal_name)
            principal.detach_policy((policy_type, policy_name))
            return self._commit(principal)

        return self._command(run)

    # -- roles ---------------------------------------------------------------------------
    def create_role(
        self,
        account_id: str,
        role_name: str,
        assume_role_policy_document: str | Mapping[str, Any],
        *,
        max_session_duration: int | None = None,
        description: str | None = None,
    ) -> int:
        check_entity_name("role_name", role_name)
        check_optional_text("description", description, 1024)
        trust = check_trust_policy("assume_role_policy_document", assume_role_policy_document)
        duration = (
            DEFAULT_MAX_SESSION_DURATION
            if max_session_duration is None
            else check_max_session_duration("max_session_duration", max_session_duration)
        )

        def run() -> int:
            self._open_account(account_id)
            role = Role(
                account_id=account_id,
                role_name=role_name,
                description=description,
                trust_policy=trust,
                max_session_duration=duration,
            )
            claim = self._new_claim(account_id, "role", role_name, role.id)
            return self._commit(claim, role)

        return self._command(run)

    def update_role(
        self,
        account_id: str,
        role_name: str,
        *,
        description: str | None = None,
        max_session_duration: int | None = None,
        assume_role_policy_document: str | Mapping[str, Any] | None = None,
    ) -> int:
        check_optional_text("description", description, 1024)
        if max_session_duration is not None:
            check_max_session_duration("max_session_duration", max_session_duration)
        trust = (
            None
            if assume_role_policy_document is None
            else check_trust_policy("assume_role_policy_document", assume_role_policy_document)
        )

        def run() -> int:
            self._open_account(account_id)
            _, role = self._live_role(account_id, role_name)
            role.update(description=description, max_session_duration=max_session_duration)
            if trust is not None:
                role.set_trust_policy(trust, rebind=True)  # writing it binds names anew
            return self._commit(role)

        return self._command(run)

    def delete_role(self, account_id: str, role_name: str, *, detach: bool = False) -> int:
        def run() -> int:
            self._open_account(account_id)
            claim, role = self._live_role(account_id, role_name)
            role.delete(detach=detach)
            claim.release()
            return self._commit(role, claim)

        return self._command(run)

    def revoke_role_sessions(
        self, account_id: str, role_name: str, issued_before: datetime | None = None
    ) -> int:
        """Every session of the role issued before ``issued_before`` (≤ now) is dead."""
        now = datetime.now(UTC)
        horizon = now if issued_before is None else check_instant("issued_before", issued_before)
        if horizon > now:
            raise InvalidInput(
                FieldError("issued_before", "must not be in the future"),
                code="InvalidParameter.IssuedBefore",
            )

        def run() -> int:
            self._open_account(account_id)
            _, role = self._live_role(account_id, role_name)
            role.revoke_sessions(horizon)
            return self._commit(role)

        return self._command(run)

    def _live_role(self, account_id: str, role_name: str) -> tuple[NameClaim, Role]:
        """A role the ordinary role commands may change: a managed role is refused (409)."""
        claim = self._claim(account_id, "role", role_name)
        if claim is not None and claim.entity_id is not None:
            entity: Aggregate | None
            try:
                entity = self.repository.get(claim.entity_id)
            except AggregateNotFoundError:
                entity = None
            if isinstance(entity, Entrustment):
                raise Conflict(
                    f"role {role_name!r} is managed by entrustment {entity.id}: its trust, "
                    "policies and life follow the contract (amend or revoke the entrustment)",
                    code="EntityManaged.Role",
                )
        return self._live(account_id, "role", role_name, Role)

    # -- entrustments (A → B) and delegations (B → its users and groups) ---------------------
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
    ) -> tuple[UUID, str, int]:
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

        def run() -> tuple[UUID, str, int]:
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
            return entrustment.id, name, self._commit(claim, entrustment)

        return self._command(run)

    def _entrustment(self, account_id: str, entrustment_id: UUID) -> Entrustment:
        self._open_account(account_id)
        entrustment = self._get(entrustment_id, Entrustment)
        if entrustment.account_id != account_id:
            raise NotFound(
                f"entrustment {entrustment_id} does not exist", code="EntityNotExist.Entrustment"
            )
        return entrustment

    def amend_entrustment(self, account_id: str, entrustment_id: UUID, scope: object) -> int:
        document, policies = self._scope(account_id, scope, "scope")

        def run() -> int:
            entrustment = self._entrustment(account_id, entrustment_id)
            entrustment.amend(document, policies, datetime.now(UTC))
            return self._commit(entrustment)

        return self._command(run)

    def revoke_entrustment(self, account_id: str, entrustment_id: UUID) -> int:
        """One event; every delegation and session under the contract is dead from it."""

        def run() -> int:
            entrustment = self._entrustment(account_id, entrustment_id)
            entrustment.revoke(datetime.now(UTC))
            return self._commit(entrustment)

        return self._command(run)

    def end_entrustment(self, entrustment_id: UUID) -> int | None:
        """``EntrustmentEnded`` once its term is reached; None when there is nothing to record."""

        def run() -> int | None:
            entrustment = self._get(entrustment_id, Entrustment)
            if not entrustment.end(datetime.now(UTC)):
                return None
            return self._commit(entrustment)

        return self._command(run)

    def grant_delegation(
        self,
        account_id: str,
        *,
        delegation_id: UUID,
        entrustment_id: UUID,
        grantee: str,
        scope: object,
        ends_at: datetime | None = None,
    ) -> tuple[list[ScopeWarning], int]:
        """B lets one of its users or groups act under an entrustment it received."""
        try:
            parsed = parse_principal_arn(grantee) if isinstance(grantee, str) else None
        except InvalidInput:
            parsed = None
        if parsed is None or parsed.kind not in ("user", "group"):
            raise InvalidInput(FieldError("grantee", "must be the ARN of a user or a group"))
        if parsed.account_id != account_id:
            raise InvalidInput(FieldError("grantee", f"must be a user or group of {account_id}"))
        ends = self._instant("ends_at", ends_at)
        if ends is not None and ends <= datetime.now(UTC):
            raise InvalidInput(FieldError("ends_at", "must be in the future"))
        document = self._document(scope if isinstance(scope, str | Mapping) else "", "scope")

        def run() -> tuple[list[ScopeWarning], int]:
            self._open_account(account_id)
            try:
                entrustment = self._get(entrustment_id, Entrustment)
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
                account_id, kind, parsed.name or "", User if kind == "user" else Group
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
            return warnings, self._commit(delegation)

        return self._command(run)

    def revoke_delegation(self, account_id: str, delegation_id: UUID) -> int:
        def run() -> int:
            try:
                delegation = self._get(delegation_id, Delegation)
            except NotFound:
                delegation = None
            if delegation is None or delegation.account_id != account_id:
                raise NotFound(
                    f"delegation {delegation_id} does not exist",
                    code="EntityNotExist.Delegation",
                )
            delegation.revoke(datetime.now(UTC))
            return self._commit(delegation)

        return self._command(run)

    # -- sessions (STS) ------------------------------------------------------------------
    def assume_role(
        self,
        caller: AssumingCaller,
        *,
        role_arn: object,
        role_session_name: object,
        duration_seconds: object = None,
        policy: object = None,
        external_id: object = None,
        context: Mapping[str, object] | None = None,
    ) -> IssuedSession:
        """STS AssumeRole: check, then record ``SessionIssued`` (the secret only hashed)."""
        if self.token_signer is None:
            raise RuntimeError("this ledger was made without a session token signer")
        signer = self.token_signer
        arn, name, duration, policy_text = check_parameters(
            role_arn, role_session_name, duration_seconds, policy
        )
        if external_id is not None and (
            not isinstance(external_id, str) or not 2 <= len(external_id) <= 1224
        ):
            raise InvalidInput(
                FieldError("external_id", "must be 2 to 1224 characters"),
                code="InvalidParameter.ExternalId",
            )
        decision_context = {k.lower(): v for k, v in (context or {}).items()}
        if external_id is not None:
            decision_context["sts:externalid"] = external_id
        target = arn.rsplit("/", 1)
        role_account = target[0].split(":")[3]
        role = self.read_port.role_facts(role_account, target[1])
        plan = plan_session(
            caller,
            role,
            role_arn_text=arn,
            role_session_name=name,
            duration_seconds=duration,
            session_policy=policy_text,
            context=decision_context,
            now=datetime.now(UTC),
        )
        assert plan.role is not None

        def run() -> IssuedSession:
            key_id, secret, secret_hash = self._issue_key("STS.")
            session = Session(
                access_key_id=key_id,
                secret_hash=secret_hash,
                account_id=plan.role.account_id,
                role_id=plan.role.role_id,
                role_name=plan.role.role_name,
                role_session_name=plan.role_session_name,
                source_arn=caller.subject.arn,
                source_account_id=caller.subject.account_id,
                source_user_id=caller.source_user_id,
                parent_access_key_id=caller.parent.access_key_id if caller.parent else None,
                session_policy=plan.session_policy,
                issued_at=plan.issued_at,
                expiration=plan.expiration,
            )
            position = self._commit(session)
            return IssuedSession(
                access_key_id=key_id,
                access_key_secret=secret,
                security_token=signer.issue(key_id, plan.expiration),
                expiration=plan.expiration,
                arn=assumed_role_arn(plan.role.account_id, plan.role.role_name, name),
                assumed_role_id=f"{plan.role.role_id}:{name}",
                position=position,
            )

        return self._command(run)

    def revoke_session(self, access_key_id: str) -> int:
        """End one session now; revoking an ended session again records nothing."""

        def run() -> int:
            session = self._get(session_aggregate_id(access_key_id), Session)
            session.revoke()
            return self._commit(session)

        try:
            return self._command(run)
        except NotFound:
            raise NotFound(
                f"session {access_key_id} does not exist", code="EntityNotExist.Session"
            ) from None
