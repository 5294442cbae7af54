"""Effective permissions: every statement that applied to a principal, with its provenance.

Kept apart from the as-of reader because it reads no facts: it lists the layers a subject
was assembled with (``AsOfReader`` at an instant, the live index now) statement by statement,
naming each one's policy, version, layer and the group or role it came through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mandate.domain.policy.decisions import Path, Subject

__all__ = ["Provenance", "effective_permissions"]


@dataclass(frozen=True, slots=True)
class Provenance:
    """One statement that applied to the principal, the layer it is in, and how it came."""

    policy_type: str
    policy_name: str
    version: str | None
    via: str | None
    statement: int
    document: dict[str, Any]
    layer: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "policy_type": self.policy_type,
            "policy_name": self.policy_name,
            "version": self.version,
            "via": self.via,
            "statement_index": self.statement,
            "statement": self.document,
        }


def effective_permissions(subject: Subject) -> list[Provenance]:
    """Every statement that applied to the principal, with its layer and how it came.

    A user's identity layer (its own policies, then its groups'); a session's layers in
    the order of its lineage (role — for a managed role its entrustment's scope — then the
    delegations reaching its source user, the session policy, then the next generation's). The
    layers of a session intersect: a statement here allows nothing that another layer
    does not allow too. The root has no statements (it may do anything in its account).
    """
    layers = [subject.identity] if subject.identity is not None else []
    for path in subject.paths or (Path(subject.layers, subject.chain),):
        layers.extend(layer for layer in path.layers if layer not in layers)
    found = []
    for layer in layers:
        for policy in layer.policies:
            source = policy.source
            written = policy.document.as_dict()["Statement"]
            statements = written if isinstance(written, list) else [written]
            for index, statement in enumerate(statements):
                found.append(
                    Provenance(
                        source.policy_type,
                        source.policy_name,
                        source.version,
                        source.via,
                        index,
                        statement,
                        source.layer.value,
                    )
                )
    return found
