"""Decisions and effective permissions at any instant, from the facts alive then.

``AsOfReader`` reads only the facts of one principal alive at T (through ``AsOfFacts``, the
port in ``as_of_facts``), assembles the identity layer and a role's layer with the same
``PolicyCompiler`` as the live index, and hands them to the same
``domain.policy.decisions.decide``. A role session is judged by
``session_lineage.resolve_session``, the rule the live index applies too, over the lineage
read at T (``as_of_lineage.LineageAt``). There is no replay: the log is read only by the
projection that writes the table. The statements a principal had are listed by
``as_of_permissions``.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from mandate.domain.common.arns import (
    PrincipalKind,
    group_arn,
    parse_principal_arn,
    root_arn,
    user_arn,
)
from mandate.domain.common.ledger_time import to_micros
from mandate.domain.permissions.attachments import Attachment
from mandate.domain.permissions.policy_sets import CustomVersion, GroupAttachments, PolicyCompiler
from mandate.domain.policy.decisions import Answer, Subject, SubjectKind
from mandate.domain.policy.document import DocumentKind, PolicyDocument, parse_policy_document
from mandate.domain.policy.evaluation import AccessRequest, ContextValue, PolicySet
from mandate.domain.policy.resource_policies import decide_with_resource_and_control
from mandate.domain.policy.resource_tags import ram_tagged_resource, with_resource_tags
from mandate.domain.sts.assume_role import AssumingCaller
from mandate.domain.sts.role_reach import answer_through_roles, moment_of, paths_into
from mandate.domain.sts.session_lineage import (
    DelegationState,
    EntrustmentState,
    RoleState,
    SessionInvalid,
    SessionRecord,
    delegation_layer,
    resolve_session,
    scope_layer,
    session_policy_layer,
)
from mandate.projections.history.as_of_facts import (
    AsOfFacts,
    attachment_of,
    named_at_of,
    session_record_of,
)
from mandate.projections.history.as_of_lineage import LineageAt
from mandate.projections.history.as_of_permissions import Provenance, effective_permissions
from mandate.projections.history.temporal_directory import control_at
from mandate.projections.history.temporal_resource_policies import resource_policies_at
from mandate.projections.store.read_model_store import ReadModelStore

__all__ = ["AsOfReader", "PrincipalAt", "Provenance", "RoleReach"]

_SESSION_LAYER_LIMIT = 10_000
_END_OF_TIME = 2**62  # µs: after every instant a fact can have


@dataclass(frozen=True, slots=True)
class PrincipalAt:
    """A principal as it was at an instant: what the decision needs, and who it was.

    ``user_id`` is set for a RAM user, ``session`` for a role session; the root has neither.
    """

    subject: Subject
    user_id: UUID | None
    session: SessionRecord | None = None

    @property
    def is_root(self) -> bool:
        return self.subject.kind is SubjectKind.ROOT


@dataclass(frozen=True, slots=True)
class RoleReach:
    """A role the principal could assume at an instant, and through what."""

    role_arn: str
    managed_by: str | None
    """The entrustment a managed role realises, else None."""
    chains: tuple[tuple[str, ...], ...]
    """``[P, role]``, or ``[P, delegation, entrustment, role]`` per live delegation."""
    conditional: bool
    """Only some request context (a Condition on a key not known here) would let P in."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "role_arn": self.role_arn,
            "managed_by": self.managed_by,
            "chains": [list(chain) for chain in self.chains],
            "conditional": self.conditional,
        }


