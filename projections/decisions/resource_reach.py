"""What-if's reach through resource-based policies (issue 16 items 2 and 5).

RAM evaluates a resource policy together with the caller's identity policies
(``domain.policy.resource_policies``; https://www.alibabacloud.com/help/en/ram/policy-evaluation-process):
inside the resource's account either allowing is enough, across accounts both must, and an
explicit Deny in either wins. So a reach (``projections.decisions.what_if``) lists, for each
principal a change in account ``a`` can touch, every statement of a resource policy whose
``Principal`` names it — directly, by its account's root (from another account only: inside
its own a root grant admits no one but the root), by ``*``, or by the role whose session it
is or would be — one entry per (action, resource) pattern, with ``layer`` ``resource``,
``policy_type`` ``Resource``, the resource's ARN as ``policy`` and a chain ending in
``resource-policy:<ARN>``, as the access review writes it. An Allow of a policy of another
account than the one the principal acts in is marked ``needs_own_allow``: by itself it grants
nothing. A Deny counts wherever it is.

Which policies: a principal acting in ``a`` (its users; a path into one of its roles, even a
trustee's user's, and a session of one) is shown every policy naming it, ``a``'s and other
accounts'; one acting in another account (a path into or a session of a contract's managed
role ``a`` received, a path of ``a``'s user into another account's role) only ``a``'s own
policies — what ``a`` may change and read. Every other principal ``a``'s policies name
is one entry of its own, chain ``[name, "resource-policy:<ARN>"]``, exactly as written: a
user, role, session or root of another account, ``*`` — never filtered by whether it exists
or its account is open, which ``a`` may not learn (a dry run naming B's users would tell
which exist); ``a``'s own roles and sessions are listed if the role exists. So are ``a``'s
roles and sessions another account's policies name.

Another account's policy is that account's document, which RAM never shows ``a`` (it cannot
read another's bucket policy): of its statements naming ``a``'s principals a reach keeps only
what ``/v1/authorize`` shows a caller of ``a`` when one matched its request — the policy's ARN,
the statement's index and effect, ``layer`` ``resource`` — one entry per statement with
``statement`` set and no action, resource or condition (``Reach.statement``). Only statements
naming ``a``'s principals or ``a`` itself count: another account's ``*`` names no one of ``a``,
and listing it would list that account's resources for ``a`` (``/v1/authorize`` shows one only
to a caller who named its resource). What-if is only ever asked by a caller of ``a`` (the
platform admin may not ask), so every reach withholds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from mandate.domain.common.arns import root_arn
from mandate.domain.policy.decisions import Path
from mandate.domain.policy.evaluation import Layer
from mandate.domain.policy.resource_policies import RESOURCE_POLICY_TYPE, ResourcePolicy
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.reach_entries import Reach, Row, statement_rows, statements_of

__all__ = ["ResourceReach"]

_Named = tuple[ResourcePolicy, int, tuple[Row, ...]]
"""One statement of a resource policy: its index and the rows it writes."""


def _account_of(name: str) -> str:
    """The account of a principal name (``*``: none)."""
    parts = name.split(":")
    return parts[3] if len(parts) > 4 else ""


def _role_of(arn: str) -> str | None:
    """``acs:ram::<a>:role/<r>`` for a session ``…:assumed-role/<r>/<s>``, else ``None``."""
    head, marker, rest = arn.partition(":assumed-role/")
    return f"{head}:role/{rest.split('/', 1)[0]}" if marker else None


class ResourceReach:
    """Every statement of every resource policy in an index, by each name its ``Principal``
    uses, for the reach of ``account_id`` (module docstring)."""

    def __init__(self, index: DecisionIndex, account_id: str) -> None:
        self.index = index
        self.account_id = account_id
        self._by_name: dict[str, list[_Named]] = {}
        for policy in list(index.resource_policies.values()):
            statements = statements_of(policy.document)
            numbered = enumerate(zip(policy.grants, statements, strict=True))
            for number, (grant, statement) in numbered:
                rows = tuple(statement_rows(statement))
                for name in grant.principals:
                    self._by_name.setdefault(name, []).append((policy, number, rows))

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def _entries(
        self, principal: str, acting: str, names: Iterable[str], chain: tuple[str, ...]
    ) -> Iterator[Reach]:
        """The statements naming one of ``names`` or ``*`` for a principal acting in account
        ``acting``: of every policy if that is ``a`` (another account's ``*`` aside), else of
        ``a``'s only."""
        mine = acting == self.account_id
        for name in (*names, "*"):
            for policy, number, rows in self._by_name.get(name, ()):
                owner = policy.account_id
                if owner != self.account_id and (not mine or name == "*"):
                    continue  # another's "*" names no one of a: listing it would list its ARN
                if owner == acting and name == root_arn(acting):
                    continue  # inside its own account a root grant admits only the root
                yield from self._rows(principal, chain, policy, number, rows, owner != acting)

    def of_user(self, arn: str, account_id: str) -> Iterator[Reach]:
        """A user of ``a``: named by its ARN, its account's root or ``*``."""
        if not self._by_name:
            return iter(())
        return self._entries(arn, account_id, (arn, root_arn(account_id)), (arn,))

    def through(self, arn: str, paths: Iterable[Path], role_account: str) -> Iterator[Reach]:
        """A user acting as a role of ``role_account`` along each path (chain ending in the
        role): the statements naming that role, its account's root or ``*``."""
        if not self._by_name:
            return
        for path in paths:
            names = (path.chain[-1], root_arn(role_account))
            yield from self._entries(arn, role_account, names, path.chain)

    def of_session(self, arn: str, account_id: str) -> Iterator[Reach]:
        """A live session: named by its ARN, its role's, its account's root or ``*``."""
        if not self._by_name:
            return iter(())
        role = _role_of(arn)
        names = (arn, root_arn(account_id), *((role,) if role is not None else ()))
        return self._entries(arn, account_id, names, (arn,))

    def named(self) -> Iterator[Reach]:
        """The principals of ``a``'s policies that are neither ``a``'s users nor its root, as
        written, and ``a``'s roles and sessions other accounts' policies name: one entry each."""
        a = self.account_id
        for name, statements in self._by_name.items():
            account = _account_of(name)
            if account == a:
                if ":user/" in name or name == root_arn(a):
                    continue  # a's users are shown as users (``of_user``); a's root is unbound
                if not self._exists(name, a):
                    continue  # a's own roles only: another account's are listed as written
            for policy, number, rows in statements:
                if account != a and policy.account_id != a:
                    continue  # another account's principal in another account's policy
                across = policy.account_id != account
                yield from self._rows(name, (name,), policy, number, rows, across)

    def _exists(self, name: str, account: str) -> bool:
        """Whether the role of a role's or a session's name of ``a`` exists."""
        role = _role_of(name) or name
        if ":role/" in role:
            return self.index.role_by_name(account, role.split(":role/", 1)[1]) is not None
        return True

    def _rows(
        self,
        principal: str,
        chain: tuple[str, ...],
        policy: ResourcePolicy,
        number: int,
        rows: tuple[Row, ...],
        across: bool,
    ) -> Iterator[Reach]:
        """``a``'s policy's statement row by row; another account's as one withheld entry."""
        link = (*chain, f"resource-policy:{policy.resource_arn}")
        layer, arn, kind = Layer.RESOURCE.value, policy.resource_arn, RESOURCE_POLICY_TYPE
        if policy.account_id != self.account_id:
            if rows:  # a statement has one effect
                effect = rows[0][0]
                allow = across and effect == "Allow"
                yield Reach(
                    principal, effect, "", "", link, layer, kind, arn, None, None, allow, number
                )
            return
        for effect, action, resource, condition in rows:
            yield Reach(
                principal,
                effect,
                action,
                resource,
                link,
                layer,
                kind,
                arn,
                None,
                condition,
                across and effect == "Allow",
            )
