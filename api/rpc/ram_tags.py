"""Tags over RPC: RAM's TagResources, UntagResources and ListTagResources.

RAM tags roles with these actions of 2015-05-01
(https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-tagresources,
``ResourceType=role``) and users with the same actions of IMS 2019-08-15 (``ResourceType=user``);
Mandate serves both resource types here, under RAM's version, with the /v1 routes' ledger
commands and ``ram:<Action>`` on each entity's ARN. Lists arrive as JSON arrays, as the tea
SDKs send them (``ResourceNames=["r1"]``, ``Tag=[{"Key": "k", "Value": "v"}]``), or flattened
(``ResourceNames.1``, ``Tag.1.Key``, ``Tag.1.Value``, ``TagKeys.1``). Mandate keeps no tags
on policies: ``ResourceType=policy`` is refused rather than answered empty.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import model_validator

from mandate.api.reads import live_role, live_user
from mandate.api.rpc.errors import invalid_parameter, missing_parameter
from mandate.api.rpc.params import RpcBool, RpcParams
from mandate.api.rpc.registry import RAM, RpcContext, rpc_action
from mandate.domain.common.arns import role_arn, user_arn

__all__ = ["json_tags"]  # and the actions, which register themselves

_INDEXED = re.compile(r"(?P<name>[A-Za-z]+)\.(?P<n>[0-9]{1,3})(?:\.(?P<part>Key|Value))?")


def _listed(raw: dict[str, Any], name: str) -> list[str] | None:
    """``Name.1``, ``Name.2``… in order (or ``Name`` as a JSON array), None when absent."""
    indexed = sorted(
        (int(found["n"]), value)
        for key, value in raw.items()
        if (found := _INDEXED.fullmatch(key)) and found["name"] == name and not found["part"]
    )
    if indexed:
        return [str(value) for _, value in indexed]
    whole = raw.get(name)
    if whole is None:
        return None
    try:
        decoded = json.loads(whole)
    except ValueError:
        decoded = [whole]
    if not isinstance(decoded, list):
        decoded = [decoded]
    return [str(value) for value in decoded]


def _tags(raw: dict[str, Any]) -> dict[str, str] | None:
    """``Tag.N.Key`` / ``Tag.N.Value`` pairs in N's order (a value may be absent: empty)."""
    keys: dict[int, str] = {}
    values: dict[int, str] = {}
    for key, value in raw.items():
        found = _INDEXED.fullmatch(key)
        if found is None or found["name"] != "Tag" or not found["part"]:
            continue
        (keys if found["part"] == "Key" else values)[int(found["n"])] = str(value)
    if not keys and not values:
        return json_tags(raw.get("Tag"))
    if set(values) - set(keys):
        raise invalid_parameter("Tag", "each Tag.N.Value needs its Tag.N.Key")
    return {keys[n]: values.get(n, "") for n in sorted(keys)}


def json_tags(whole: Any) -> dict[str, str] | None:
    """``Tag`` as the tea SDKs send it: a JSON array of ``{"Key": …, "Value": …}``."""
    if whole is None:
        return None
    try:
        decoded = json.loads(whole)
    except ValueError:
        raise invalid_parameter("Tag", "must be a JSON array of {Key, Value}") from None
    if not isinstance(decoded, list) or not all(
        isinstance(tag, dict) and isinstance(tag.get("Key"), str) for tag in decoded
    ):
        raise invalid_parameter("Tag", "must be a JSON array of {Key, Value}")
    return {tag["Key"]: str(tag.get("Value") or "") for tag in decoded}


class _TagParams(RpcParams):
    resource_type: str
    resource_names: list[str] | None = None
    tags: dict[str, str] | None = None
    tag_keys: list[str] | None = None
    all: RpcBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _flattened(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        return {
            **{k: v for k, v in raw.items() if "." not in k},
            "ResourceNames": _listed(raw, "ResourceNames"),
            "Tags": _tags(raw),
            "TagKeys": _listed(raw, "TagKeys"),
        }

    def kind(self) -> str:
        kind = self.resource_type.lower()
        if kind == "policy":
            raise invalid_parameter("ResourceType", "Mandate keeps no tags on policies")
        if kind not in ("user", "role"):
            raise invalid_parameter("ResourceType", "must be role or user")
        return kind

    def names(self) -> list[str]:
        if not self.resource_names:
            raise missing_parameter("ResourceNames")
        return self.resource_names


def _arn(account_id: str, kind: str, name: str) -> str:
    return user_arn(account_id, name) if kind == "user" else role_arn(account_id, name)


@rpc_action("TagResources", RAM, _TagParams)
def tag_resources(ctx: RpcContext, p: _TagParams) -> dict[str, Any]:
    kind, names, account_id = p.kind(), p.names(), ctx.account_id
    if not p.tags:
        raise missing_parameter("Tag")
    tags = p.tags
    managements = [ctx.manage("ram:TagResources", _arn(account_id, kind, n)) for n in names]
    managements[0].write(lambda ledger: ledger.tag_resources(account_id, kind, names, tags))
    return {}


@rpc_action("UntagResources", RAM, _TagParams)
def untag_resources(ctx: RpcContext, p: _TagParams) -> dict[str, Any]:
    """``TagKeys`` names what to remove; without them, ``All=true`` removes every tag and
    ``All`` false or absent removes nothing (RAM answers success either way)."""
    kind, names, account_id = p.kind(), p.names(), ctx.account_id
    if not p.tag_keys and not p.all:
        for name in names:
            ctx.manage("ram:UntagResources", _arn(account_id, kind, name))
        return {}
    keys = p.tag_keys or None
    managements = [ctx.manage("ram:UntagResources", _arn(account_id, kind, n)) for n in names]
    managements[0].write(lambda ledger: ledger.untag_resources(account_id, kind, names, keys))
    return {}


@rpc_action("ListTagResources", RAM, _TagParams)
def list_tag_resources(ctx: RpcContext, p: _TagParams) -> dict[str, Any]:
    """The tags of the named resources, one entry per tag (``Tag.N`` filters by key, and by
    value when one is given)."""
    kind, names, account_id = p.kind(), p.names(), ctx.account_id
    found: list[dict[str, str]] = []
    for name in names:
        ctx.authorize_read("ram:ListTagResources", _arn(account_id, kind, name))
        entity = (
            live_user(ctx.runtime, account_id, name)
            if kind == "user"
            else live_role(ctx.runtime, account_id, name)
        )
        for key, value in sorted(entity.tags.items()):
            if p.tags and (key not in p.tags or p.tags[key] not in ("", value)):
                continue
            found.append(
                {"ResourceType": kind, "ResourceName": name, "TagKey": key, "TagValue": value}
            )
    return {"TagResources": found}
