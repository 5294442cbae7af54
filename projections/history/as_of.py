"""Decisions and effective permissions at any instant, from the facts alive then.

``AsOfReader`` reads only the facts of one principal alive at T. At most one fact of a kind is
alive per subject at any instant (see ``temporal_index``), so each lookup is "the fact with
the greatest ``valid_from <= T``" — one descending step of an index per subject, then a check
that it was still alive at T: a handful of statements whose cost does not depend on the
length of history. It assembles the identity layer and a role's layer with the same
``PolicyCompiler`` as the live index, and hands them to the same ``domain.policy.decisions.decide``.

A role session is judged by ``session_lineage.resolve_session``, the rule the live index
applies too, over ``LineageFacts`` read here at T: per generation of the lineage, the
session's own fact (the latest opened at or before T, alive or not: a closed one means it was
revoked), then in one statement the facts of its account, role, role attachments and source
user — and, in case the role is a managed one, its entrustment, the entrustment's list of
delegations and the source user's memberships — then the role's policy versions and
documents, or for a managed role, in one more statement, the delegations listed and the
groups the user was in. There is no replay: the log is read only by the projection that
writes the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.common.arns import (
    delegation_arn,
    entrustment_arn,
    group_arn,
    parse_principal_arn,
    root_arn,
    user_arn,
)
from domain.common.ledger_time import format_instant, from_micros, to_micros
from domain.permissions.attachments import Attachment, PolicyType
from domain.permissions.policy_sets import CustomVersion, GroupAttachments, PolicyCompiler
from domain.policy.decisions import Answer, Path, Subject, SubjectKind, decide
from domain.policy.document import DocumentKind, PolicyDocument, parse_policy_document
from domain.policy.evaluation import ContextValue, PolicySet, Request
from domain.sts.assumable_roles import AssumableRole, answer_through_roles, moment_of, paths_into
from domain.sts.assume_role import AssumingCaller
from domain.sts.session_lineage import (
    DelegationState,
    EntrustmentState,
    RoleState,
    SessionInvalid,
    SessionRecord,
    contract_revoked,
    delegation_layer,
    resolve_session,
    scope_layer,
    session_policy_layer,
)
from projections.store.read_model_store import ReadModelStore

__all__ = ["AsOfReader", "PrincipalAt", "Provenance", "RoleReach"]

# The fact of each listed subject at T: the one with the greatest (valid_from, opened_position)
# at or before T — one backward step of the (kind, subject, valid_from, opened_position)
# index — if it was still alive at T. (Of two facts opened at one instant, the later opened
# is the successor; the other's interval is empty.) PostgreSQL drives the step per subject
# with LATERAL; SQLite with a correlated subquery naming the row.
AT_POSTGRES = (
    "SELECT f.* FROM (VALUES {values}) AS s(subject) CROSS JOIN LATERAL ("
    " SELECT g.subject, g.object, g.account_id, g.payload, g.valid_to FROM {p}_facts g"
    " WHERE g.kind = ? AND g.subject = s.subject AND g.valid_from <= ?"
    " ORDER BY g.valid_from DESC, g.opened_position DESC LIMIT 1"
    ") f WHERE f.valid_to IS NULL OR f.valid_to > ?"
)
AT_SQLITE = (
    "WITH s(subject) AS (VALUES {values})"
    " SELECT f.subject, f.object, f.account_id, f.payload, f.valid_to"
    " FROM s JOIN {p}_facts f ON f.rowid = ("
    " SELECT g.rowid FROM {p}_facts g"
    " WHERE g.kind = ? AND g.subject = s.subject AND g.valid_from <= ?"
    " ORDER BY g.valid_from DESC, g.opened_position DESC LIMIT 1"
    ") WHERE f.valid_to IS NULL OR f.valid_to > ?"
)
# The same step for (kind, subject) pairs of several kinds at once: the links of a session's
# lineage (its account, role, role attachments, source user) in one statement.
AT_PAIRS_POSTGRES = (
    "SELECT f.* FROM (VALUES {values}) AS s(kind, subject) CROSS JOIN LATERAL ("
    " SELECT g.kind, g.subject, g.object, g.account_id, g.payload, g.valid_to FROM {p}_facts g"
    " WHERE g.kind = s.kind AND g.subject = s.subject AND g.valid_from <= ?"
    " ORDER BY g.valid_from DESC, g.opened_position DESC LIMIT 1"
    ") f WHERE f.valid_to IS NULL OR f.valid_to > ?"
)
AT_PAIRS_SQLITE = (
    "WITH s(kind, subject) AS (VALUES {values})"
    " SELECT f.kind, f.subject, f.object, f.account_id, f.payload, f.valid_to"
    " FROM s JOIN {p}_facts f ON f.rowid = ("
    " SELECT g.rowid FROM {p}_facts g"
    " WHERE g.kind = s.kind AND g.subject = s.subject AND g.valid_from <= ?"
    " ORDER BY g.valid_from DESC, g.opened_position DESC LIMIT 1"
    ") WHERE f.valid_to IS NULL OR f.valid_to > ?"
)
# The latest fact of a subject opened at or before T, whether or not it was still alive:
# for a session, "revoked by then" and "not issued yet" are different answers.
LATEST_AT = (
    "SELECT subject, object, account_id, payload, valid_to FROM {p}_facts"
    " WHERE kind = ? AND subject = ? AND valid_from <= ?"
    " ORDER BY valid_from DESC, opened_position DESC LIMIT 1"
)
_NAMED_AT = (
    "SELECT subject, object, account_id, payload, valid_to FROM {p}_facts"
    " WHERE kind = ? AND account_id = ? AND object = ? AND valid_from <= ?"
    " ORDER BY valid_from DESC, opened_position DESC LIMIT 1"
)

# The roles (ordinary and managed) alive at T, of one account or of all: a range of the
# (kind, account_id, object, valid_from) index per kind — the account's role history, not
# the whole table's; "of all" (effective permissions) reads every role fact.
_ROLES_AT = (
    "SELECT kind, subject, object, account_id, payload, valid_to FROM {p}_facts"
    " WHERE kind IN ('role', 'entrustment') AND account_id = ? AND valid_from <= ?"
    " AND (valid_to IS NULL OR valid_to > ?)"
)
_ALL_ROLES_AT = (
    "SELECT kind, subject, object, account_id, payload, valid_to FROM {p}_facts"
    " WHERE kind IN ('role', 'entrustment') AND valid_from <= ?"
    " AND (valid_to IS NULL OR valid_to > ?)"
)

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
class Provenance:
    """One statement that applied to the principal, the layer it is in, and how it came."""

    policy_type: str
    policy_name: str
    version: str | None
    via: str | None
    statement: int
    document: dict[str, Any]
    layer: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "policy_type": self.policy_type,
            "policy_name": self.policy_name,
            "version": self.version,
            "via": self.via,
            "statement_index": self.statement,
            "statement": self.document,
        }


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
        self.store = store
        self.compiler = compiler or PolicyCompiler()
        # A session policy never changes: its layer, once compiled, holds at every instant;
        # nor does a delegation's scope, and an entrustment's changes only by a new scope.
        self._session_layers: dict[str, PolicySet | None] = {}
        self._scope_layers: dict[tuple[UUID, str, str], PolicySet] = {}
        self._delegation_layers: dict[tuple[UUID, ...], PolicySet] = {}
        self._trusts: dict[str, PolicyDocument] = {}

    # -- facts alive at T ----------------------------------------------------------------------
    def _alive(self, cursor: Any, kind: str, subjects: Sequence[str], at: int) -> list[Any]:
        """The fact of ``kind`` alive at ``at`` for each of ``subjects`` that had one."""
        if not subjects:
            return []
        template = AT_POSTGRES if self.store.dialect.is_postgres else AT_SQLITE
        statement = template.replace("{values}", ", ".join("(?)" for _ in subjects))
        return list(self.store.execute(cursor, statement, (*subjects, kind, at, at)).fetchall())

    def _alive_pairs(self, cursor: Any, pairs: Sequence[tuple[str, str]], at: int) -> list[Any]:
        """The fact alive at ``at`` of each ``(kind, subject)`` that had one, in one statement."""
        if not pairs:
            return []
        template = AT_PAIRS_POSTGRES if self.store.dialect.is_postgres else AT_PAIRS_SQLITE
        statement = template.replace("{values}", ", ".join("(?, ?)" for _ in pairs))
        params = [value for pair in pairs for value in pair]
        return list(self.store.execute(cursor, statement, (*params, at, at)).fetchall())

    def _latest(self, cursor: Any, kind: str, subject: str, at: int) -> Any:
        """The subject's fact opened last at or before ``at``, alive then or not."""
        return self.store.execute(cursor, LATEST_AT, (kind, subject, at)).fetchone()

    def _named(self, cursor: Any, kind: str, account_id: str, name: str, at: int) -> Any:
        """The entity of ``kind`` that had ``name`` in the account at ``at``, if any."""
        row = self.store.execute(cursor, _NAMED_AT, (kind, account_id, name, at)).fetchone()
        alive = row is not None and (row["valid_to"] is None or row["valid_to"] > at)
        return row if alive else None

    def _documents(self, cursor: Any, versions: Sequence[tuple[str, str]]) -> dict[Any, str]:
        if not versions:
            return {}
        pairs = " OR ".join("(policy_id = ? AND version_id = ?)" for _ in versions)
        statement = f"SELECT policy_id, version_id, document FROM {{p}}_documents WHERE {pairs}"  # noqa: S608
        params = [value for pair in versions for value in pair]
        rows = self.store.execute(cursor, statement, params).fetchall()
        return {(row["policy_id"], row["version_id"]): row["document"] for row in rows}

    def _account_open(self, cursor: Any, account_id: str, at: int) -> bool:
        return bool(self._alive(cursor, "account", [account_id], at))

    # -- principals ----------------------------------------------------------------------------
    def principal_for_arn(self, arn: str, at: datetime) -> tuple[PrincipalAt | None, str]:
        """The root or RAM user an ARN named at ``at``, or None and why not.

        Groups and roles do not act themselves, and a session is named by its AccessKey id
        (``session_at``): several sessions may share an ARN.
        """
        parsed = parse_principal_arn(arn)
        if parsed.kind == "group":
            return None, "a group does not act itself: its members act with its policies"
        if parsed.kind == "role":
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
            if not self._account_open(cursor, parsed.account_id, t):
                return None, f"account {parsed.account_id} was not open then"
            if parsed.kind == "root":
                subject = Subject(parsed.account_id, root_arn(parsed.account_id), SubjectKind.ROOT)
                return PrincipalAt(subject, None), ""
            row = self._named(cursor, "user", parsed.account_id, parsed.name or "", t)
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
            rows = self._alive(cursor, "user", [str(user_id)], t)
            if not rows:
                return None, "the user did not exist then"
            row = rows[-1]
            if not self._account_open(cursor, row["account_id"], t):
                return None, f"account {row['account_id']} was not open then"
            principal = self._user(
                cursor, user_id, row["account_id"], row["object"], t, named_at_of(row)
            )
            return principal, ""

    def root_of(self, account_id: str, at: datetime) -> tuple[PrincipalAt | None, str]:
        with self.store.transaction(commit=False) as cursor:
            if not self._account_open(cursor, account_id, to_micros(at)):
                return None, f"account {account_id} was not open then"
        return PrincipalAt(Subject(account_id, root_arn(account_id), SubjectKind.ROOT), None), ""

    def session_at(self, access_key_id: str, at: datetime) -> tuple[PrincipalAt | None, str]:
        """The role session named by its AccessKey id, as it could act at ``at``.

        None, with the reason naming the dead link of its lineage (``SessionInvalid``), when
        it could not act then: not issued yet, revoked, expired, its role deleted or its
        sessions revoked, its source user deleted, its parent session dead, an account closed.
        """
        with self.store.transaction(commit=False) as cursor:
            facts = _LineageAt(self, cursor, to_micros(at))
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
            row = self._latest(cursor, "session", access_key_id, _END_OF_TIME)
        return _session_record(json.loads(row["payload"])) if row is not None else None

    def key_status(self, access_key_id: str, at: datetime) -> str | None:
        """The AccessKey's status at ``at``, or None when it did not exist then."""
        with self.store.transaction(commit=False) as cursor:
            rows = self._alive(cursor, "access_key", [access_key_id], to_micros(at))
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
        memberships = self._alive(cursor, "memberships", [user_id], at)
        group_ids = (
            [gid for gid, _ in json.loads(memberships[0]["payload"])["items"]]
            if (memberships)
            else []
        )
        groups = {row["subject"]: row for row in self._alive(cursor, "group", group_ids, at)}
        live_groups = [gid for gid in group_ids if gid in groups]
        attachments = {
            row["subject"]: [_attachment(item) for item in json.loads(row["payload"])["items"]]
            for row in self._alive(cursor, "attachments", [user_id, *live_groups], at)
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
            for row in self._alive(cursor, "policy", policy_ids, at)
        }
        documents = self._documents(cursor, sorted(defaults.items()))
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

    # -- answers -------------------------------------------------------------------------------
    def decide(self, principal: PrincipalAt, request: Request) -> Answer:
        """The same evaluator as live decisions, over the layers the principal had then."""
        return decide(principal.subject, request)

    def could(self, principal: PrincipalAt, request: Request) -> Answer:
        """ "Could P do it?" at the request's ``acs:CurrentTime``: directly, or through a role
        P could assume then — ``assumable_roles``, the live index's rule, over the facts then.
        """
        answer = decide(principal.subject, request)
        if answer.allowed:
            return answer
        return self.through_roles(principal, request) or answer

    def through_roles(self, principal: PrincipalAt, request: Request) -> Answer | None:
        """The answer that allows ``request`` through a role of the resource's account P
        could assume then, or None — never P's own identity decision. An outsider (that
        account) is told only this: it reveals of P's account only its grants towards the
        resource's account (P's ``sts:AssumeRole`` on the role, a delegation reaching P).
        """
        if principal.user_id is None:
            return None
        with self.store.transaction(commit=False) as cursor:
            facts = _LineageAt(self, cursor, to_micros(moment_of(request.context)))
            return answer_through_roles(principal.subject, principal.user_id, request, facts)

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
            facts = _LineageAt(self, cursor, to_micros(at))
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
        """Every statement that applied to the principal, with its layer and how it came.

        A user's identity layer (its own policies, then its groups'); a session's layers in
        the order of its lineage (role — for a managed role its entrustment's scope — then the
        delegations reaching its source user, the session policy, then the next generation's). The
        layers of a session intersect: a statement here allows nothing that another layer
        does not allow too. The root has no statements (it may do anything in its account).
        """
        subject = principal.subject
        layers = [subject.identity] if subject.identity is not None else []
        for path in subject.paths or (Path(subject.layers, subject.chain),):
            layers.extend(layer for layer in path.layers if layer not in layers)
        found = []
        for layer in layers:
            for policy in layer.policies:
                source = policy.source
                written = policy.document.as_dict()["Statement"]
                statements = written if isinstance(written, list) else [written]
                for index, statement in enumerate(statements):
                    found.append(
                        Provenance(
                            source.policy_type,
                            source.policy_name,
                            source.version,
                            source.via,
                            index,
                            statement,
                            source.layer.value,
                        )
                    )
        return found


