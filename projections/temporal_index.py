"""The temporal index: every fact a decision depends on, as a half-open interval of ledger time.

One table of facts. A fact is ``(kind, subject, object)`` with a payload, alive from
``valid_from`` (the ledger time of the event that opened it, ``opened_position``) until
``valid_to`` (of the event that closed it, ``closed_position``; NULL while it is alive).
It is alive at T when ``valid_from <= T < valid_to``. Times are microseconds since the epoch.

| kind | subject | object | payload |
|---|---|---|---|
| ``account`` | account id | ``""`` | name |
| ``user`` | user id | user name | display name |
| ``access_key`` | AccessKey id | user id (``""`` for the root key) | status |
| ``group`` | group id | group name | |
| ``memberships`` | user id | ``""`` | the user's groups, in the order it joined them |
| ``attachments`` | user or group id | ``""`` | its attached policies, in the order attached |
| ``policy`` | policy id | policy name | default version |
| ``policy_version`` | policy id | version id | |

A change (a rename, a key disabled, a group joined, a policy attached, a new default version)
closes the fact and opens its successor at the same instant, so **at most one fact of a kind
is alive per subject at any instant**. That is what keeps an as-of read independent of the
length of history: "the fact of this subject at T" is the one with the greatest
``valid_from <= T`` — one descending step of the ``(kind, subject, valid_from)`` index — and
it answers if it was still alive at T. Memberships and attachments are therefore stored as
the whole (small, bounded by RAM's limits) set per principal, not one interval per item.
Policy documents are immutable per version and live once in ``{p}_documents``.

Nothing else is stored: "who could do what at T" is always computed by the evaluator from
the facts alive at T.

The projection keeps the open facts in memory (loaded from the table when it starts), buffers
a batch's inserts and closes, and writes them with ``executemany`` in the worker's
transaction, together with the batch's tracking position.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from domain.identifiers import account_aggregate_id
from projections.ledger_time import to_micros
from projections.read_model_store import ReadModelStore
from projections.sql_projection import SqlProjection

__all__ = ["FACTS_DDL", "Fact", "TemporalIndexProjection"]

FACTS_DDL = [
    "CREATE TABLE IF NOT EXISTS {p}_facts ("
    " kind TEXT NOT NULL, subject TEXT NOT NULL, object TEXT NOT NULL,"
    " account_id TEXT NOT NULL, payload TEXT NOT NULL,"
    " valid_from BIGINT NOT NULL, valid_to BIGINT,"
    " opened_position BIGINT NOT NULL, closed_position BIGINT)",
    # "The fact of this subject at T": the greatest valid_from <= T, one index step.
    # Also the key of a fact (unique), by which a close finds it exactly.
    "CREATE UNIQUE INDEX IF NOT EXISTS {i}_facts_subject_at"
    " ON {p}_facts (kind, subject, valid_from, opened_position)",
    # "Which entity had this name in this account at T".
    "CREATE INDEX IF NOT EXISTS {i}_facts_name_at"
    " ON {p}_facts (kind, account_id, object, valid_from, opened_position)",
    # Loading the open facts at start, without reading history.
    "CREATE INDEX IF NOT EXISTS {i}_facts_open ON {p}_facts (kind) WHERE valid_to IS NULL",
    "CREATE TABLE IF NOT EXISTS {p}_documents ("
    " policy_id TEXT NOT NULL, version_id TEXT NOT NULL, document TEXT NOT NULL,"
    " PRIMARY KEY (policy_id, version_id))",
]

_FACT_COLUMNS = (
    "kind",
    "subject",
    "object",
    "account_id",
    "payload",
    "valid_from",
    "valid_to",
    "opened_position",
    "closed_position",
)
_CLOSE = (
    "UPDATE {p}_facts SET valid_to = ?, closed_position = ?"
    " WHERE kind = ? AND subject = ? AND valid_from = ? AND opened_position = ?"
)


# PostgreSQL: many closes in one statement ({values}: one typed row of placeholders each).
_CLOSE_MANY = (
    "UPDATE {p}_facts AS f SET valid_to = v.valid_to, closed_position = v.closed_position"
    " FROM (VALUES {values})"
    " AS v(valid_to, closed_position, kind, subject, valid_from, opened_position)"
    " WHERE f.kind = v.kind AND f.subject = v.subject AND f.valid_from = v.valid_from"
    " AND f.opened_position = v.opened_position"
)


@dataclass(slots=True)
class Fact:
    kind: str
    subject: str
    object: str
    account_id: str
    payload: dict[str, Any]
    valid_from: int
    opened_position: int
    valid_to: int | None = None
    closed_position: int | None = None
    persisted: bool = field(default=False, repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.subject, self.object)


class TemporalIndexProjection(SqlProjection):
    """Turns ledger events into opened and closed fact intervals."""

    name: ClassVar[str] = "temporal"
    ddl: ClassVar[list[str]] = FACTS_DDL

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, str], Fact] = {}
        self._new: list[Fact] = []
        self._closes: list[tuple[int, int, str, str, int, int]] = []
        self._documents: list[tuple[str, str, str]] = []
        self._accounts: dict[UUID, str] = {}  # account aggregate id → account id
        self._owners: dict[str, str] = {}  # user, group or policy id → its account id
        self._user_keys: dict[str, set[str]] = {}
        self._objects: dict[tuple[str, str], set[str]] = {}  # (kind, subject) → open objects
        self._handlers: dict[str, Callable[[Any, int, int], None]] = {
            "mandate:AccountOpened.v1": self._account_opened,
            "mandate:AccountClosed.v1": self._account_closed,
            "mandate:RootAccessKeyRotated.v1": self._root_key_rotated,
            "mandate:UserCreated.v1": self._user_created,
            "mandate:UserUpdated.v1": self._user_updated,
            "mandate:UserDeleted.v1": self._user_deleted,
            "mandate:AccessKeyCreated.v1": self._key_created,
            "mandate:AccessKeyDisabled.v1": self._key_status("Inactive"),
            "mandate:AccessKeyEnabled.v1": self._key_status("Active"),
            "mandate:AccessKeyDeleted.v1": self._key_deleted,
            "mandate:UserAddedToGroup.v1": self._added_to_group,
            "mandate:UserRemovedFromGroup.v1": self._removed_from_group,
            "mandate:User.PolicyAttached.v1": self._attached("user"),
            "mandate:User.PolicyDetached.v1": self._detached("user"),
            "mandate:GroupCreated.v1": self._group_created,
            "mandate:GroupDeleted.v1": self._group_deleted,
            "mandate:Group.PolicyAttached.v1": self._attached("group"),
            "mandate:Group.PolicyDetached.v1": self._detached("group"),
            "mandate:PolicyCreated.v1": self._policy_created,
            "mandate:PolicyVersionCreated.v1": self._policy_version_created,
            "mandate:DefaultPolicyVersionSet.v1": self._default_version_set,
            "mandate:PolicyVersionDeleted.v1": self._policy_version_deleted,
            "mandate:PolicyDeleted.v1": self._policy_deleted,
        }

    # -- the worker's protocol -----------------------------------------------------------------
    def load(self, store: ReadModelStore, cursor: Any) -> None:
        self.discard()
        self._open = {}
        self._accounts = {}
        self._owners = {}
        self._user_keys = {}
        self._objects = {}
        rows = store.execute(
            cursor,
            "SELECT kind, subject, object, account_id, payload, valid_from, opened_position"
            " FROM {p}_facts WHERE valid_to IS NULL",
        ).fetchall()
        for row in rows:
            fact = Fact(
                row["kind"],
                row["subject"],
                row["object"],
                row["account_id"],
                json.loads(row["payload"]),
                int(row["valid_from"]),
                int(row["opened_position"]),
                persisted=True,
            )
            self._remember(fact)

    def apply(self, event: Any, position: int, ledger_time: datetime) -> None:
        handler = self._handlers.get(type(event).TOPIC)
        if handler is not None:
            handler(event, position, to_micros(ledger_time))

    def flush(self, store: ReadModelStore, cursor: Any) -> None:
        self._write_closes(store, cursor)
        store.insert_rows(
            cursor, "_documents", ("policy_id", "version_id", "document"), self._documents
        )
        store.insert_rows(
            cursor,
            "_facts",
            _FACT_COLUMNS,
            [
                (
                    f.kind,
                    f.subject,
                    f.object,
                    f.account_id,
                    json.dumps(f.payload, sort_keys=True, separators=(",", ":")),
                    f.valid_from,
                    f.valid_to,
                    f.opened_position,
                    f.closed_position,
                )
                for f in self._new
            ],
        )
        for fact in self._new:
            fact.persisted = True
        self._new = []
        self._closes = []
        self._documents = []

    def _write_closes(self, store: ReadModelStore, cursor: Any) -> None:
        """Close the earlier facts this batch ended: on PostgreSQL one UPDATE per 500 (a
        statement per row would be a round trip per row), on SQLite ``executemany``."""
        if not store.dialect.is_postgres:
            store.executemany(cursor, _CLOSE, self._closes)
            return
        for start in range(0, len(self._closes), 500):
            chunk = self._closes[start : start + 500]
            values = ", ".join(
                "(?::bigint, ?::bigint, ?::text, ?::text, ?::bigint, ?::bigint)" for _ in chunk
            )
            statement = _CLOSE_MANY.replace("{values}", values)
            store.execute(cursor, statement, [value for row in chunk for value in row])

    def discard(self) -> None:
        self._new = []
        self._closes = []
        self._documents = []

    # -- opening and closing -------------------------------------------------------------------
    def _remember(self, fact: Fact) -> None:
        self._open[fact.key] = fact
        self._objects.setdefault((fact.kind, fact.subject), set()).add(fact.object)
        if fact.kind == "account":
            self._accounts[account_aggregate_id(fact.subject)] = fact.subject
        elif fact.kind in ("user", "group", "policy"):
            self._owners[fact.subject] = fact.account_id
        elif fact.kind == "access_key" and fact.object:
            self._user_keys.setdefault(fact.object, set()).add(fact.subject)

    def _open_fact(
        self,
        kind: str,
        subject: str,
        obj: str,
        account_id: str,
        payload: dict[str, Any],
        position: int,
        at: int,
    ) -> None:
        fact = Fact(kind, subject, obj, account_id, payload, at, position)
        self._remember(fact)
        self._new.append(fact)

    def _close(self, kind: str, subject: str, obj: str, position: int, at: int) -> Fact | None:
        fact = self._open.pop((kind, subject, obj), None)
        if fact is None:
            return None
        self._objects.get((kind, subject), set()).discard(obj)
        if fact.persisted:
            self._closes.append(
                (at, position, kind, subject, fact.valid_from, fact.opened_position)
            )
        else:
            fact.valid_to = at
            fact.closed_position = position
        if kind == "access_key" and fact.object:
            self._user_keys.get(fact.object, set()).discard(subject)
        return fact

    def _replace(
        self, kind: str, subject: str, obj: str, position: int, at: int, **changes: Any
    ) -> None:
        old = self._close(kind, subject, obj, position, at)
        if old is not None:
            self._open_fact(
                kind, subject, obj, old.account_id, {**old.payload, **changes}, position, at
            )

    def _close_all(self, kind: str, subject: str, position: int, at: int) -> None:
        for obj in sorted(self._objects.get((kind, subject), ())):
            self._close(kind, subject, obj, position, at)

    # -- accounts and keys ---------------------------------------------------------------------
    def _account_opened(self, e: Any, position: int, at: int) -> None:
        account = e.account_id
        self._open_fact("account", account, "", account, {"name": e.name}, position, at)
        self._open_fact(
            "access_key", e.root_access_key_id, "", account, {"status": "Active"}, position, at
        )

    def _account_closed(self, e: Any, position: int, at: int) -> None:
        account = self._accounts[e.originator_id]
        self._close("account", account, "", position, at)

    def _root_key_rotated(self, e: Any, position: int, at: int) -> None:
        account = self._accounts[e.originator_id]
        self._close("access_key", e.previous_access_key_id, "", position, at)
        self._open_fact(
            "access_key", e.access_key_id, "", account, {"status": "Active"}, position, at
        )

    def _key_created(self, e: Any, position: int, at: int) -> None:
        user = str(e.originator_id)
        self._open_fact(
            "access_key",
            e.access_key_id,
            user,
            self._owners[user],
            {"status": "Active"},
            position,
            at,
        )

    def _key_status(self, status: str) -> Callable[[Any, int, int], None]:
        def handler(e: Any, position: int, at: int) -> None:
            user = str(e.originator_id)
            self._replace("access_key", e.access_key_id, user, position, at, status=status)

        return handler

    def _key_deleted(self, e: Any, position: int, at: int) -> None:
        self._close("access_key", e.access_key_id, str(e.originator_id), position, at)

    # -- users, groups, memberships ------------------------------------------------------------
    def _user_created(self, e: Any, position: int, at: int) -> None:
        self._open_fact(
            "user",
            str(e.originator_id),
            e.user_name,
            e.account_id,
            {"display_name": e.display_name},
            position,
            at,
        )

    def _user_updated(self, e: Any, position: int, at: int) -> None:
        user = str(e.originator_id)
        old = self._close("user", user, e.previous_user_name, position, at)
        account = old.account_id if old is not None else self._owners[user]
        self._open_fact(
            "user", user, e.user_name, account, {"display_name": e.display_name}, position, at
        )

    def _user_deleted(self, e: Any, position: int, at: int) -> None:
        user = str(e.originator_id)
        self._close_all("user", user, position, at)
        self._close_all("memberships", user, position, at)
        self._close_all("attachments", user, position, at)
        for key_id in sorted(self._user_keys.pop(user, set())):
            self._close("access_key", key_id, user, position, at)

    def _set_fact(
        self,
        kind: str,
        subject: str,
        position: int,
        at: int,
        change: Callable[[list[Any]], None],
        **extra: Any,
    ) -> None:
        """Replace the set-valued fact of ``subject`` by its ``change``d successor."""
        old = self._close(kind, subject, "", position, at)
        items: list[Any] = list(old.payload["items"]) if old is not None else []
        change(items)
        payload = {"items": items, **extra}
        self._open_fact(kind, subject, "", self._owners[subject], payload, position, at)

    def _added_to_group(self, e: Any, position: int, at: int) -> None:
        entry = [str(e.group_id), e.group_name]
        self._set_fact(
            "memberships", str(e.originator_id), position, at, lambda items: items.append(entry)
        )

    def _removed_from_group(self, e: Any, position: int, at: int) -> None:
        group = str(e.group_id)

        def remove(items: list[Any]) -> None:
            items[:] = [item for item in items if item[0] != group]

        self._set_fact("memberships", str(e.originator_id), position, at, remove)

    def _group_created(self, e: Any, position: int, at: int) -> None:
        self._open_fact("group", str(e.originator_id), e.group_name, e.account_id, {}, position, at)

    def _group_deleted(self, e: Any, position: int, at: int) -> None:
        group = str(e.originator_id)
        self._close_all("group", group, position, at)
        self._close_all("attachments", group, position, at)

    # -- attachments and policies --------------------------------------------------------------
    def _attached(self, holder_kind: str) -> Callable[[Any, int, int], None]:
        def handler(e: Any, position: int, at: int) -> None:
            policy_id = str(e.policy_id) if e.policy_id is not None else None
            entry = [e.policy_type, e.policy_name, policy_id]
            holder = str(e.originator_id)
            self._set_fact(
                "attachments",
                holder,
                position,
                at,
                lambda items: items.append(entry),
                holder=holder_kind,
            )

        return handler

    def _detached(self, holder_kind: str) -> Callable[[Any, int, int], None]:
        def handler(e: Any, position: int, at: int) -> None:
            key = [e.policy_type, e.policy_name]

            def remove(items: list[Any]) -> None:
                items[:] = [item for item in items if item[:2] != key]

            holder = str(e.originator_id)
            self._set_fact("attachments", holder, position, at, remove, holder=holder_kind)

        return handler

    def _policy_created(self, e: Any, position: int, at: int) -> None:
        policy = str(e.originator_id)
        self._open_fact(
            "policy", policy, e.policy_name, e.account_id, {"default_version": "v1"}, position, at
        )
        self._open_fact("policy_version", policy, "v1", e.account_id, {}, position, at)
        self._documents.append((policy, "v1", e.document))

    def _set_default(self, policy: str, version_id: str, position: int, at: int) -> None:
        names = self._objects.get(("policy", policy))
        if not names or ("policy_version", policy, version_id) not in self._open:
            return
        self._replace("policy", policy, next(iter(names)), position, at, default_version=version_id)

    def _policy_version_created(self, e: Any, position: int, at: int) -> None:
        policy = str(e.originator_id)
        self._open_fact(
            "policy_version", policy, e.version_id, self._owners[policy], {}, position, at
        )
        self._documents.append((policy, e.version_id, e.document))
        if e.set_as_default:
            self._set_default(policy, e.version_id, position, at)

    def _default_version_set(self, e: Any, position: int, at: int) -> None:
        self._set_default(str(e.originator_id), e.version_id, position, at)

    def _policy_version_deleted(self, e: Any, position: int, at: int) -> None:
        self._close("policy_version", str(e.originator_id), e.version_id, position, at)

    def _policy_deleted(self, e: Any, position: int, at: int) -> None:
        policy = str(e.originator_id)
        self._close_all("policy", policy, position, at)
        self._close_all("policy_version", policy, position, at)
