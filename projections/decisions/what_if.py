"""What-if: who would lose or gain access if a change were made, computed on a copy.

``POST /v1/accounts/{a}/what-if`` rehearses a command (``domain.ledger.rehearsal``: the
command's own lookups, guards and events, nothing saved), applies those events to a *copy*
of the decision index — the live one is never touched, the log never appended to — and
diffs the account's reach before and after. The reach is what effective permissions list,
for every principal a change in ``a`` can touch:

* each RAM user of ``a``: its identity statements (own policies, then its groups'), chain
  ``[user]`` (``via``: the group);
* each user of any account that could assume a role of ``a`` now (one hop, as "could P do
  it?" decides, optimistic about request context): the statements of every layer of each
  path — the role's policies, or a contract's scope and the delegation — with the chain
  ``[user, role]`` or ``[user, delegation, entrustment, role]``;
* each user of ``a`` that could assume the managed role of a contract ``a`` received: the
  contract's scope and the delegation, as above (``a`` reads both);
* each user of ``a`` that could assume another role of another account: ``sts:AssumeRole``
  on that role, with the chain (never that account's policies: ``a`` may not read them);
* each live session of those roles (``a``'s own, its received contracts'): the statements
  of every layer of each path;
* the statements of resource-based policies naming any of them, and every other principal
  ``a``'s own resource policies name, as written (``projections.decisions.resource_reach``):
  chain ``[…, "resource-policy:<ARN>"]``, an Allow across accounts marked ``needs_own_allow``;
  another account's statement withheld but for its policy, index and effect;
* when ``a`` manages a Resource Directory, the control policies bounding each member account,
  per member rather than per principal (``projections.decisions.control_reach``).

A statement is one entry per (action pattern, resource pattern) it writes — ``!`` before a
pattern written under ``NotAction``/``NotResource`` — with its effect, condition, layer,
policy and chain. The policy version is not part of an entry: switching to a version that
writes the same statement changes no one's access. Both sides are computed on the same copy
at the same instant, so what differs is the change and nothing else.
"""

from __future__ import annotations

import io
import pickle
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mandate.domain.policy.decisions import Path, Subject
from mandate.domain.policy.evaluation import CompiledPolicy, ContextValue, Layer, PolicySet
from mandate.domain.policy.resource_policies import ResourcePolicy
from mandate.domain.sts.assume_role import AssumingCaller
from mandate.domain.sts.role_reach import paths_into
from mandate.domain.sts.session_lineage import SessionInvalid
from mandate.projections.decisions.control_reach import control_reach
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.reach_entries import Reach, policy_rows
from mandate.projections.decisions.resource_reach import ResourceReach
from mandate.projections.decisions.views import RoleView, UserView

__all__ = ["Reach", "WhatIf", "copy_index", "diff", "reach_of", "what_if"]

_LOCK_TYPE = type(threading.Lock())
_SHARED = ("hasher", "token_signer", "keyring", "_compiler")
"""The process's own objects (keys, signers) and the compiler, whose caches are keyed by
immutable policy versions: a copy refers to them, never pickles them."""
_DROPPED = ("_memo", "_memo_old", "_verified_sessions")
"""Caches of answers, not state: a copy starts with them empty (they can be large)."""
_READERS_FILL = ("_policy_sets", "_delegation_layers", "_session_layers")
"""Caches readers fill while the copy is pickled (decisions go on): copied, then pickled."""
_IMMUTABLE = (PolicySet, CompiledPolicy, ResourcePolicy)
"""Compiled layers and checked resource policies never change once built (``PolicySet``'s
own per-action memo only ever holds what its buckets give again, and is safe to share): a
copy shares them, so its cached policy sets stay warm and only what the change touches is
compiled again."""


@dataclass(frozen=True, slots=True)
class WhatIf:
    """``lose``/``gain``: access a principal would no longer have / would newly have — no
    entry of the other side grants the same (principal, effect, action, resource,
    condition, whether it needs the principal's own allow too); each is listed with every
    chain it came (or would come) through.
    ``rerouted``: an entry that would go while the same access stays through another policy,
    group or chain (a policy detached from a user that a group of hers also holds)."""

    position: int
    lose: list[Reach]
    gain: list[Reach]
    rerouted: list[Reach]

    @property
    def principals_affected(self) -> list[str]:
        return sorted({r.principal for r in self.lose} | {r.principal for r in self.gain})


def _order(r: Reach) -> tuple[Any, ...]:
    """Answers list a principal's entries together, chain by chain, as policies write them."""
    return (
        r.principal,
        r.chain,
        r.layer,
        r.policy_type,
        r.policy_name,
        r.via or "",
        r.effect,
        r.action,
        r.resource,
        r.condition or "",
        r.needs_own_allow,
        -1 if r.statement is None else r.statement,
    )


