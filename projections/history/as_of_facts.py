"""The temporal index's facts alive at an instant: the statements that read them, and rows.

``AsOfFacts`` is the port the as-of answers read through. At most one fact of a kind is alive
per subject at any instant (see ``temporal_index``), so each lookup is "the fact with the
greatest ``valid_from <= T``": one descending step of an index per subject, then a check that
it was still alive at T — a cost that does not depend on the length of history. The row
decoders turn a fact's JSON payload into the domain's records. Kept apart from the decision
assembly (``as_of``) so the SQL and its index-driven plans are read, and tested, in one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from mandate.domain.common.arns import entrustment_arn
from mandate.domain.common.ledger_time import from_micros
from mandate.domain.permissions.attachments import Attachment, PolicyType
from mandate.domain.sts.session_lineage import EntrustmentState, SessionRecord, contract_revoked
from mandate.projections.store.read_model_store import ReadModelStore
from mandate.projections.store.statements import Fragment

__all__ = [
    "ALL_ROLES_AT",
    "AT_PAIRS_POSTGRES",
    "AT_PAIRS_SQLITE",
    "AT_POSTGRES",
    "AT_SQLITE",
    "LATEST_AT",
    "NAMED_AT",
    "ROLES_AT",
    "AsOfFacts",
    "attachment_of",
    "entrustment_of",
    "instant_of",
    "named_at_of",
    "session_record_of",
    "trust_position_of",
]


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
NAMED_AT = (
    "SELECT subject, object, account_id, payload, valid_to FROM {p}_facts"
    " WHERE kind = ? AND account_id = ? AND object = ? AND valid_from <= ?"
    " ORDER BY valid_from DESC, opened_position DESC LIMIT 1"
)

# The roles (ordinary and managed) alive at T, of one account or of all: a range of the
# (kind, account_id, object, valid_from) index per kind — the account's role history, not
# the whole table's; "of all" (effective permissions) reads every role fact.
ROLES_AT = (
    "SELECT kind, subject, object, account_id, payload, valid_to FROM {p}_facts"
    " WHERE kind IN ('role', 'entrustment') AND account_id = ? AND valid_from <= ?"
    " AND (valid_to IS NULL OR valid_to > ?)"
)
ALL_ROLES_AT = (
    "SELECT kind, subject, object, account_id, payload, valid_to FROM {p}_facts"
    " WHERE kind IN ('role', 'entrustment') AND valid_from <= ?"
    " AND (valid_to IS NULL OR valid_to > ?)"
)


_DOCUMENTS = "SELECT policy_id, version_id, document FROM {p}_documents WHERE {pairs}"
_DOCUMENT = "(policy_id = ? AND version_id = ?)"


class AsOfFacts:
    """Reads one copy of the temporal index: the facts alive at T, and policy documents.

    A statement with a ``VALUES`` list is composed (and rendered) once per template and
    length, then kept.
    """

    def __init__(self, store: ReadModelStore) -> None:
        self.store = store
        self._composed: dict[tuple[str, int], Fragment] = {}

    def _listing(self, template: str, rows: int, width: int, slot: str = "values") -> Fragment:
        key = (template, rows)
        statement = self._composed.get(key)
        if statement is None:
            if len(self._composed) >= 4096:
                self._composed.clear()
            dialect = self.store.dialect
            if slot == "values":
                piece = dialect.values(rows, width)
            else:
                piece = dialect.join(" OR ", [self.store.compose(_DOCUMENT)] * rows)
            composed = self.store.compose(template, **{slot: piece})
            statement = self._composed[key] = self.store.dialect.frozen(composed)
        return statement

    def alive(self, cursor: Any, kind: str, subjects: Sequence[str], at: int) -> list[Any]:
        """The fact of ``kind`` alive at ``at`` for each of ``subjects`` that had one."""
        if not subjects:
            return []
        template = AT_POSTGRES if self.store.dialect.is_postgres else AT_SQLITE
        statement = self._listing(template, len(subjects), 1)
        return list(self.store.execute(cursor, statement, (*subjects, kind, at, at)).fetchall())

    def alive_pairs(self, cursor: Any, pairs: Sequence[tuple[str, str]], at: int) -> list[Any]:
        """The fact alive at ``at`` of each ``(kind, subject)`` that had one, in one statement."""
        if not pairs:
            return []
        template = AT_PAIRS_POSTGRES if self.store.dialect.is_postgres else AT_PAIRS_SQLITE
        statement = self._listing(template, len(pairs), 2)
        params = [value for pair in pairs for value in pair]
        return list(self.store.execute(cursor, statement, (*params, at, at)).fetchall())

    def latest(self, cursor: Any, kind: str, subject: str, at: int) -> Any:
        """The subject's fact opened last at or before ``at``, alive then or not."""
        return self.store.execute(cursor, LATEST_AT, (kind, subject, at)).fetchone()

    def named(self, cursor: Any, kind: str, account_id: str, name: str, at: int) -> Any:
        """The entity of ``kind`` that had ``name`` in the account at ``at``, if any."""
        row = self.store.execute(cursor, NAMED_AT, (kind, account_id, name, at)).fetchone()
        alive = row is not None and (row["valid_to"] is None or row["valid_to"] > at)
        return row if alive else None

    def documents(self, cursor: Any, versions: Sequence[tuple[str, str]]) -> dict[Any, str]:
        """The documents of ``(policy_id, version_id)`` pairs, in one statement."""
        if not versions:
            return {}
        statement = self._listing(_DOCUMENTS, len(versions), 2, slot="pairs")
        params = [value for pair in versions for value in pair]
        rows = self.store.execute(cursor, statement, params).fetchall()
        return {(row["policy_id"], row["version_id"]): row["document"] for row in rows}

    def account_open(self, cursor: Any, account_id: str, at: int) -> bool:
        return bool(self.alive(cursor, "account", [account_id], at))

    def roles(self, cursor: Any, account_id: str | None, at: int) -> list[Any]:
        """The role and entrustment facts alive at ``at`` of one account (None: of all)."""
        if account_id is None:
            return list(self.store.execute(cursor, ALL_ROLES_AT, (at, at)).fetchall())
        return list(self.store.execute(cursor, ROLES_AT, (account_id, at, at)).fetchall())


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


def attachment_of(item: list[Any]) -> Attachment:
    policy_type, policy_name, policy_id = item
    return Attachment(PolicyType(policy_type), policy_name, UUID(policy_id) if policy_id else None)


def instant_of(micros: int | None) -> datetime | None:
    return from_micros(micros) if micros is not None else None


def entrustment_of(row: Any) -> EntrustmentState:
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
        instant_of(payload["starts_at"]),
        instant_of(payload["ends_at"]),
        revoked,
        bool(payload["ended"]),
    )


def session_record_of(payload: dict[str, Any]) -> SessionRecord:
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
