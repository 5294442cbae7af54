"""The decision memo and the compiled layers it rests on, both keyed by generation.

A principal's generation moves whenever anything its decisions depend on changes
(``IndexState._touch``); compiled policy sets and memoised answers are filed under the
generation they were computed at, so a change invalidates exactly the principals it touches.
The memo is bounded in (estimated) bytes, in two halves swapped like an LRU.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from uuid import UUID

from mandate.domain.common.arns import group_arn
from mandate.domain.permissions.policy_sets import CustomVersion, GroupAttachments
from mandate.domain.policy.decisions import Answer, Subject
from mandate.domain.policy.evaluation import AccessRequest, PolicySet
from mandate.domain.policy.resource_policies import (
    ResourcePolicy,
    covering_keys,
    decide_with_resource_and_control,
)
from mandate.domain.sts.session_lineage import scope_layer
from mandate.projections.decisions.directory_events import control_of
from mandate.projections.decisions.queries import NamedQueries
from mandate.projections.decisions.views import RoleView

__all__ = ["MEMO_MAX_KEY_CHARS", "DecisionMemo"]

MEMO_MAX_KEY_CHARS = 512
"""Requests whose action and resource are longer together are decided, never memoised: an ARN
is rarely over 200 characters, and the budget should hold many answers, not a few huge keys."""
_MEMO_ENTRY_BYTES = 400
"""What one memoised answer costs beyond its two strings (key tuple, dict slot, the answer
and its decision; measured with tracemalloc in tests/unit/test_decision_memo.py)."""


class DecisionMemo(NamedQueries):
    """Decisions memoised per principal generation, and users' and roles' compiled layers."""

    def decide(
        self,
        subject: Subject | Callable[[], Subject],
        request: AccessRequest,
        *,
        memo_key: UUID | str,
        generation: Hashable = None,
    ) -> Answer:
        """Decide, reusing an earlier answer when nothing it depended on has changed.

        ``memo_key`` names the principal: a user's id (whose generation the index moves on
        every change that concerns it), or for the root, whose answers never depend on
        policies, its AccessKey id. The generation is read *before* the subject's policies,
        so an answer computed while an event is applied is filed under the old generation.
        Pass the subject as a callable to have it built only on a miss. A session passes its
        own ``generation`` (its lineage's role generations, read before its layers).
        """
        if generation is None:
            generation = self._generations.get(memo_key, 0)
        if self._control_epoch:  # a resource directory exists: its changes move every answer
            generation = (generation, self._control_epoch)
        epoch = self.resource_policy_epoch  # a resource policy exists: likewise
        if epoch:
            generation = (generation, "resource", epoch)
        if request.resource.startswith("acs:ram::"):  # a RAM user's or role's tags: ours
            request = self.with_resource_facts(request)
        key = (memo_key, generation, request.action_key, request.resource)
        answer = self._memo.get(key)
        if answer is not None:
            return answer
        answer = self._memo_old.get(key)
        if answer is None:
            decided = subject() if callable(subject) else subject
            levels, management = control_of(self, decided.account_id)
            covering = self.resource_policies_covering(request.resource) if epoch else ()
            answer = decide_with_resource_and_control(
                decided, levels, management, covering, request
            )
            if answer.decision.context_dependent:
                return answer
        self._memoise(key, answer)
        return answer

    def _memoise(self, key: tuple[UUID | str, Hashable, str, str], answer: Answer) -> None:
        """File ``answer`` under ``key`` if the key is short, within the byte budget."""
        action, resource = key[2], key[3]
        if len(action) + len(resource) > MEMO_MAX_KEY_CHARS:
            return
        cost = _memo_cost(action, resource)
        if cost > self._memo_half:
            return
        memo = self._memo
        self._memo_filled += cost
        if self._memo_filled > self._memo_half:
            # Replaced, never mutated in place: readers may hold either dictionary.
            self._memo_old, self._memo = memo, {}
            memo, self._memo_filled = self._memo, cost
        memo[key] = answer

    @property
    def memo_size(self) -> tuple[int, int]:
        """(answers memoised, their estimated bytes): what the budget bounds."""
        memos = (self._memo, self._memo_old)
        entries = sum(len(m) for m in memos)
        return entries, sum(_memo_cost(k[2], k[3]) for m in memos for k in list(m))

    def resource_policies_covering(self, resource: str) -> tuple[ResourcePolicy, ...]:
        """The resource policies covering ``resource``: its own, then its bucket's."""
        policies = self.resource_policies
        return tuple(p for k in covering_keys(resource) if (p := policies.get(k)) is not None)

    def policy_set_of_user(self, user_id: UUID) -> PolicySet:
        generation = self._generations.get(user_id, 0)
        cached = self._policy_sets.get(user_id)
        if cached is not None and cached[0] == generation:
            return cached[1]
        user = self.users[user_id]
        groups = []
        for group_id in user.groups:
            group = self.groups.get(group_id)
            if group is None:
                continue  # a membership of a deleted group is dead
            via = group_arn(group.account_id, group.group_name)
            groups.append(GroupAttachments(via, tuple(group.attachments.values())))
        policy_set = self._compiler.identity_layer(
            user.attachments.values(), groups, self._default_version
        )
        self._policy_sets[user_id] = (generation, policy_set)
        return policy_set

    def _default_version(self, policy_id: UUID) -> CustomVersion | None:
        policy = self.policies.get(policy_id)
        if policy is None:
            return None
        version = policy.default_version
        return CustomVersion(policy_id, version, policy.versions[version].document)

    def forget_cached_decisions(self) -> None:
        """Drop every cached policy set and memoised answer (benchmarks measure cold paths)."""
        self._policy_sets = {}
        self._memo, self._memo_old, self._memo_filled = {}, {}, 0

    def role_layer_of(self, role: RoleView) -> PolicySet:
        """A role's compiled policies, cached per role generation like a user's."""
        generation = self._generations.get(role.id, 0)
        cached = self._policy_sets.get(role.id)
        if cached is not None and cached[0] == generation:
            return cached[1]
        arn = f"acs:ram::{role.account_id}:role/{role.role_name}"
        if role.entrustment_id is not None:
            layer = scope_layer(self.entrustments[role.entrustment_id].state(), arn)
        else:
            layer = self._compiler.role_layer(arn, role.attachments.values(), self._default_version)
        self._policy_sets[role.id] = (generation, layer)
        return layer


def _memo_cost(action: str, resource: str) -> int:
    """The bytes one memoised answer is counted for: its key's strings and a fixed part."""
    return _MEMO_ENTRY_BYTES + sys.getsizeof(action) + sys.getsizeof(resource)
