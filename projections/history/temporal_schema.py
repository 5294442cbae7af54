"""The temporal index: every fact a decision depends on, as a half-open interval of ledger time.

One table of facts. A fact is ``(kind, subject, object)`` with a payload, alive from
``valid_from`` (the ledger time of the event that opened it, ``opened_position``) until
``valid_to`` (of the event that closed it, ``closed_position``; NULL while it is alive).
It is alive at T when ``valid_from <= T < valid_to``. Times are microseconds since the epoch.

| kind | subject | object | payload |
|---|---|---|---|
| ``account`` | account id | ``""`` | name |
| ``user`` | user id | user name | display name, named at (the position it took the name), |
| | | | tags (absent: none) |
| ``access_key`` | AccessKey id | user id (``""`` for the root key) | status |
| ``group`` | group id | group name | |
| ``memberships`` | user id | ``""`` | the user's groups, in the order it joined them |
| ``attachments`` | user, group or role id | ``""`` | its attached policies, in the order attached |
| ``policy`` | policy id | policy name | default version |
| ``policy_version`` | policy id | version id | |
| ``role`` | role id | role name | description, trust policy, max session duration, |
| | | | sessions revoked before (µs, or null), named at and |
| | | | trust position (where it was created and its trust written), |
| | | | tags (absent: none) |
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
a role's description, trust or revocation horizon, a user's or role's tags, a contract
amended, revoked or ended, a delegation granted or revoked) closes the fact and opens its
successor at
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

This module holds the table's DDL and the statements that write it; ``temporal_facts`` keeps
the open facts, ``temporal_index`` turns events into them.
"""

from __future__ import annotations

import json

__all__ = ["CLOSE", "CLOSE_MANY", "DEFERRED_INDEXES", "FACTS_DDL", "FACT_COLUMNS", "PAYLOAD"]

# "Which entity had this name in this account at T".
_NAME_AT = (
    "CREATE INDEX IF NOT EXISTS {i}_facts_name_at"
    " ON {p}_facts (kind, account_id, object, valid_from, opened_position)"
)
# Loading the open facts at start, without reading history.
_OPEN = "CREATE INDEX IF NOT EXISTS {i}_facts_open ON {p}_facts (kind) WHERE valid_to IS NULL"

DEFERRED_INDEXES = {"_facts_name_at": _NAME_AT, "_facts_open": _OPEN}
"""The indexes a fresh copy builds only once its first catch-up ends (by suffix): nothing
reads a copy being rebuilt, and one sort at the end costs less than keeping them up to date
row by row through the whole log. The unique index stays: a close finds its fact by it."""

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
    _NAME_AT,
    _OPEN,
    "CREATE TABLE IF NOT EXISTS {p}_documents ("
    " policy_id TEXT NOT NULL, version_id TEXT NOT NULL, document TEXT NOT NULL,"
    " PRIMARY KEY (policy_id, version_id))",
]

FACT_COLUMNS = (
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
CLOSE = (
    "UPDATE {p}_facts SET valid_to = ?, closed_position = ?"
    " WHERE kind = ? AND subject = ? AND valid_from = ? AND opened_position = ?"
)


# PostgreSQL: every close of a batch in one statement, the rows passed as six arrays (six
# parameters, whatever the number of closes: nothing for psycopg to parse per row).
CLOSE_MANY = (
    "UPDATE {p}_facts AS f SET valid_to = v.valid_to, closed_position = v.closed_position"
    " FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::bigint[], ?::bigint[])"
    " AS v(valid_to, closed_position, kind, subject, valid_from, opened_position)"
    " WHERE f.kind = v.kind AND f.subject = v.subject AND f.valid_from = v.valid_from"
    " AND f.opened_position = v.opened_position"
)


# ``json.dumps(payload, sort_keys=True, separators=(",", ":"))``, its encoder built once.
PAYLOAD = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