def _access(reach: Reach) -> tuple[Any, ...]:
    """What an entry grants: an Allow that needs the principal's own policies too (a resource
    policy across accounts) is never the same access as one that does not; a withheld
    statement of another account's policy is the same access only as itself; a control bound
    is never an identity's or a resource policy's, and its Allow only the same at its node
    (levels intersect: ``control_reach``)."""
    withheld = reach.statement is not None
    control = reach.layer == Layer.CONTROL.value
    return (
        (control, reach.via if control and reach.effect == "Allow" else None),
        reach.principal,
        reach.effect,
        reach.action,
        reach.resource,
        reach.condition,
        reach.needs_own_allow,
        reach.policy_name if withheld else "",
        reach.statement,
    )


def diff(before: set[Reach], after: set[Reach]) -> WhatIf:
    """What differs between two reaches (``WhatIf``'s fields; ``position`` 0)."""
    kept = {_access(r) for r in after}
    had = {_access(r) for r in before}
    gone = sorted(before - after, key=_order)
    return WhatIf(
        0,
        [r for r in gone if _access(r) not in kept],
        sorted((r for r in after - before if _access(r) not in had), key=_order),
        [r for r in gone if _access(r) in kept],
    )


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, index: DecisionIndex, shared: dict[str, Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._refs = {id(getattr(index, name)): name for name in _SHARED}
        self._refs.pop(id(None), None)
        self._shared = shared

    def persistent_id(self, obj: Any) -> str | None:
        if isinstance(obj, _LOCK_TYPE):
            return "lock"
        if isinstance(obj, _IMMUTABLE):
            key = f"={id(obj)}"
            self._shared[key] = obj
            return key
        return self._refs.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, index: DecisionIndex, shared: dict[str, Any]) -> None:
        super().__init__(io.BytesIO(data))
        self._index = index
        self._shared = shared

    def persistent_load(self, pid: Any) -> Any:
        if pid == "lock":
            return threading.Lock()
        if pid in _SHARED:
            return getattr(self._index, pid)
        if pid in self._shared:
            return self._shared[pid]
        raise pickle.UnpicklingError(f"unknown reference {pid!r}")


def copy_index(
    index: DecisionIndex, lock: AbstractContextManager[Any] | None = None
) -> DecisionIndex:
    """A private copy of ``index`` as of one position: pickled under ``lock`` — the
    follower's apply lock in a serving process (``snapshots.snapshot_lock``: no event applies
    meanwhile, decisions go on), else ``steady`` — so no event is half applied in it.

    Readers go on filling caches meanwhile, so what is pickled is the index's attributes
    read in one step, memoised answers replaced by empty ones and the caches readers fill
    by copies of them (``_DROPPED``, ``_READERS_FILL``; ``dict(...)`` is one step under the
    GIL); the live index's keys, signers, compiler and compiled layers go by reference
    (``_SHARED``, ``_IMMUTABLE``)."""
    buffer, shared = io.BytesIO(), dict[str, Any]()
    with lock if lock is not None else index.steady:
        state = dict(vars(index))
        state.update({name: {} for name in _DROPPED})
        state.update({name: dict(state[name]) for name in _READERS_FILL})
        _Pickler(buffer, index, shared).dump(state)
    copy = object.__new__(type(index))
    vars(copy).update(_Unpickler(buffer.getvalue(), index, shared).load())
    return copy


def _statements(principal: str, chain: tuple[str, ...], layer: PolicySet) -> Iterator[Reach]:
    for policy in layer.policies:
        source = policy.source
        kind, name, via, where = source.policy_type, source.policy_name, source.via, source.layer
        for effect, action, resource, condition in policy_rows(policy):
            yield Reach(
                principal, effect, action, resource, chain, where.value, kind, name, via, condition
            )


def _paths(principal: str, paths: Iterable[Path]) -> Iterator[Reach]:
    for path in paths:
        for layer in path.layers:
            yield from _statements(principal, path.chain, layer)


def _trust_names(role: RoleView, account_id: str) -> bool:
    return account_id in role.trust_policy


def _may_admit(index: DecisionIndex, role: RoleView, arn: str, account_id: str) -> bool:
    """False only when the role can admit no one of ``arn``: a contract's managed role admits
    only its trustee's users; a trust names a caller by its ARN, its account's root or id
    (``domain.sts.assume_role.trust_admits``), exactly or by a wildcard. A cheap test, so
    that each user is not decided against every role; ``paths_into`` decides the rest."""
    if role.entrustment_id is not None:
        return _trustee(index, role) == account_id
    names = _ram_names(role)
    if any("*" in name or "?" in name for name in names):
        return True
    return bool(names & {arn, account_id, f"acs:ram::{account_id}:root"})


def _ram_names(role: RoleView) -> set[str]:
    """Every ``Principal.RAM`` name (or pattern) the role's trust policy writes."""
    names: set[str] = set()
    for statement in role.trust.statements:
        principal = statement.principal
        if principal is not None and principal.ram:
            names.update(principal.ram)
    return names


