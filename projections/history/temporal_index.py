"""The temporal index: every fact a decision depends on, as a half-open interval of ledger time.

One table of facts. A fact is ``(kind, subject, object)`` with a payload, alive from
``valid_from`` (the ledger time of the event that opened it, ``opened_position``) until
``valid_to`` (of the event that closed it, ``closed_position``; NULL while it is alive).
It is alive at T when ``valid_from <= T < valid_to``. Times are microseconds since the epoch.

| kind | subject | object | payload |
|---|---|---|---|
| ``account`` | account id | ``""`` | name |
| ``user`` | user id | user name | display name, named at (the position it took the name) |
| ``access_key`` | AccessKey id | user id (``""`` for the root key) | status |
| ``group`` | group id | group name | |
| ``memberships`` | user id | ``""`` | the user's groups, in the order it joined them |
| ``attachments`` | user, group or role id | ``""`` | its attached policies, in the order attached |
| ``policy`` | policy id | policy name | default version |
| ``policy_version`` | policy id | version id | |
| ``role`` | role id | role name | description, trust policy, max session duration, |
| | | | sessions revoked before (µs, or null), named at and |
| | | | trust position (where it was created and its trust written) |
| ``session`` | AccessKey id | role session name | ``SessionIssued`` but the secret's hash |
| ``entrustment`` | entrustment id | managed role's name | trustee, scope, scope policies, |
| | | | contract, term, description, revoked |
| | | | (and the reason), ended |
| ``entrustment_delegations`` | entrustment id | ``""`` | its delegations' ids, in grant order |
| ``delegation`` | delegation id | grantee ARN | entrustment, grantee, scope, end, revoked |

A session fact's ``account_id`` is its role's account; its payload's instants (``issued_at``,
``expiration``) are microseconds, like ``sessions_revoked_before`` and an entrustment's or a
delegation's ``starts_at`` and ``ends_at``.

An entrustment is a *managed* role of its account A whose role id is the entrustment's id:
there is no ``role`` fact for it; readers take the role from the ``entrustment`` fact (its
``account_id`` is A, its object the role's name, so the name index finds it too). Nothing
under a contract is rewritten when it ends: ``EntrustmentAmended``, ``EntrustmentRevoked``
(with the reason its audit context gave) and ``EntrustmentEnded`` replace the entrustment's
fact by its successor, which stays open — a revoked or ended contract is a state as of T,
read in the same one step, not a missing fact — and ``DelegationRevoked`` likewise replaces
the delegation's fact. A delegation's ``account_id`` is the trustee's (B) and so is its
entrustment's list's; the list keeps revoked delegations (a refusal names them).

A change (a rename, a key disabled, a group joined, a policy attached, a new default version,
a role's description, trust or revocation horizon, a contract amended, revoked or ended, a
delegation granted or revoked) closes the fact and opens its successor at
the same instant, so **at most one fact of a kind is alive per subject at any instant**
(policy versions aside: a policy keeps several, one fact per version id, never looked up as
"the fact of the policy"). That is what keeps an as-of read independent of the length of
history: "the fact of this subject at T" is the one with the greatest ``valid_from <= T`` —
one descending step of the ``(kind, subject, valid_from)`` index — and it answers if it was
still alive at T. Memberships and attachments are therefore stored as the whole (small,
bounded by RAM's limits) set per principal, not one interval per item, and an
entrustment's delegations as the whole list of their ids. Policy documents
are immutable per version and live once in ``{p}_documents``.

A session's fact is opened by ``SessionIssued`` and closed only by ``SessionRevoked``: a
closed session fact means a revoked session. Its expiry is not an event; readers compare T
with the payload's ``expiration``, and the rest of its liveness (role deleted or its sessions
revoked, source user deleted, parent session dead, account closed) is decided by
``session_lineage`` from the facts of each link at T. As for every other kind, closing an
account closes only the account's fact. No secret and no secret hash is ever stored here.

Nothing else is stored: "who could do what at T" is always computed by the evaluator from
the facts alive at T.

The projection keeps the open facts in memory (loaded from the table when it starts), buffers
a batch's inserts and closes, and writes them with ``executemany`` in the worker's
transaction, together with the batch's tracking position. Sessions are many and short-lived,
so an open session fact is forgotten from memory once the ledger time passes its expiration
by ``SESSION_RETENTION`` (as the live index forgets it); a ``SessionRevoked`` arriving later
is then not recorded. That changes no decision — the session was dead by its expiry at every
later instant, and that is the reason given — and the rule depends only on ledger time, so a
projection resumed from its table writes exactly what one that never stopped writes.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from domain.common.identifiers import account_aggregate_id
from domain.common.ledger_time import to_micros
from domain.sts.assume_role import SESSION_DURATION_RANGE
from domain.sts.sessions import session_aggregate_id
from projections.store.read_model_store import ReadModelStore
from projections.store.sql_projection import SqlProjection

__all__ = ["FACTS_DDL", "SESSION_RETENTION", "Fact", "TemporalIndexProjection"]

SESSION_RETENTION = timedelta(hours=1)
"""How long past its expiration an unrevoked session is kept in memory (as the live index)."""
_RETENTION_MICROS = SESSION_RETENTION // timedelta(microseconds=1)
# A session expires at most the longest session duration after it was issued, and it was
# issued before its event's ledger time (valid_from); a day of margin covers clock steps.
# Older open session facts are not even read when the projection loads.
_LOAD_HORIZON_MICROS = (
    timedelta(seconds=SESSION_DURATION_RANGE[1]) + SESSION_RETENTION + timedelta(days=1)
) // timedelta(microseconds=1)

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


# PostgreSQL: every close of a batch in one statement, the rows passed as six arrays (six
# parameters, whatever the number of closes: nothing for psycopg to parse per row).
_CLOSE_MANY = (
    "UPDATE {p}_facts AS f SET valid_to = v.valid_to, closed_position = v.closed_position"
    " FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::bigint[], ?::bigint[])"
    " AS v(valid_to, closed_position, kind, subject, valid_from, opened_position)"
    " WHERE f.kind = v.kind AND f.subject = v.subject AND f.valid_from = v.valid_from"
    " AND f.opened_position = v.opened_position"
)


# ``json.dumps(payload, sort_keys=True, separators=(",", ":"))``, its encoder built once.
_PAYLOAD = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


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
        self._sessions: dict[UUID, str] = {}  # session aggregate id → its AccessKey id
        self._session_expiries: list[tuple[int, str]] = []  # (expiration µs, AccessKey id)
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
            "mandate:RoleCreated.v1": self._role_created,
            "mandate:RoleUpdated.v1": self._role_updated,
            "mandate:RoleTrustPolicyUpdated.v1": self._role_trust_updated,
            "mandate:RoleSessionsRevoked.v1": self._role_sessions_revoked,
            "mandate:RoleDeleted.v1": self._role_deleted,
            "mandate:Role.PolicyAttached.v1": self._attached("role"),
            "mandate:Role.PolicyDetached.v1": self._detached("role"),
            "mandate:EntrustmentGranted.v1": self._entrustment_granted,
            "mandate:EntrustmentAmended.v1": self._entrustment_amended,
            "mandate:EntrustmentRevoked.v1": self._entrustment_revoked,
            "mandate:EntrustmentEnded.v1": self._entrustment_ended,
            "mandate:DelegationGranted.v1": self._delegation_granted,
            "mandate:DelegationRevoked.v1": self._delegation_revoked,
            "mandate:SessionIssued.v1": self._session_issued,
            "mandate:SessionRevoked.v1": self._session_revoked,
        }

    # -- the worker's protocol -----------------------------------------------------------------
    def load(self, store: ReadModelStore, cursor: Any) -> None:
        self.discard()
        self._open = {}
        self._accounts = {}
        self._owners = {}
        self._user_keys = {}
        self._objects = {}
        self._sessions = {}
        self._session_expiries = []
        state = store.execute(
            cursor, "SELECT value FROM {p}_state WHERE key = ?", ("ledger_time",)
        ).fetchone()
        statement = (
            "SELECT kind, subject, object, account_id, payload, valid_from, opened_position"
            " FROM {p}_facts WHERE valid_to IS NULL"
        )
        params: tuple[int, ...] = ()
        if state is not None:  # sessions issued long before now have expired long ago
            statement += " AND (kind <> 'session' OR valid_from >= ?)"
            params = (to_micros(datetime.fromisoformat(state["value"])) - _LOAD_HORIZON_MICROS,)
        rows = store.execute(cursor, statement, params).fetchall()
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
        at = to_micros(ledger_time)
        expiries = self._session_expiries
        if expiries and expiries[0][0] < at - _RETENTION_MICROS:
            self._forget_expired_sessions(at - _RETENTION_MICROS)
        handler = self._handlers.get(type(event).TOPIC)
        if handler is not None:
            handler(event, position, at)

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
                    _PAYLOAD.encode(f.payload),
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
        """Close the earlier facts this batch ended: on PostgreSQL one UPDATE over arrays (a
        statement per row would be a round trip per row), on SQLite ``executemany``."""
        if not store.dialect.is_postgres:
            store.executemany(cursor, _CLOSE, self._closes)
            return
        if self._closes:
            columns = [list(column) for column in zip(*self._closes, strict=True)]
            store.execute(cursor, _CLOSE_MANY, columns)

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
        elif fact.kind in ("user", "group", "policy", "role"):
            self._owners[fact.subject] = fact.account_id
        elif fact.kind == "access_key" and fact.object:
            self._user_keys.setdefault(fact.object, set()).add(fact.subject)
        elif fact.kind == "session":
            self._sessions[session_aggregate_id(fact.subject)] = fact.subject
            heapq.heappush(self._session_expiries, (int(fact.payload["expiration"]), fact.subject))

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
        elif kind == "session":
            self._sessions.pop(session_aggregate_id(subject), None)
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

    def _replace_named(
        self, kind: str, subject: str, position: int, at: int, **changes: Any
    ) -> None:
        """``_replace`` for a subject whose one open fact is found by kind and subject."""
        for obj in sorted(self._objects.get((kind, subject), ())):
            self._replace(kind, subject, obj, position, at, **changes)

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
            {"display_name": e.display_name, "named_at": position},
            position,
            at,
        )

    def _user_updated(self, e: Any, position: int, at: int) -> None:
        user = str(e.originator_id)
        old = self._close("user", user, e.previous_user_name, position, at)
        account = old.account_id if old is not None else self._owners[user]
        # a name taken now binds no older trust policy (``domain.sts.assume_role.name_binds``)
        kept = old is not None and e.user_name == e.previous_user_name
        named_at = old.payload.get("named_at") if kept and old is not None else position
        payload = {"display_name": e.display_name, "named_at": named_at}
        self._open_fact("user", user, e.user_name, account, payload, position, at)

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

    # -- roles and sessions --------------------------------------------------------------------
    def _role_created(self, e: Any, position: int, at: int) -> None:
        payload = {
            "description": e.description,
            "trust_policy": e.trust_policy,
            "max_session_duration": e.max_session_duration,
            "sessions_revoked_before": None,
            "named_at": position,
            "trust_position": position,
        }
        self._open_fact(
            "role", str(e.originator_id), e.role_name, e.account_id, payload, position, at
        )

    def _role_updated(self, e: Any, position: int, at: int) -> None:
        self._replace_named(
            "role",
            str(e.originator_id),
            position,
            at,
            description=e.description,
            max_session_duration=e.max_session_duration,
        )

    def _role_trust_updated(self, e: Any, position: int, at: int) -> None:
        self._replace_named(
            "role",
            str(e.originator_id),
            position,
            at,
            trust_policy=e.trust_policy,
            trust_position=position,
        )

    def _role_sessions_revoked(self, e: Any, position: int, at: int) -> None:
        self._replace_named(
            "role",
            str(e.originator_id),
            position,
            at,
            sessions_revoked_before=to_micros(e.issued_before),
        )

    def _role_deleted(self, e: Any, position: int, at: int) -> None:
        role = str(e.originator_id)
        self._close_all("role", role, position, at)
        self._close_all("attachments", role, position, at)

    # -- entrustments and delegations ----------------------------------------------------------
    def _entrustment_granted(self, e: Any, position: int, at: int) -> None:
        payload = {
            "trustee_account_id": e.trustee_account_id,
            "scope": e.scope,
            "scope_policies": e.scope_policies,
            "contract_ref": e.contract_ref,
            "starts_at": _micros(e.starts_at),
            "ends_at": _micros(e.ends_at),
            "description": e.description,
            "revoked": False,
            "revoked_reason": None,
            "ended": False,
            "named_at": position,
        }
        self._open_fact(
            "entrustment", str(e.originator_id), e.role_name, e.account_id, payload, position, at
        )

    def _entrustment_amended(self, e: Any, position: int, at: int) -> None:
        self._replace_named(
            "entrustment",
            str(e.originator_id),
            position,
            at,
            scope=e.scope,
            scope_policies=e.scope_policies,
        )

    def _entrustment_revoked(self, e: Any, position: int, at: int) -> None:
        reason = (e.audit or {}).get("reason")
        self._replace_named(
            "entrustment", str(e.originator_id), position, at, revoked=True, revoked_reason=reason
        )

    def _entrustment_ended(self, e: Any, position: int, at: int) -> None:
        self._replace_named("entrustment", str(e.originator_id), position, at, ended=True)

    def _delegation_granted(self, e: Any, position: int, at: int) -> None:
        delegation = str(e.originator_id)
        payload = {
            "entrustment_id": str(e.entrustment_id),
            "entrustment_account_id": e.entrustment_account_id,
            "grantee_arn": e.grantee_arn,
            "grantee_kind": e.grantee_kind,
            "grantee_id": str(e.grantee_id),
            "scope": e.scope,
            "ends_at": _micros(e.ends_at),
            "revoked": False,
        }
        self._open_fact(
            "delegation", delegation, e.grantee_arn, e.account_id, payload, position, at
        )
        entrustment = str(e.entrustment_id)
        old = self._close("entrustment_delegations", entrustment, "", position, at)
        items = [*(old.payload["items"] if old is not None else ()), delegation]
        self._open_fact(
            "entrustment_delegations",
            entrustment,
            "",
            e.account_id,
            {"items": items},
            position,
            at,
        )

    def _delegation_revoked(self, e: Any, position: int, at: int) -> None:
        self._replace_named("delegation", str(e.originator_id), position, at, revoked=True)

    def _session_issued(self, e: Any, position: int, at: int) -> None:
        payload = {
            "access_key_id": e.access_key_id,
            "account_id": e.account_id,
            "role_id": str(e.role_id),
            "role_name": e.role_name,
            "role_session_name": e.role_session_name,
            "source_arn": e.source_arn,
            "source_account_id": e.source_account_id,
            "source_user_id": str(e.source_user_id) if e.source_user_id is not None else None,
            "parent_access_key_id": e.parent_access_key_id,
            "session_policy": e.session_policy,
            "issued_at": to_micros(e.issued_at),
            "expiration": to_micros(e.expiration),
        }
        self._open_fact(
            "session", e.access_key_id, e.role_session_name, e.account_id, payload, position, at
        )

    def _session_revoked(self, e: Any, position: int, at: int) -> None:
        access_key_id = self._sessions.get(e.originator_id)
        if access_key_id is not None:  # else already revoked, or forgotten long after expiry
            self._close_all("session", access_key_id, position, at)

    def _forget_expired_sessions(self, before: int) -> None:
        """Drop from memory the open facts of sessions that expired before ``before``."""
        expiries = self._session_expiries
        while expiries and expiries[0][0] < before:
            _, access_key_id = heapq.heappop(expiries)
            for obj in self._objects.pop(("session", access_key_id), set()):
                self._open.pop(("session", access_key_id, obj), None)
            self._sessions.pop(session_aggregate_id(access_key_id), None)


def _micros(moment: datetime | None) -> int | None:
    return to_micros(moment) if moment is not None else None
