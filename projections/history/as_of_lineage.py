"""A role session's lineage, and the roles "could P" goes through, read at one instant.

``LineageAt`` answers the questions ``session_lineage.resolve_session`` and
``role_reach.paths_into`` ask — the rules the live index applies too — from the temporal
index's facts at T instead of the live index. Per generation of a lineage it reads the
session's own fact (the latest opened at or before T, alive or not: a closed one means it was
revoked), then in one statement the facts of its account, role, role attachments and source
user — and, for a managed role, its entrustment, the entrustment's list of delegations and the
source user's memberships — so a verdict costs a handful of statements, not a replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from mandate.domain.common.arns import delegation_arn, role_arn
from mandate.domain.common.ledger_time import format_instant, from_micros
from mandate.domain.policy.control import ControlLevel
from mandate.domain.policy.evaluation import PolicySet
from mandate.domain.policy.resource_policies import ResourcePolicy
from mandate.domain.sts.role_reach import AssumableRole
from mandate.domain.sts.session_lineage import (
    DelegationState,
    EntrustmentState,
    RoleState,
    SessionRecord,
)
from mandate.projections.history.as_of_facts import (
    attachment_of,
    entrustment_of,
    instant_of,
    session_record_of,
    trust_position_of,
)
from mandate.projections.history.temporal_directory import control_at
from mandate.projections.history.temporal_resource_policies import resource_policies_at

if TYPE_CHECKING:
    from mandate.projections.history.as_of import AsOfReader

__all__ = ["LineageAt"]


class LineageAt:
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
        for row in self.reader.facts.alive_pairs(self.cursor, missing, self.at):
            self._facts[(row["kind"], row["subject"])] = row

    def _fact(self, kind: str, subject: str) -> Any:
        if (kind, subject) not in self._facts:
            self._fetch([(kind, subject)])
        return self._facts[(kind, subject)]

    def session(self, access_key_id: str) -> tuple[SessionRecord | None, str | None]:
        row = self.reader.facts.latest(self.cursor, "session", access_key_id, self.at)
        if row is None:
            return None, f"the session {access_key_id} did not exist then"
        record = session_record_of(json.loads(row["payload"]))
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
                role_id, managed["account_id"], managed["object"], None, (), entrustment_of(managed)
            )
        horizon = json.loads(row["payload"])["sessions_revoked_before"]
        attached = self._fact("attachments", str(role_id))
        items = json.loads(attached["payload"])["items"] if attached is not None else []
        return RoleState(
            role_id,
            row["account_id"],
            row["object"],
            from_micros(horizon) if horizon is not None else None,
            tuple(attachment_of(item) for item in items),
        )

    def user_exists(self, user_id: UUID) -> bool:
        return self._fact("user", str(user_id)) is not None

    def account_open(self, account_id: str) -> bool:
        return self._fact("account", account_id) is not None

    def control(self, account_id: str) -> tuple[tuple[ControlLevel, ...], str | None]:
        return control_at(self.reader.facts, self.cursor, account_id, self.at)

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
            ends_at = instant_of(d["ends_at"])
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
        reader = self.reader
        rows = reader.facts.roles(self.cursor, account_id, self.at)
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
                terms = entrustment_of(row)
                roles.append(AssumableRole.of(role_id, account, row["object"], None, terms))
            else:
                payload = json.loads(row["payload"])
                trust = reader._trust(payload["trust_policy"])
                position, tags = trust_position_of(row), payload.get("tags")
                roles.append(
                    AssumableRole.of(role_id, account, row["object"], trust, None, position, tags)
                )
        return roles

    def role_named(self, account_id: str, role_name: str) -> AssumableRole | None:
        """The role of ``account_id`` named so alive at T (managed or not), or None."""
        arn = role_arn(account_id, role_name)
        return next((role for role in self.roles_in(account_id) if role.arn == arn), None)

    def resource_policies(self, resource: str) -> tuple[ResourcePolicy, ...]:
        """The resource policies covering ``resource`` at T, as live (``resource_policies_at``)."""
        return resource_policies_at(self.reader.facts, self.cursor, resource, self.at)

    def assumable_role_layer(self, role: AssumableRole) -> PolicySet:
        if role.entrustment is not None:
            return self.reader._scope_layer(role.entrustment, role.arn)
        attached = self._fact("attachments", str(role.role_id))
        items = json.loads(attached["payload"])["items"] if attached is not None else []
        attachments = tuple(attachment_of(item) for item in items)
        custom = self.reader._custom_versions(self.cursor, attachments, self.at)
        return self.reader.compiler.role_layer(role.arn, attachments, custom.get)