def reach_of(index: DecisionIndex, account_id: str, at: datetime) -> set[Reach]:
    """Everything the principals a change in ``account_id`` can touch may do now (see the
    module's docstring for which principals, and what one entry is)."""
    found: set[Reach] = set()
    resources = ResourceReach(index, account_id)
    users = [u for u in list(index.users.values()) if u.account_id == account_id]
    subjects: dict[str, tuple[UserView, Subject]] = {}
    for user in users:
        subject = index.user_subject(user.id)
        subjects[subject.arn] = (user, subject)
        if subject.identity is not None:
            found.update(_statements(subject.arn, (subject.arn,), subject.identity))
        found.update(resources.of_user(subject.arn, account_id))
    own_roles = index.roles_of(account_id)
    others = _others(index, account_id, own_roles)
    for other_user in list(index.users.values()):
        if other_user.account_id in others and other_user.account_id != account_id:
            subject = index.user_subject(other_user.id)
            subjects[subject.arn] = (other_user, subject)
    facts = index.live_roles()
    context: dict[str, ContextValue] = {"acs:currenttime": at}
    # Another account's managed role whose contract ``a`` received: ``a`` reads that
    # contract's scope and its own delegations, so their statements are shown; of any other
    # account's role trusting ``a``, only that ``a``'s user could assume it.
    received, foreign = [], []
    for role in list(index.roles.values()):
        if role.account_id == account_id:
            continue
        if _trustee(index, role) == account_id:
            received.append(role)
        elif _trust_names(role, account_id):
            foreign.append(role)
    mine_roles = [(r, facts.assumable(r)) for r in own_roles + received]
    theirs_roles = [(r, facts.assumable(r)) for r in own_roles]
    foreign_roles = [(r, facts.assumable(r)) for r in foreign]
    for arn, (user, subject) in subjects.items():
        caller = AssumingCaller(subject, user.id)
        mine = user.account_id == account_id
        for role, assumable in mine_roles if mine else theirs_roles:
            if _may_admit(index, role, arn, user.account_id):
                paths = paths_into(caller, assumable, context, facts, optimistic=True)
                found.update(_paths(arn, paths))
                found.update(resources.through(arn, paths, role.account_id))
        for role, assumable in foreign_roles if mine else ():
            if not _may_admit(index, role, arn, user.account_id):
                continue
            paths = paths_into(caller, assumable, context, facts, optimistic=True)
            # of that role's account's policies nothing: ``a`` may not read them
            found.update(resources.through(arn, paths, role.account_id))
            for path in paths:
                found.add(
                    Reach(
                        arn,
                        "Allow",
                        "sts:AssumeRole",
                        assumable.arn,
                        path.chain,
                        "trust",
                        "Trust",
                        role.role_name,
                        None,
                        None,
                    )
                )
    shown_roles = {r.id for r in own_roles + received}
    for key, session in list(index.sessions.items()):
        if session.record.role_id not in shown_roles:
            continue
        try:
            subject, _ = index.session_subject(key, at)
        except SessionInvalid:
            continue
        found.update(_paths(subject.arn, subject.paths or (Path(subject.layers, subject.chain),)))
        found.update(resources.of_session(subject.arn, subject.account_id))
    found.update(resources.named())
    found.update(control_reach(index, account_id))
    return found


def _others(index: DecisionIndex, account_id: str, own_roles: list[RoleView]) -> set[str]:
    """The other accounts whose users could reach a role of the account: trustees of its
    contracts, accounts its trusts name (by a user's ARN, the account's root or id)."""
    others = {
        e.trustee_account_id
        for e in list(index.entrustments.values())
        if e.account_id == account_id
    }
    others.update(
        other
        for other in list(index.accounts)
        if other != account_id and any(_trust_names(r, other) for r in own_roles)
    )
    return others


def _warm(index: DecisionIndex, account_id: str) -> None:
    """Compile, in the live index, the identity layers of every user a reach of the account
    reads (as ``authorize`` would on their first request): the copy then shares them, and a
    what-if compiles only what the change touches. Answers do not change, only caches."""
    accounts = _others(index, account_id, index.roles_of(account_id)) | {account_id}
    for user in list(index.users.values()):
        if user.account_id in accounts:
            index.policy_set_of_user(user.id)


def _trustee(index: DecisionIndex, role: RoleView) -> str | None:
    if role.entrustment_id is None:
        return None
    entrustment = index.entrustments.get(role.entrustment_id)
    return entrustment.trustee_account_id if entrustment is not None else None


def what_if(
    index: DecisionIndex,
    account_id: str,
    events: list[Any],
    at: datetime,
    lock: AbstractContextManager[Any] | None = None,
) -> WhatIf:
    """Apply ``events`` (a rehearsed command's) to a copy of ``index`` (taken under ``lock``:
    ``copy_index``) and diff the reach of ``account_id``'s world before and after, at ``at``."""
    _warm(index, account_id)
    copy = copy_index(index, lock)
    position = copy.position
    before = reach_of(copy, account_id, at)
    for offset, event in enumerate(events, start=1):
        copy.apply(event, position + offset)
    found = diff(before, reach_of(copy, account_id, at))
    return WhatIf(position, found.lose, found.gain, found.rerouted)