class AsOfReader:
    """Answers "what held at T" from one copy of the temporal index."""

    def __init__(self, store: ReadModelStore, compiler: PolicyCompiler | None = None) -> None:
        self.compiler = compiler or PolicyCompiler()
        self.facts = AsOfFacts(store)
        # A session policy never changes: its layer, once compiled, holds at every instant;
        # nor does a delegation's scope, and an entrustment's changes only by a new scope.
        self._session_layers: dict[str, PolicySet | None] = {}
        self._scope_layers: dict[tuple[UUID, str, str], PolicySet] = {}
        self._delegation_layers: dict[tuple[UUID, ...], PolicySet] = {}
        self._trusts: dict[str, PolicyDocument] = {}

    @property
    def store(self) -> ReadModelStore:
        """The temporal copy read; setting it (a rebuild switched copies) moves the port too."""
        return self.facts.store

    @store.setter
    def store(self, store: ReadModelStore) -> None:
        self.facts = AsOfFacts(store)

    # -- principals ----------------------------------------------------------------------------
    def principal_for_arn(self, arn: str, at: datetime) -> tuple[PrincipalAt | None, str]:
        """The root or RAM user an ARN named at ``at``, or None and why not.

        Groups and roles do not act themselves, and a session is named by its AccessKey id
        (``session_at``): several sessions may share an ARN.
        """
        parsed = parse_principal_arn(arn)
        if parsed.kind is PrincipalKind.GROUP:
            return None, "a group does not act itself: its members act with its policies"
        if parsed.kind is PrincipalKind.ROLE:
            return None, (
                "a role does not act itself: its sessions do; name a session by its "
                "AccessKey id (STS.…)"
            )
        if parsed.kind == "assumed-role":
            return None, (
                "a session is named by its AccessKey id (STS.…), not by its ARN, "
                "which several sessions may share"
            )
        t = to_micros(at)
        with self.store.transaction(commit=False) as cursor:
            if not self.facts.account_open(cursor, parsed.account_id, t):
                return None, f"account {parsed.account_id} was not open then"
            if parsed.kind == "root":
                subject = Subject(parsed.account_id, root_arn(parsed.account_id), SubjectKind.ROOT)
                return PrincipalAt(subject, None), ""
            row = self.facts.named(cursor, "user", parsed.account_id, parsed.name or "", t)
            if row is None:
                return None, f"no user was named {arn} then"
            user_id = UUID(row["subject"])
            principal = self._user(
                cursor, user_id, parsed.account_id, parsed.name or "", t, named_at_of(row)
            )
            return principal, ""

    def principal_for_user(self, user_id: UUID, at: datetime) -> tuple[PrincipalAt | None, str]:
        """A user, by id, as it was at ``at`` (its name then, its policies then)."""
        t = to_micros(at)
        with self.store.transaction(commit=False) as cursor:
            rows = self.facts.alive(cursor, "user", [str(user_id)], t)
            if not rows:
                return None, "the user did not exist then"
            row = rows[-1]
            if not self.facts.account_open(cursor, row["account_id"], t):
                return None, f"account {row['account_id']} was not open then"
            principal = self._user(
                cursor, user_id, row["account_id"], row["object"], t, named_at_of(row)
            )
            return principal, ""

    def root_of(self, account_id: str, at: datetime) -> tuple[PrincipalAt | None, str]:
        with self.store.transaction(commit=False) as cursor:
            if not self.facts.account_open(cursor, account_id, to_micros(at)):
                return None, f"account {account_id} was not open then"
        return PrincipalAt(Subject(account_id, root_arn(account_id), SubjectKind.ROOT), None), ""

    def session_at(self, access_key_id: str, at: datetime) -> tuple[PrincipalAt | None, str]:
        """The role session named by its AccessKey id, as it could act at ``at``.

        None, with the reason naming the dead link of its lineage (``SessionInvalid``), when
        it could not act then: not issued yet, revoked, expired, its role deleted or its
        sessions revoked, its source user deleted, its parent session dead, an account closed.
        """
        with self.store.transaction(commit=False) as cursor:
            facts = LineageAt(self, cursor, to_micros(at))
            try:
                subject = resolve_session(access_key_id, at, facts)
            except SessionInvalid as dead:
                return None, str(dead)
            return PrincipalAt(subject, None, facts.records[access_key_id]), ""

    def session_record(self, access_key_id: str) -> SessionRecord | None:
        """What ``SessionIssued`` recorded for the key id, whenever it was issued — also for a
        session the live index has long forgotten (to know whose it is before asking about it).
        """
        with self.store.transaction(commit=False) as cursor:
            row = self.facts.latest(cursor, "session", access_key_id, _END_OF_TIME)
        return session_record_of(json.loads(row["payload"])) if row is not None else None

    def key_status(self, access_key_id: str, at: datetime) -> str | None:
        """The AccessKey's status at ``at``, or None when it did not exist then."""
        with self.store.transaction(commit=False) as cursor:
            rows = self.facts.alive(cursor, "access_key", [access_key_id], to_micros(at))
        return str(json.loads(rows[-1]["payload"])["status"]) if rows else None

    def _user(
        self,
        cursor: Any,
        user_id: UUID,
        account_id: str,
        user_name: str,
        at: int,
        named_at: int | None = None,
    ) -> PrincipalAt:
        layer = self._identity_layer(cursor, str(user_id), at)
        arn = user_arn(account_id, user_name)
        subject = Subject(account_id, arn, SubjectKind.USER, layer, named_at=named_at)
        return PrincipalAt(subject, user_id)

    def _identity_layer(self, cursor: Any, user_id: str, at: int) -> PolicySet:
        memberships = self.facts.alive(cursor, "memberships", [user_id], at)
        group_ids = (
            [gid for gid, _ in json.loads(memberships[0]["payload"])["items"]]
            if (memberships)
            else []
        )
        groups = {row["subject"]: row for row in self.facts.alive(cursor, "group", group_ids, at)}
        live_groups = [gid for gid in group_ids if gid in groups]
        attachments = {
            row["subject"]: [attachment_of(item) for item in json.loads(row["payload"])["items"]]
            for row in self.facts.alive(cursor, "attachments", [user_id, *live_groups], at)
        }
        custom = self._custom_versions(
            cursor, (a for rows in attachments.values() for a in rows), at
        )
        group_layers = [
            GroupAttachments(
                group_arn(groups[gid]["account_id"], groups[gid]["object"]),
                tuple(attachments.get(gid, ())),
            )
            for gid in live_groups
        ]
        return self.compiler.identity_layer(attachments.get(user_id, ()), group_layers, custom.get)

    def _custom_versions(
        self, cursor: Any, attachments: Iterable[Attachment], at: int
    ) -> dict[UUID, CustomVersion]:
        """The default version at ``at`` of each custom policy attached, if it lived then."""
        policy_ids = sorted({str(a.policy_id) for a in attachments if a.policy_id})
        defaults = {
            row["subject"]: json.loads(row["payload"])["default_version"]
            for row in self.facts.alive(cursor, "policy", policy_ids, at)
        }
        documents = self.facts.documents(cursor, sorted(defaults.items()))
        return {
            UUID(policy_id): CustomVersion(
                UUID(policy_id), version, documents[(policy_id, version)]
            )
            for policy_id, version in defaults.items()
        }

    def _role_layer(self, cursor: Any, role: RoleState, at: int) -> PolicySet:
        custom = self._custom_versions(cursor, role.attachments, at)
        return self.compiler.role_layer(role.arn, role.attachments, custom.get)

    def _session_layer(self, record: SessionRecord) -> PolicySet | None:
        layers = self._session_layers
        key = record.access_key_id
        if key not in layers:
            if len(layers) >= _SESSION_LAYER_LIMIT:
                layers.clear()
            layers[key] = session_policy_layer(record)
        return layers[key]

    def _scope_layer(self, entrustment: EntrustmentState, role_arn_text: str) -> PolicySet:
        layers = self._scope_layers
        key = (entrustment.entrustment_id, role_arn_text, entrustment.scope)
        layer = layers.get(key)
        if layer is None:
            if len(layers) >= _SESSION_LAYER_LIMIT:
                layers.clear()
            layer = layers[key] = scope_layer(entrustment, role_arn_text)
        return layer

    def _delegation_layer(self, delegations: tuple[DelegationState, ...]) -> PolicySet:
        layers = self._delegation_layers
        key = tuple(d.delegation_id for d in delegations)
        layer = layers.get(key)
        if layer is None:
            if len(layers) >= _SESSION_LAYER_LIMIT:
                layers.clear()
            layer = layers[key] = delegation_layer(delegations)
        return layer

    def _trust(self, text: str) -> PolicyDocument:
        trusts = self._trusts
        trust = trusts.get(text)
        if trust is None:
            if len(trusts) >= _SESSION_LAYER_LIMIT:
                trusts.clear()
            trust = trusts[text] = parse_policy_document(text, kind=DocumentKind.TRUST)
        return trust

    # -- resources ---------------------------------------------------------------------------
    def resource_tags(self, resource: str, at: datetime) -> dict[str, str] | None:
        """The tags the RAM user or role ``resource`` names had at ``at`` (``{}``: none, or
        no such entity then), or None when it names no RAM user or role (as live:
        ``NamedQueries.resource_tags``)."""
        named = ram_tagged_resource(resource)
        if named is None:
            return None
        account_id, kind, name = named
        with self.store.transaction(commit=False) as cursor:
            row = self.facts.named(cursor, kind, account_id, name, to_micros(at))
        if row is None:
            return {}
        return dict(json.loads(row["payload"]).get("tags") or {})

    def with_resource_facts(self, request: AccessRequest) -> AccessRequest:
        """``request`` with a RAM user's or role's tags as they were at its
        ``acs:CurrentTime`` (what the request said of them dropped), as live decisions do."""
        if ram_tagged_resource(request.resource) is None:
            return request
        tags = self.resource_tags(request.resource, moment_of(request.context)) or {}
        return AccessRequest(
            request.action, request.resource, with_resource_tags(request.context, tags)
        )

    # -- answers -------------------------------------------------------------------------------
    def decide(self, principal: PrincipalAt, request: AccessRequest) -> Answer:
        """The same evaluator as live decisions, over the layers the principal had then
        (its account's control policies then included)."""
        return self._decide(principal.subject, self.with_resource_facts(request))

    def _decide(self, subject: Subject, request: AccessRequest) -> Answer:
        """``decide_with_control`` with the levels over the subject's account at the
        request's ``acs:CurrentTime`` (``temporal_directory.control_at``)."""
        at = to_micros(moment_of(request.context))
        with self.store.transaction(commit=False) as cursor:
            levels, management = control_at(self.facts, cursor, subject.account_id, at)
            covering = resource_policies_at(self.facts, cursor, request.resource, at)
        return decide_with_resource_and_control(subject, levels, management, covering, request)

    def could(
        self,
        principal: PrincipalAt,
        request: AccessRequest,
        named_of: Container[str] | None = None,
    ) -> Answer:
        """ "Could P do it?" at the request's ``acs:CurrentTime``: directly, or through a role
        P could assume then — ``domain.sts.role_reach``, the live index's rule, over the facts then.
        ``named_of``: as ``role_reach.answer_through_roles``'.
        """
        request = self.with_resource_facts(request)
        answer = self._decide(principal.subject, request)
        if answer.allowed:
            return answer
        return self.through_roles(principal, request, named_of) or answer

    def through_roles(
        self,
        principal: PrincipalAt,
        request: AccessRequest,
        named_of: Container[str] | None = None,
    ) -> Answer | None:
        """The answer that allows ``request`` through a role of the resource's account P
        could assume then, or through a role a resource policy covering it named then
        (``role_reach``), or None — never P's own identity decision. An outsider (that
        account) is told only this: it reveals of P's account only its grants towards the
        resource's account (P's ``sts:AssumeRole`` on the role, a delegation reaching P, a
        named role's trust of P and its own statements on the resource).
        """
        if principal.user_id is None:
            return None
        request = self.with_resource_facts(request)
        with self.store.transaction(commit=False) as cursor:
            facts = LineageAt(self, cursor, to_micros(moment_of(request.context)))
            return answer_through_roles(
                principal.subject, principal.user_id, request, facts, named_of=named_of
            )

    def assumable_roles(self, principal: PrincipalAt, at: datetime) -> list[RoleReach]:
        """Every role, of any account, a RAM user could assume at ``at`` (one hop, as "could
        P" decides): its own ``sts:AssumeRole`` then, and the role's trust or a live
        delegation then. Conditional where only some request context would let it in. Roots
        and sessions: none (a root never assumes a role; a session is not asked about here).
        """
        subject, user_id = principal.subject, principal.user_id
        if subject.kind is not SubjectKind.USER or user_id is None:
            return []
        context: dict[str, ContextValue] = {"acs:currenttime": at}
        caller = AssumingCaller(subject, user_id)
        found: list[RoleReach] = []
        with self.store.transaction(commit=False) as cursor:
            facts = LineageAt(self, cursor, to_micros(at))
            for role in facts.roles_in(None):
                paths = paths_into(caller, role, context, facts)
                conditional = not paths
                if conditional:
                    paths = paths_into(caller, role, context, facts, optimistic=True)
                if paths:
                    terms = role.entrustment
                    managed_by = terms.arn if terms is not None else None
                    chains = tuple(path.chain for path in paths)
                    found.append(RoleReach(role.arn, managed_by, chains, conditional))
        return found

    def effective_permissions(self, principal: PrincipalAt) -> list[Provenance]:
        """Every statement that applied to the principal (``as_of_permissions``)."""
        return effective_permissions(principal.subject)
