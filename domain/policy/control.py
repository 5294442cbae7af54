"""Control policies: Resource Directory's guardrails over member accounts (RAM's SCPs).

A management account arranges member accounts in a tree of folders and attaches control
policies to folders and accounts. Alibaba Cloud documents how they bound a request
(https://help.aliyun.com/en/resource-management/resource-directory/user-guide/control-policy-overview
and the evaluation principles repeated in
https://www.alibabacloud.com/help/en/oss/user-guide/control-policy):

* they grant nothing: they only bound what RAM policies grant, and they are checked first;
* at every level of the path, from the member account up to the root folder, a matching
  Deny denies at once, else a matching Allow is needed at that level, else the request is
  denied: so the levels intersect (one ``PolicySet`` per level, ``Layer.CONTROL``);
* they bound the RAM users and roles of member accounts, not a member account's own
  Alibaba Cloud account (its root), and not the management account;
* the system policy ``FullAliyunAccess`` (allow everything) is attached to every folder and
  member when it is created, so the default is the deny-list mode; allow-list mode is
  detaching it and attaching Allow policies at every level.

This module is pure: the caller (live index, as-of index, access review) gives the levels
of the subject's account, and ``decide_with_control`` puts them in front of ``decide``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from mandate.domain.policy.decisions import Answer, Subject, SubjectKind, decide
from mandate.domain.policy.document import PolicyDocument, parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    CompiledPolicy,
    Decision,
    DecisionKind,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
    evaluate,
)

__all__ = [
    "FULL_ALIYUN_ACCESS",
    "FULL_ALIYUN_ACCESS_DOCUMENT",
    "MAX_FOLDER_DEPTH",
    "ControlLevel",
    "compile_control_policy",
    "compile_levels",
    "control_levels",
    "decide_with_control",
]

FULL_ALIYUN_ACCESS: Final = "FullAliyunAccess"
"""The one system control policy: attached by default to every new folder and member."""

FULL_ALIYUN_ACCESS_DOCUMENT: Final[PolicyDocument] = parse_policy_document(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)

MAX_FOLDER_DEPTH: Final = 5
"""Folders nest at most five levels below the root folder (Resource Directory's limit)."""


@dataclass(frozen=True, slots=True)
class ControlLevel:
    """One node of the path from the root folder to an account, and its control policies."""

    node: str
    """The folder id (``fd-…``, the root folder ``r-…``) or the account id."""
    policies: tuple[CompiledPolicy, ...]


def compile_control_policy(
    document: PolicyDocument, name: str, node: str, *, system: bool = False
) -> CompiledPolicy:
    """A control policy as attached at ``node``: ``via`` names the node, for explanations."""
    source = PolicySource(Layer.CONTROL, "System" if system else "Custom", name, None, node)
    return compile_policy(document, source)


def compile_levels(
    levels: Sequence[tuple[str, Sequence[str]]], documents: Mapping[str, str]
) -> tuple[ControlLevel, ...]:
    """The levels of a path (node, attached names) with their documents compiled.

    ``documents`` maps a custom control policy's name to its canonical JSON; a name it lacks
    is ``FullAliyunAccess``, the one system control policy."""
    compiled = []
    for node, names in levels:
        policies = tuple(
            compile_control_policy(FULL_ALIYUN_ACCESS_DOCUMENT, name, node, system=True)
            if name == FULL_ALIYUN_ACCESS
            else compile_control_policy(parse_policy_document(documents[name]), name, node)
            for name in names
        )
        compiled.append(ControlLevel(node, policies))
    return tuple(compiled)


def control_levels(levels: Sequence[ControlLevel]) -> tuple[PolicySet, ...]:
    """One layer per level (root folder first): the levels intersect, as ``evaluate`` does."""
    return tuple(PolicySet.of(level.policies, Layer.CONTROL) for level in levels)


def decide_with_control(
    subject: Subject,
    levels: Sequence[ControlLevel],
    request: AccessRequest,
    *,
    management_account: str | None = None,
    optimistic: bool = False,
) -> Answer:
    """``decide``, bounded first by the control policies of the subject's account.

    ``levels`` is empty for an account in no resource directory. The account root and the
    management account are exempt (Alibaba documents that control policies bound the RAM
    users and roles of member accounts).
    """
    if not levels or subject.kind is SubjectKind.ROOT or subject.account_id == management_account:
        return decide(subject, request, optimistic=optimistic)
    layers = control_levels(levels)
    control = evaluate(layers, request, optimistic=optimistic)
    chain = subject.chain or (subject.arn,)
    if control.kind is DecisionKind.EXPLICIT_DENY:
        nodes = ", ".join(dict.fromkeys(m.via or "" for m in control.matched))
        return Answer(control, chain, None, f"a control policy attached at {nodes} denies it")
    if control.kind is DecisionKind.IMPLICIT_DENY:
        missing = [
            level.node
            for level, layer in zip(levels, layers, strict=True)
            if not evaluate((layer,), request, optimistic=optimistic).allowed
        ]
        return Answer(
            control,
            chain,
            None,
            "control policies must allow the request at every level of the resource "
            f"directory; none attached at {', '.join(missing)} allows it",
        )
    answer = decide(subject, request, optimistic=optimistic)
    merged = Decision(
        answer.decision.kind,
        (*answer.decision.matched, *control.matched)
        if answer.decision.kind is not DecisionKind.EXPLICIT_DENY
        else answer.decision.matched,
        answer.decision.context_dependent or control.context_dependent,
    )
    return Answer(merged, answer.chain, answer.billed_account, answer.reason)
