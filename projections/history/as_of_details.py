"""One entity's relations as they stood at an instant: attachments, members, trust, holders.

``as_of_listing`` lists an account's entities at T; the audit console's detail of one of them
(a principal's attached policies, a group's members, a role's trust policy, the entities a
policy is attached to) must follow the same instant, or a page put at T would mix T's lists
with today's relations. Every answer is read from the temporal index's facts at T:

* a principal's attachments are its ``attachments`` fact (the whole set, one index step), each
  custom policy with its default version then (its ``policy`` fact);
* a group's members are the account's ``memberships`` facts alive at T naming the group (the
  set is stored per user, not per group: one range of the ``(kind, account_id, object,
  valid_from)`` index, the account's membership history — as ``held_at`` reads a kind);
* a role's trust policy is its ``role`` fact's (the index records each ``RoleTrustPolicyUpdated``);
  a contract's managed role has none of its own — its trust is computed, as the live role's is,
  from the delegations under the contract alive at T while the contract was live at T;
* a policy's holders are the account's ``attachments`` facts alive at T holding it (a custom
  policy by its id: one re-created under the name is another policy), by kind then name.

A name is resolved at T (``NAMED_AT``): the entity that had the name then, which need not be
the one that has it now. ``None`` when nothing had the name at T.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mandate.domain.common.arns import entrustment_arn
from mandate.domain.common.ledger_time import to_micros
from mandate.domain.policy.system_policies import SYSTEM_POLICIES
from mandate.projections.history.as_of_facts import AsOfFacts, entrustment_of, instant_of

__all__ = [
    "AttachedAt",
    "HoldersAt",
    "RoleAt",
    "attachments_at",
    "holders_at",
    "members_at",
    "role_at",
]

_ALIVE_IN_ACCOUNT = (
    "SELECT subject, payload FROM {p}_facts"
    " WHERE kind = ? AND account_id = ? AND valid_from <= ?"
    " AND (valid_to IS NULL OR valid_to > ?)"
)
_VERSIONS = (
    "SELECT object FROM {p}_facts WHERE kind = 'policy_version' AND subject = ?"
    " AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
)


@dataclass(frozen=True, slots=True)
class AttachedAt:
    """One policy a principal held attached at T, with the policy's default version then."""

    policy_type: str
    policy_name: str
    policy_id: str | None
    version: str
    """The default version at T ("v1" for a System policy; "" if the policy was gone)."""


@dataclass(frozen=True, slots=True)
class RoleAt:
    """A role as it stood at T: its trust policy then and what else its fact held."""

    role_id: str
    description: str | None
    max_session_duration: int | None
    trust_policy: dict[str, Any]
    managed_by: str | None
    """The contract's ARN for a contract's managed role (its trust computed), else None."""
    sessions_revoked_before: datetime | None = None


@dataclass(slots=True)
class HoldersAt:
    """The users, groups and roles a policy was attached to at T, each ``(id, name)``."""

    policy_id: str | None
    default_version: str
    versions: list[str]
    users: list[tuple[str, str]] = field(default_factory=list)
    groups: list[tuple[str, str]] = field(default_factory=list)
    roles: list[tuple[str, str]] = field(default_factory=list)


def _named(facts: AsOfFacts, cursor: Any, kind: str, account_id: str, name: str, t: int) -> Any:
    return facts.named(cursor, kind, account_id, name, t)


def attachments_at(
    facts: AsOfFacts, account_id: str, kind: str, name: str, at: datetime
) -> list[AttachedAt] | None:
    """What the ``kind`` (user, group, role) named ``name`` held attached at ``at``, by policy
    type then name as the live listing; None if nothing of that kind had the name then. A
    contract's managed role holds none (its layer is the contract's scope)."""
    t = to_micros(at)
    store = facts.store
    with store.transaction(commit=False) as cursor:
        row = _named(facts, cursor, kind, account_id, name, t)
        if row is None and kind == "role":
            managed = _named(facts, cursor, "entrustment", account_id, name, t)
            return None if managed is None else []
        if row is None:
            return None
        held = facts.alive(cursor, "attachments", [str(row["subject"])], t)
        items: list[list[Any]] = json.loads(held[0]["payload"])["items"] if held else []
        custom = [str(item[2]) for item in items if item[2]]
        defaults = {
            str(p["subject"]): str(json.loads(p["payload"])["default_version"])
            for p in facts.alive(cursor, "policy", custom, t)
        }
    attached = [
        AttachedAt(
            str(policy_type),
            str(policy_name),
            str(policy_id) if policy_id else None,
            defaults.get(str(policy_id), "") if policy_id else "v1",
        )
        for policy_type, policy_name, policy_id in items
    ]
    attached.sort(key=lambda a: (a.policy_type, a.policy_name))
    return attached


