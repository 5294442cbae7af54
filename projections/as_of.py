"""Decisions and effective permissions at any instant, from the facts alive then.

``AsOfReader`` reads only the facts of one principal alive at T. At most one fact of a kind is
alive per subject at any instant (see ``temporal_index``), so each lookup is "the fact with
the greatest ``valid_from <= T``" — one descending step of an index per subject, then a check
that it was still alive at T: a handful of statements whose cost does not depend on the
length of history. It
assembles the identity layer with the same ``PolicyCompiler`` as the live index, and hands it
to the same ``domain.decisions.decide``. There is no replay: the log is read only by the
projection that writes the table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.arns import group_arn, parse_principal_arn, root_arn, user_arn
from domain.attachments import Attachment, PolicyType
from domain.decisions import Answer, Subject, SubjectKind, decide
from domain.evaluation import PolicySet, Request
from projections.ledger_time import to_micros
from projections.policy_sets import CustomVersion, GroupAttachments, PolicyCompiler
from projections.read_model_store import ReadModelStore

__all__ = ["AsOfReader", "PrincipalAt", "Provenance"]

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
_NAMED_AT = (
    "SELECT subject, object, account_id, payload, valid_to FROM {p}_facts"
    " WHERE kind = ? AND account_id = ? AND object = ? AND valid_from <= ?"
    " ORDER BY valid_from DESC, opened_position DESC LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class PrincipalAt:
    """A principal as it was at an instant: what the decision needs, and its user id."""

    subject: Subject
    user_id: UUID | None


@dataclass(frozen=True, slots=True)
class Provenance:
    """One statement that applied to the principal, and how it reached it."""

    policy_type: str
    policy_name: str
    version: str | None
    via: str | None
    statement: int
    document: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy_type": self.policy_type,
            "policy_name": self.policy_name,
            "version": self.version,
            "via": self.via,
            "statement_index": self.statement,
            "statement": self.document,
        }


class AsOfReader:
    """Answers "what held at T" from one copy of the temporal index."""

    def __init__(self, store: ReadModelStore, compiler: PolicyCompiler | None = None) -> None:
        self.store = store
        self.compiler = compiler or PolicyCompiler()

    # -- facts alive at T ----------------------------------------------------------------------
    def _alive(self, cursor: Any, kind: str, subjects: Sequence[str], at: int) -> list[Any]:
        """The fact of ``kind`` alive at ``at`` for each of ``subjects`` that had one."""
        if not subjects:
            return []
        template = AT_POSTGRES if self.store.dialect.is_postgres else AT_SQLITE
        statement = template.replace("{values}", ", ".join("(?)" for _ in subjects))
        return list(self.store.execute(cursor, statement, (*subjects, kind, at, at)).fetchall())

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
        """The principal an ARN named at ``at``, or None and why not."""
        parsed = parse_principal_arn(arn)
        t = to_micros(at)
        with self.store.transaction(commit=False) as cursor:
            if not self._account_open(cursor, parsed.account_id, t):
                return None, f"account {parsed.account_id} was not open then"
            if parsed.kind == "root":
                subject = Subject(parsed.account_id, root_arn(parsed.account_id), SubjectKind.ROOT)
                return PrincipalAt(subject, None), ""
            if parsed.kind != "user":
                return None, f"{parsed.kind} principals have no decisions of their own yet"
            row = self._named(cursor, "user", parsed.account_id, parsed.name or "", t)
            if row is None:
                return None, f"no user was named {arn} then"
            user_id = UUID(row["subject"])
            return self._user(cursor, user_id, parsed.account_id, parsed.name or "", t), ""

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
            return self._user(cursor, user_id, row["account_id"], row["object"], t), ""

    def root_of(self, account_id: str, at: datetime) -> tuple[PrincipalAt | None, str]:
        with self.store.transaction(commit=False) as cursor:
            if not self._account_open(cursor, account_id, to_micros(at)):
                return None, f"account {account_id} was not open then"
        return PrincipalAt(Subject(account_id, root_arn(account_id), SubjectKind.ROOT), None), ""

    def key_status(self, access_key_id: str, at: datetime) -> str | None:
        """The AccessKey's status at ``at``, or None when it did not exist then."""
        with self.store.transaction(commit=False) as cursor:
            rows = self._alive(cursor, "access_key", [access_key_id], to_micros(at))
        return str(json.loads(rows[-1]["payload"])["status"]) if rows else None

    def _user(
        self, cursor: Any, user_id: UUID, account_id: str, user_name: str, at: int
    ) -> PrincipalAt:
        layer = self._identity_layer(cursor, str(user_id), at)
        subject = Subject(account_id, user_arn(account_id, user_name), SubjectKind.USER, layer)
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
        policy_ids = sorted(
            {str(a.policy_id) for rows in attachments.values() for a in rows if a.policy_id}
        )
        defaults = {
            row["subject"]: json.loads(row["payload"])["default_version"]
            for row in self._alive(cursor, "policy", policy_ids, at)
        }
        documents = self._documents(cursor, sorted(defaults.items()))
        custom = {
            UUID(policy_id): CustomVersion(
                UUID(policy_id), version, documents[(policy_id, version)]
            )
            for policy_id, version in defaults.items()
        }
        group_layers = [
            GroupAttachments(
                group_arn(groups[gid]["account_id"], groups[gid]["object"]),
                tuple(attachments.get(gid, ())),
            )
            for gid in live_groups
        ]
        return self.compiler.identity_layer(attachments.get(user_id, ()), group_layers, custom.get)

    # -- answers -------------------------------------------------------------------------------
    def decide(self, principal: PrincipalAt, request: Request) -> Answer:
        """The same evaluator as live decisions, over the layers the principal had then."""
        return decide(principal.subject, request)

    def effective_permissions(self, principal: PrincipalAt) -> list[Provenance]:
        """Every statement that applied to the principal, with the policy and group it came by."""
        layer = principal.subject.identity
        if layer is None:
            return []
        found = []
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
                    )
                )
        return found


def _attachment(item: list[Any]) -> Attachment:
    policy_type, policy_name, policy_id = item
    return Attachment(PolicyType(policy_type), policy_name, UUID(policy_id) if policy_id else None)
