"""Assembling a principal's identity layer from its attachments — one way, for live and as-of.

The live decision index and the temporal index hold the same facts in different places
(dictionaries in memory; intervals in SQL). Both hand them to ``PolicyCompiler.identity_layer``
in the same order — the user's own attachments, then each group's, in the order they were
made — so an as-of decision at T and a live decision taken at T compile the same statements
under the same provenance and explain themselves identically.

Compiled policies are cached by (policy, version, via): a version's document never changes,
so a cache entry can only go stale by being unused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from mandate.domain.permissions.attachments import Attachment, PolicyType
from mandate.domain.policy.document import PolicyDocument, parse_policy_document
from mandate.domain.policy.evaluation import (
    CompiledPolicy,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
)
from mandate.domain.policy.system_policies import SYSTEM_POLICIES

__all__ = ["CustomVersion", "GroupAttachments", "PolicyCompiler"]

_COMPILED_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class CustomVersion:
    """The default version of a live custom policy: what its attachments mean right now."""

    policy_id: UUID
    version_id: str
    document: str


@dataclass(frozen=True, slots=True)
class GroupAttachments:
    group_arn: str
    attachments: tuple[Attachment, ...]


class PolicyCompiler:
    """Compiles attachments into policy layers, caching by immutable policy version."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[Any, ...], CompiledPolicy] = {}
        self._parsed: dict[tuple[Any, ...], PolicyDocument] = {}

    def identity_layer(
        self,
        direct: Iterable[Attachment],
        groups: Iterable[GroupAttachments],
        resolve: Callable[[UUID], CustomVersion | None],
    ) -> PolicySet:
        """The identity layer of a user: its own attachments, then its live groups'.

        ``resolve`` gives the default version of a live custom policy, or None for a deleted
        one, whose attachments are dead.
        """
        compiled = [c for a in direct if (c := self.compile(a, None, resolve)) is not None]
        for group in groups:
            compiled.extend(
                c
                for a in group.attachments
                if (c := self.compile(a, group.group_arn, resolve)) is not None
            )
        return PolicySet.of(compiled, Layer.IDENTITY)

    def role_layer(
        self,
        role_arn: str,
        attachments: Iterable[Attachment],
        resolve: Callable[[UUID], CustomVersion | None],
    ) -> PolicySet:
        """The role layer of a session: the role's attached policies, ``via`` the role."""
        compiled = [c for a in attachments if (c := self.compile(a, role_arn, resolve, Layer.ROLE))]
        return PolicySet.of(compiled, Layer.ROLE)

    def compile(
        self,
        a: Attachment,
        via: str | None,
        resolve: Callable[[UUID], CustomVersion | None],
        layer: Layer = Layer.IDENTITY,
    ) -> CompiledPolicy | None:
        if a.policy_type is PolicyType.SYSTEM:
            system = SYSTEM_POLICIES.get(a.policy_name)
            if system is None:
                return None
            key: tuple[Any, ...] = ("System", a.policy_name, "v1", via, layer)
            compiled = self._compiled.get(key)
            if compiled is None:
                compiled = self._store(key, system.document, a, "v1", via, layer)
            return compiled
        live = resolve(a.policy_id) if a.policy_id is not None else None
        if live is None:
            return None  # the policy was deleted: its attachment is dead
        key = ("Custom", live.policy_id, live.version_id, via, layer)
        compiled = self._compiled.get(key)
        if compiled is None:
            parsed_key = (live.policy_id, live.version_id)
            document = self._parsed.get(parsed_key)
            if document is None:
                document = parse_policy_document(live.document)
                self._parsed[parsed_key] = document
            compiled = self._store(key, document, a, live.version_id, via, layer)
        return compiled

    def _store(
        self,
        key: tuple[Any, ...],
        document: PolicyDocument,
        a: Attachment,
        version: str,
        via: str | None,
        layer: Layer,
    ) -> CompiledPolicy:
        if len(self._compiled) >= _COMPILED_LIMIT:
            self._compiled.clear()
            self._parsed.clear()
        compiled = compile_policy(
            document, PolicySource(layer, a.policy_type.value, a.policy_name, version, via)
        )
        self._compiled[key] = compiled
        return compiled