def members_at(
    facts: AsOfFacts, account_id: str, group_name: str, at: datetime
) -> tuple[str, list[tuple[str, str]]] | None:
    """The group named ``group_name`` at ``at`` (its id) and its users then (``(id, name)``,
    by name); None if no group had the name then."""
    t = to_micros(at)
    store = facts.store
    with store.transaction(commit=False) as cursor:
        group = _named(facts, cursor, "group", account_id, group_name, t)
        if group is None:
            return None
        group_id = str(group["subject"])
        rows = store.execute(
            cursor, _ALIVE_IN_ACCOUNT, ("memberships", account_id, t, t)
        ).fetchall()
        in_group = [
            str(row["subject"])
            for row in rows
            if any(str(item[0]) == group_id for item in json.loads(row["payload"])["items"])
        ]
        users = facts.alive(cursor, "user", in_group, t)
    return group_id, sorted(((str(u["subject"]), str(u["object"])) for u in users), key=_name)


def role_at(facts: AsOfFacts, account_id: str, role_name: str, at: datetime) -> RoleAt | None:
    """The role named ``role_name`` at ``at`` with its trust policy then; None if none."""
    t = to_micros(at)
    store = facts.store
    with store.transaction(commit=False) as cursor:
        row = _named(facts, cursor, "role", account_id, role_name, t)
        if row is not None:
            payload = json.loads(row["payload"])
            trust = payload["trust_policy"]
            return RoleAt(
                str(row["subject"]),
                payload.get("description"),
                payload.get("max_session_duration"),
                json.loads(trust) if isinstance(trust, str) else trust,
                None,
                instant_of(payload.get("sessions_revoked_before")),
            )
        managed = _named(facts, cursor, "entrustment", account_id, role_name, t)
        if managed is None:
            return None
        contract = str(managed["subject"])
        listed = facts.alive(cursor, "entrustment_delegations", [contract], t)
        ids = [str(d) for d in json.loads(listed[0]["payload"])["items"]] if listed else []
        delegations = facts.alive(cursor, "delegation", ids, t)
    arn = entrustment_arn(account_id, contract)
    live_contract = entrustment_of(managed).dead_reason(at) is None
    grantees = sorted(
        {
            str(d["grantee_arn"])
            for d in (json.loads(row["payload"]) for row in delegations)
            if live_contract
            and not d["revoked"]
            and (d["ends_at"] is None or int(d["ends_at"]) > t)
        }
    )
    statements = (
        [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": grantees},
                "Comment": f"computed from the delegations under {arn} alive at this instant",
            }
        ]
        if grantees
        else []
    )
    return RoleAt(contract, None, None, {"Version": "1", "Statement": statements}, arn)


def holders_at(
    facts: AsOfFacts, account_id: str, policy_type: str, policy_name: str, at: datetime
) -> HoldersAt | None:
    """The account's users, groups and roles the policy was attached to at ``at`` (each by
    name), with its default version and versions then; None if no such policy then (a
    System policy is always there)."""
    t = to_micros(at)
    store = facts.store
    with store.transaction(commit=False) as cursor:
        if policy_type == "System":
            if policy_name not in SYSTEM_POLICIES:
                return None
            found = HoldersAt(None, "v1", ["v1"])
        else:
            policy = _named(facts, cursor, "policy", account_id, policy_name, t)
            if policy is None:
                return None
            policy_id = str(policy["subject"])
            versions = store.execute(cursor, _VERSIONS, (policy_id, t, t)).fetchall()
            found = HoldersAt(
                policy_id,
                str(json.loads(policy["payload"])["default_version"]),
                sorted((str(v["object"]) for v in versions), key=lambda v: (len(v), v)),
            )

        def holds(item: list[Any]) -> bool:
            if policy_type == "System":
                return bool(item[0] == "System" and item[1] == policy_name)
            return bool(item[0] == "Custom" and str(item[2]) == found.policy_id)

        rows = store.execute(
            cursor, _ALIVE_IN_ACCOUNT, ("attachments", account_id, t, t)
        ).fetchall()
        by_kind: dict[str, list[str]] = {"user": [], "group": [], "role": []}
        for row in rows:
            payload = json.loads(row["payload"])
            if any(holds(item) for item in payload["items"]):
                by_kind.setdefault(str(payload.get("holder")), []).append(str(row["subject"]))
        for kind, into in (
            ("user", found.users),
            ("group", found.groups),
            ("role", found.roles),
        ):
            alive = facts.alive(cursor, kind, by_kind[kind], t)
            into.extend(sorted(((str(r["subject"]), str(r["object"])) for r in alive), key=_name))
    return found


def _name(entry: tuple[str, str]) -> str:
    return entry[1]
