"""The ledger's core: the one eventsourcing ``Application`` every command module builds on.

It holds what all commands share — saving through group commit (``_commit``), loading an
aggregate (``_get``), the account and name-claim lookups, issuing a key — and none of the
commands themselves: those live per context (``identity``, ``policies``, ``roles``,
``sts``, ``contracts``) as subclasses of ``LedgerCore``, composed into one ``Ledger`` in
``domain.ledger.application``. Subclassing this typed base (not ``Any``) lets mypy check
every command's use of these helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Recording

from mandate.domain.common.errors import Conflict, InvalidInput, NotFound
from mandate.domain.common.identifiers import account_aggregate_id, name_claim_id
from mandate.domain.contracts.entrustments import Entrustment
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.secrets import SecretHasher, new_access_key_id, new_access_key_secret
from mandate.domain.ledger.fences import FENCES_KWARG, Fence
from mandate.domain.ledger.group_commit import GroupCommitter
from mandate.domain.ledger.idempotency import SAVED_KWARG, GuardedWrite, current_guard
from mandate.domain.ledger.ports import PrincipalRef, ReadPort, SecretSealer
from mandate.domain.ledger.rehearsal import rehearsing
from mandate.domain.ledger.results import Created
from mandate.domain.policy.document import parse_policy_document
from mandate.domain.sts.assume_role import RoleFacts
from mandate.domain.sts.roles import Role
from mandate.domain.sts.session_tokens import SessionTokenSigner

__all__ = ["APPLICATION_NAME", "LedgerCore"]

APPLICATION_NAME = "mandate"
A = TypeVar("A", bound=Aggregate)


class _NoReadPort:
    def group_member_ids(self, group_id: UUID) -> list[UUID]:
        return []

    def policy_holders(self, policy_id: UUID) -> list[PrincipalRef]:
        return []

    def role_facts(self, account_id: str, role_name: str) -> RoleFacts | None:
        return None

    def policy_document(self, account_id: str, policy_name: str) -> str | None:
        return None


class LedgerCore(Application[UUID]):
    """One log, one position: saving, loading and the lookups every command uses."""

    name = APPLICATION_NAME
    is_snapshotting_enabled = False
    # Commands read aggregates from a cache, fast-forwarded from the log on every read (one
    # query for the events after the cached version) and deep-copied for the command, so a
    # write costs the same on an aggregate of 2 events or 2,000 and a refused command never
    # touches the cached copy. Correct across processes: a stale copy is brought up to date
    # from the log, and a save racing another writer still raises IntegrityError, which
    # ``@command`` answers by deciding again. The process environment may override these.
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
        sealer: SecretSealer | None = None,
    ) -> None:
        super().__init__(env)
        self._group: GroupCommitter[ProcessingEvent[UUID], Recording[UUID]] = GroupCommitter(
            self._record, self._merged, lambda batch: len(batch.events)
        )
        self.hasher = hasher
        self.token_signer = token_signer
        self.sealer = sealer
        """Without one (unit tests' ledgers), issued secrets are recorded only hashed: such
        keys work with Basic but cannot sign requests."""
        self.read_port: ReadPort = read_port or _NoReadPort()

    # -- saving --------------------------------------------------------------------------
    def _commit(self, *aggregates: Aggregate, fences: tuple[Fence, ...] = ()) -> int:
        """Save what one command changed — with other commands' changes when they queue up
        (``GroupCommitter``) — and answer the position of its own last event.

        ``fences``: the versions of aggregates the command only read and decided on; the
        save commits only if none has moved since, else ``FenceBroken``
        (``domain.ledger.fences``)."""
        batch: ProcessingEvent[UUID] = ProcessingEvent()
        batch.collect_events(*aggregates)
        rehearsed = rehearsing()
        if rehearsed is not None:  # a what-if: the events, never a write (``rehearsal.py``)
            rehearsed.extend(batch.events)
            return 0
        if not batch.events:
            return self.recorder.max_notification_id() or 0
        if fences:
            batch.saved_kwargs[FENCES_KWARG] = list(fences)
        guard = current_guard()
        if guard is not None and guard.position is None:
            # The request's idempotency key goes into the same transaction as these events
            # (``domain.ledger.idempotency``), at the position of the last of them.
            last = batch.events[-1]
            guard.last_event = (last.originator_id, last.originator_version)
            batch.saved_kwargs[SAVED_KWARG] = [guard]
        recordings = self._group.commit(batch)
        position = int(recordings[-1].notification.id)
        if guard is not None and guard.position is None:
            guard.position = position
        self._take_snapshots(batch)
        self._notify(recordings)
        return position

    @staticmethod
    def _merged(batches: list[ProcessingEvent[UUID]]) -> ProcessingEvent[UUID]:
        merged: ProcessingEvent[UUID] = ProcessingEvent()
        guards: list[GuardedWrite] = []
        fences: list[Fence] = []
        for batch in batches:
            merged.events.extend(batch.events)
            merged.aggregates.update(batch.aggregates)
            guards.extend(batch.saved_kwargs.get(SAVED_KWARG, ()))
            fences.extend(batch.saved_kwargs.get(FENCES_KWARG, ()))
        if guards:
            merged.saved_kwargs[SAVED_KWARG] = guards
        if fences:
            merged.saved_kwargs[FENCES_KWARG] = fences
        return merged

    # -- loading -------------------------------------------------------------------------
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

    # -- names: one claim per (account, kind, name) --------------------------------------
    def _claim(self, account_id: str, kind: str, name: str) -> NameClaim | None:
        try:
            claim: Aggregate = self.repository.get(name_claim_id(account_id, kind, name))
        except AggregateNotFoundError:
            return None
        assert isinstance(claim, NameClaim)
        return claim

    def _live(self, account_id: str, kind: str, name: str, entity: type[A]) -> tuple[NameClaim, A]:
        """The live entity ``name`` names, with its claim.

        The entity is read after the claim: a delete committed between the two reads leaves
        the claim stale, and a command that saves only the entity would record on a deleted
        one without any conflict. So a deleted entity is refused here; a delete committed
        after this read makes the entity's save conflict, and the re-run answers 404."""
        missing = NotFound(
            f"{kind} {name!r} does not exist", code=f"EntityNotExist.{kind.capitalize()}"
        )
        claim = self._claim(account_id, kind, name)
        if claim is None or claim.entity_id is None:
            raise missing
        found = self._get(claim.entity_id, entity)
        if getattr(found, "deleted", False):
            raise missing
        return claim, found

    def _new_claim(self, account_id: str, kind: str, name: str, entity_id: UUID) -> NameClaim:
        claim = self._claim(account_id, kind, name)
        if claim is None:
            return NameClaim(account_id=account_id, kind=kind, name=name, entity_id=entity_id)
        claim.claim_again(entity_id)
        return claim

    def _create_named(self, account_id: str, kind: str, name: str, entity: Aggregate) -> Created:
        """Save a new user, group, policy or role with the claim on its name (claim first)."""
        claim = self._new_claim(account_id, kind, name, entity.id)
        return Created(entity.id, self._commit(claim, entity))

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

    # -- making things -------------------------------------------------------------------
    def _issue_key(self, prefix: str = "LTAI") -> tuple[str, str, str, str | None]:
        """A new key id and secret, with what the event records of the secret: its keyed
        hash (Basic's check) and, with a sealer, the secret sealed bound to the key id (what
        a request signature is verified with). The secret itself goes only to the caller."""
        key_id = new_access_key_id(prefix)
        secret = new_access_key_secret()
        sealed = self.sealer.seal(secret, bound_to=key_id) if self.sealer is not None else None
        return key_id, secret, self.hasher.hash(secret), sealed

    @staticmethod
    def _document(raw: str | Mapping[str, Any], field: str) -> str:
        try:
            return parse_policy_document(raw).canonical_json()
        except InvalidInput as error:
            raise error.prefixed(field) from None