def named_at_of(row: Any) -> int | None:
    """Since which position a user or role fact's entity has held its name (``name_binds``).

    None for a fact projected before the temporal index recorded it (rebuild the copy): a
    trust policy then admits no one by that exact name, which never admits too much.
    """
    value = json.loads(row["payload"]).get("named_at")
    return int(value) if value is not None else None


def trust_position_of(row: Any) -> int:
    """The position of the event that wrote a ``role`` fact's trust policy (``name_binds``).

    0 for a fact projected before the temporal index recorded it (rebuild the copy): its
    exact names then admit no one, as for ``named_at_of``.
    """
    return int(json.loads(row["payload"]).get("trust_position") or 0)


def _attachment(item: list[Any]) -> Attachment:
    policy_type, policy_name, policy_id = item
    return Attachment(PolicyType(policy_type), policy_name, UUID(policy_id) if policy_id else None)


def _instant(micros: int | None) -> datetime | None:
    return from_micros(micros) if micros is not None else None


def _entrustment(row: Any) -> EntrustmentState:
    """The contract an ``entrustment`` fact held, with the live index's revocation words."""
    payload = json.loads(row["payload"])
    entrustment_id = UUID(row["subject"])
    revoked = None
    if payload["revoked"]:
        why = payload["revoked_reason"]
        revoked = contract_revoked(
            entrustment_arn(row["account_id"], entrustment_id), payload["contract_ref"], why
        )
    return EntrustmentState(
        entrustment_id,
        row["account_id"],
        payload["trustee_account_id"],
        payload["contract_ref"],
        payload["scope"],
        _instant(payload["starts_at"]),
        _instant(payload["ends_at"]),
        revoked,
        bool(payload["ended"]),
    )


