"""ARNs of RAM entities, and the account that owns a resource: pure string rules.

Entities are named ``acs:ram::<account_id>:<kind>/<name>`` (docs/design.md §1) and resources
``acs:<service>:<region>:<account_id>:<relative_id>``. A request's resource is a literal
string: a ``*`` in it is just a character, never a wildcard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, TypeAlias

from mandate.domain.common.errors import FieldError, InvalidInput

__all__ = [
    "ACCOUNT_ID_RE",
    "NAME_RE",
    "SESSION_NAME_RE",
    "PrincipalArn",
    "PrincipalArnKind",
    "PrincipalKind",
    "account_of_resource",
    "assumed_role_arn",
    "delegation_arn",
    "entrustment_arn",
    "group_arn",
    "parse_principal_arn",
    "policy_arn",
    "principal_arn",
    "role_arn",
    "root_arn",
    "user_arn",
]

ACCOUNT_ID_RE: Final = re.compile(r"\A[0-9]{16}\Z")
"""An account id: exactly 16 ASCII digits."""

NAME_RE: Final = re.compile(r"\A[A-Za-z0-9._-]{1,64}\Z")
"""A user, group, role or policy name: 1 to 64 of ``A-Z a-z 0-9 . _ -``."""

SESSION_NAME_RE: Final = re.compile(r"\A[A-Za-z0-9.@_-]{2,64}\Z")
"""A role session name, as RAM's ``RoleSessionName``: 2 to 64 of ``A-Z a-z 0-9 . @ _ -``."""


class PrincipalKind(StrEnum):
    """A named identity of an account that holds policies: a RAM user, group or role.

    A ``StrEnum``: each member is its lower-case string, so stored events, projections and
    JSON answers carry ``"user"``, ``"group"``, ``"role"`` exactly as before. URLs name the
    collections in the plural (``/users/…``): ``plural`` and ``from_plural`` are that mapping.
    """

    USER = "user"
    GROUP = "group"
    ROLE = "role"

    @property
    def plural(self) -> str:
        """The URL segment of this kind's collection: ``users``, ``groups``, ``roles``."""
        return f"{self.value}s"

    @property
    def noun(self) -> str:
        """How RAM spells the kind in action names and error codes: ``User``
        (``ram:AttachPolicyToUser``, ``EntityNotExist.User``)."""
        return self.value.capitalize()

    @classmethod
    def from_plural(cls, segment: str) -> PrincipalKind:
        """The kind whose collection ``segment`` names; ``ValueError`` for any other segment."""
        for kind in cls:
            if kind.plural == segment:
                return kind
        raise ValueError(f"{segment!r} names no principal collection (users, groups, roles)")


PrincipalArnKind: TypeAlias = PrincipalKind | Literal["root", "assumed-role"]
"""What a principal ARN names: a named principal, the account's root, or a role session."""


def root_arn(account_id: str) -> str:
    return f"acs:ram::{account_id}:root"


def user_arn(account_id: str, user_name: str) -> str:
    return f"acs:ram::{account_id}:user/{user_name}"


def group_arn(account_id: str, group_name: str) -> str:
    return f"acs:ram::{account_id}:group/{group_name}"


def role_arn(account_id: str, role_name: str) -> str:
    return f"acs:ram::{account_id}:role/{role_name}"


def principal_arn(account_id: str, kind: PrincipalKind, name: str) -> str:
    """The ARN of the user, group or role ``kind`` names (``user_arn`` … by its kind)."""
    return f"acs:ram::{account_id}:{kind.value}/{name}"


def policy_arn(account_id: str, policy_name: str) -> str:
    return f"acs:ram::{account_id}:policy/{policy_name}"


def entrustment_arn(account_id: str, entrustment_id: object) -> str:
    return f"acs:ram::{account_id}:entrustment/{entrustment_id}"


def delegation_arn(account_id: str, delegation_id: object) -> str:
    return f"acs:ram::{account_id}:delegation/{delegation_id}"


def assumed_role_arn(account_id: str, role_name: str, session_name: str) -> str:
    return f"acs:ram::{account_id}:assumed-role/{role_name}/{session_name}"


def account_of_resource(resource: str) -> str | None:
    """The owning account of ``acs:<service>:<region>:<account_id>:<relative_id>``, if any.

    ``None`` when the resource does not have that form or its account field is not 16
    digits (``*`` included: a request's resource is literal, so it names no account).
    """
    parts = resource.split(":", 4)
    if len(parts) != 5 or parts[0] != "acs":
        return None
    account_id = parts[3]
    return account_id if ACCOUNT_ID_RE.match(account_id) else None


@dataclass(frozen=True, slots=True)
class PrincipalArn:
    """A parsed principal ARN; ``name`` is ``None`` for the root, ``session_name`` is set
    only for an assumed role."""

    account_id: str
    kind: PrincipalArnKind
    name: str | None = None
    session_name: str | None = None

    @property
    def arn(self) -> str:
        """The ARN again, in canonical form."""
        if self.kind == "root":
            return root_arn(self.account_id)
        if self.kind == "assumed-role":
            return assumed_role_arn(self.account_id, self.name or "", self.session_name or "")
        return f"acs:ram::{self.account_id}:{self.kind}/{self.name}"

    def __str__(self) -> str:
        return self.arn


_PRINCIPAL_RE: Final = re.compile(
    r"acs:ram::(?P<account>[^:]*):(?:(?P<root>root)|(?P<kind>user|group|role)/(?P<name>[^/]*)"
    r"|assumed-role/(?P<role>[^/]*)/(?P<session>[^/]*))"
)


def parse_principal_arn(text: str) -> PrincipalArn:
    """Parse a principal ARN, or raise ``InvalidInput`` on the ``principal`` field."""

    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(FieldError("principal", reason))

    found = _PRINCIPAL_RE.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise refuse(
            "must be a principal ARN: acs:ram::<account_id>:root, …:user/<name>, "
            "…:group/<name>, …:role/<name> or …:assumed-role/<role>/<session>"
        )
    account_id = found["account"]
    if not ACCOUNT_ID_RE.match(account_id):
        raise refuse(f"{account_id!r} is not an account id (16 digits)")
    if found["root"]:
        return PrincipalArn(account_id, "root")
    if found["kind"]:
        name = found["name"]
        if not NAME_RE.match(name):
            raise refuse(f"{name!r} is not a valid name (1 to 64 of A-Z a-z 0-9 . _ -)")
        return PrincipalArn(account_id, PrincipalKind(found["kind"]), name)
    role, session = found["role"], found["session"]
    if not NAME_RE.match(role):
        raise refuse(f"{role!r} is not a valid role name (1 to 64 of A-Z a-z 0-9 . _ -)")
    if not SESSION_NAME_RE.match(session):
        raise refuse(f"{session!r} is not a valid session name (2 to 64 of A-Z a-z 0-9 . @ _ -)")
    return PrincipalArn(account_id, "assumed-role", role, session)
