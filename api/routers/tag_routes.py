"""Tags of users and roles on ``/v1`` (RAM's TagResources, UntagResources, ListTagResources).

``PUT …/{users|roles}/{name}/tags`` adds tags (``{"tags": {"team": "dev"}}``; a key the
entity has gets the new value), ``DELETE …/tags?tag_key=…`` removes the keys named (or every
tag with ``all=true``), ``GET …/tags`` lists them. Each is authorised as RAM's action on the
entity's ARN (``ram:TagResources``, ``ram:UntagResources``, ``ram:ListTagResources``); the
routes themselves are declared on the users' and roles' routers, which call these.
"""

from __future__ import annotations

from typing import Any

from mandate.api.deps import Caller, manage
from mandate.api.reads import authorize_read, live_role, live_user
from mandate.api.runtime import Runtime
from mandate.domain.common.arns import role_arn, user_arn
from mandate.domain.common.errors import FieldError, InvalidInput

__all__ = ["list_tags", "tag", "untag"]


def _arn(account_id: str, kind: str, name: str) -> str:
    return user_arn(account_id, name) if kind == "user" else role_arn(account_id, name)


def _tags_of(runtime: Runtime, account_id: str, kind: str, name: str) -> dict[str, str]:
    entity = (
        live_user(runtime, account_id, name)
        if kind == "user"
        else live_role(runtime, account_id, name)
    )
    return dict(sorted(entity.tags.items()))


def tag(
    runtime: Runtime, caller: Caller, account_id: str, kind: str, name: str, tags: dict[str, Any]
) -> dict[str, Any]:
    """Add ``tags`` to the user or role; answers its tags after, and the position."""
    position = manage(
        runtime, caller, account_id, "ram:TagResources", _arn(account_id, kind, name)
    ).write_position(lambda ledger: ledger.tag_resource(account_id, kind, name, tags))
    return {"tags": _tags_of(runtime, account_id, kind, name), "position": position}


def untag(
    runtime: Runtime,
    caller: Caller,
    account_id: str,
    kind: str,
    name: str,
    tag_keys: list[str] | None,
    every: bool,
) -> dict[str, Any]:
    """Remove the tags ``tag_keys`` names, or every tag (``every``): exactly one of them."""
    if bool(tag_keys) == every:
        raise InvalidInput(
            FieldError("tag_key", "name the keys to remove (tag_key=…), or pass all=true"),
            code="InvalidParameter.TagKey",
        )
    keys = None if every else tag_keys
    position = manage(
        runtime, caller, account_id, "ram:UntagResources", _arn(account_id, kind, name)
    ).write_position(lambda ledger: ledger.untag_resource(account_id, kind, name, keys))
    return {"tags": _tags_of(runtime, account_id, kind, name), "position": position}


def list_tags(
    runtime: Runtime, caller: Caller, account_id: str, kind: str, name: str
) -> dict[str, Any]:
    authorize_read(
        runtime, caller, account_id, "ram:ListTagResources", _arn(account_id, kind, name)
    )
    return {"tags": _tags_of(runtime, account_id, kind, name)}