def _session_record(payload: dict[str, Any]) -> SessionRecord:
    source_user = payload["source_user_id"]
    return SessionRecord(
        payload["access_key_id"],
        payload["account_id"],
        UUID(payload["role_id"]),
        payload["role_name"],
        payload["role_session_name"],
        payload["source_arn"],
        payload["source_account_id"],
        UUID(source_user) if source_user is not None else None,
        payload["parent_access_key_id"],
        payload["session_policy"],
        from_micros(payload["issued_at"]),
        from_micros(payload["expiration"]),
    )


class _LineageAt:
    """``LineageFacts`` over the temporal index at one instant, inside one read transaction.

    Reading a session's own fact tells which links ``resolve_session`` will ask about next
    (its account and role, and for a first generation its source account and user); they
    are fetched together, in one statement, and answered from here.
    """

    def __init__(self, reader: AsOfReader, cursor: Any, at: int) -> None:
        self.reader = reader
        self.cursor = cursor
        self.at = at
        self.records: dict[str, SessionRecord] = {}
        self._facts: dict[tuple[str, str], Any] = {}

    def _fetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        missing = list(dict.fromkeys(p for p in pairs if p not in self._facts))
        for pair in missing:
            self._facts[pair] = None
        for row in self.reader._alive_pairs(self.cursor, missing, self.at):
            self._facts[(row["kind"], row["subject"])] = row

    def _fact(self, kind: str, subject: str) -> Any:
        if (kind, subject) not in self._facts:
            self._fetch([(kind, subject)])
        return self._facts[(kind, subject)]

    def session(self, access_key_id: str) -> tuple[SessionRecord | None, str | None]:
        row = self.reader._latest(self.cursor, "session", access_key_id, self.at)
        if row is None:
            return None, f"the session {access_key_id} did not exist then"
        record = _session_record(json.loads(row["payload"]))
        self.records[access_key_id] = record
        role = str(record.role_id)
        # a managed role has an entrustment fact instead of a role fact (same id): ask for
        # both, and for what its delegations reach, rather than spend a statement to know
        links = [
            ("account", record.account_id),
            ("role", role),
            ("attachments", role),
            ("entrustment", role),
            ("entrustment_delegations", role),
        ]
        if record.parent_access_key_id is None:
            links.append(("account", record.source_account_id))
            if record.source_user_id is not None:
                user = str(record.source_user_id)
                links.extend((("user", user), ("memberships", user)))
        self._fetch(links)
        valid_to = row["valid_to"]
        if valid_to is not None and int(valid_to) <= self.at:
            return record, f"the session {access_key_id} was revoked"
        return record, None

    def role(self, role_id: UUID) -> RoleState | None:
        row = self._fact("role", str(role_id))
        if row is None:
            managed = self._fact("entrustment", str(role_id))
            if managed is None:
                return None
            # a managed role: no policies of its own, no revocation horizon (ordinary role
            # commands refuse it); its layer is the entrustment's scope
            return RoleState(
                role_id, managed["account_id"], managed["object"], None, (), _entrustment(managed)
            )
        horizon = json.loads(row["payload"])["sessions_revoked_before"]
        attached = self._fact("attachments", str(role_id))
        items = json.loads(attached["payload"])["items"] if attached is not None else []
        return RoleState(
            role_id,
            row["account_id"],
            row["object"],
            from_micros(horizon) if horizon is not None else None,
            tuple(_attachment(item) for item in items),
        )

    def user_exists(self, user_id: UUID) -> bool:
        return self._fact("user", str(user_id)) is not None

    def account_open(self, account_id: str) -> bool:
        return self._fact("account", account_id) is not None

    def role_layer(self, role: RoleState) -> PolicySet:
        if role.entrustment is not None:
            return self.reader._scope_layer(role.entrustment, role.arn)
        return self.reader._role_layer(self.cursor, role, self.at)

    def delegations(
        self, entrustment: EntrustmentState, user_id: UUID, at: datetime
    ) -> tuple[tuple[DelegationState, ...], str]:
        """As ``DecisionIndex.live_delegations``, from the facts at T: the entrustment's
        delegations in grant order, each reaching the user if it names the user, or a group
        that existed then and the user was in then (a user that did not exist then is in no
        group); the same words for the dead ones."""
        user = str(user_id)
        listed = self._fact("entrustment_delegations", str(entrustment.entrustment_id))
        ids: list[str] = json.loads(listed["payload"])["items"] if listed is not None else []
        exists = self._fact("user", user) is not None
        joined = self._fact("memberships", user) if exists else None
        group_ids = [g for g, _ in json.loads(joined["payload"])["items"]] if joined else []
        self._fetch([*(("delegation", d) for d in ids), *(("group", g) for g in group_ids)])
        groups = {g for g in group_ids if self._fact("group", g) is not None}
        live: list[DelegationState] = []
        dead: list[str] = []
        for delegation_id in ids:
            row = self._fact("delegation", delegation_id)
            if row is None:  # opened with the list: never so, unless the table was cut
                continue
            d = json.loads(row["payload"])
            if d["grantee_kind"] == "user":
                reaches = d["grantee_id"] == user
            else:
                reaches = d["grantee_id"] in groups
            if not reaches:
                continue
            arn = delegation_arn(row["account_id"], delegation_id)
            ends_at = _instant(d["ends_at"])
            if d["revoked"]:
                dead.append(f"delegation {arn} was revoked")
            elif ends_at is not None and at >= ends_at:
                dead.append(f"delegation {arn} ended at {format_instant(ends_at)}")
            elif not exists:
                dead.append("the user no longer exists")
            else:
                live.append(
                    DelegationState(
                        UUID(delegation_id),
                        row["account_id"],
                        d["grantee_arn"],
                        d["scope"],
                        ends_at,
                    )
                )
        why = "; ".join(dead) or "no delegation under it names the user or one of its groups"
        return tuple(live), why

    def delegation_layer(self, delegations: tuple[DelegationState, ...]) -> PolicySet:
        return self.reader._delegation_layer(delegations)

    def session_layer(self, record: SessionRecord) -> PolicySet | None:
        return self.reader._session_layer(record)

    # -- RoleReachFacts: the roles "could P" may go through, at T ------------------------------
    def roles_in(self, account_id: str | None) -> list[AssumableRole]:
        """The roles of ``account_id`` alive at T by name (None: of every account open at T,
        by account then name), with their attachments or delegations' list fetched at once."""
        reader, at = self.reader, self.at
        params: tuple[Any, ...]
        if account_id is None:
            statement, params = _ALL_ROLES_AT, (at, at)
        else:
            statement, params = _ROLES_AT, (account_id, at, at)
        rows = reader.store.execute(self.cursor, statement, params).fetchall()
        rows.sort(key=lambda row: (row["account_id"], row["object"]))
        if account_id is None:
            self._fetch(("account", a) for a in {row["account_id"] for row in rows})
            rows = [row for row in rows if self.account_open(row["account_id"])]
        self._fetch(
            ("attachments" if row["kind"] == "role" else "entrustment_delegations", row["subject"])
            for row in rows
        )
        roles = []
        for row in rows:
            role_id, account = UUID(row["subject"]), row["account_id"]
            if row["kind"] == "entrustment":
                terms = _entrustment(row)
                roles.append(AssumableRole.of(role_id, account, row["object"], None, terms))
            else:
                trust = reader._trust(json.loads(row["payload"])["trust_policy"])
                position = trust_position_of(row)
                roles.append(
                    AssumableRole.of(role_id, account, row["object"], trust, None, position)
                )
        return roles

    def assumable_role_layer(self, role: AssumableRole) -> PolicySet:
        if role.entrustment is not None:
            return self.reader._scope_layer(role.entrustment, role.arn)
        attached = self._fact("attachments", str(role.role_id))
        items = json.loads(attached["payload"])["items"] if attached is not None else []
        attachments = tuple(_attachment(item) for item in items)
        custom = self.reader._custom_versions(self.cursor, attachments, self.at)
        return self.reader.compiler.role_layer(role.arn, attachments, custom.get)
