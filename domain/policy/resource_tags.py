"""Tags as condition keys: ``acs:ResourceTag/<key>`` and ``acs:RequestTag/<key>``.

RAM's conditional operators page (https://www.alibabacloud.com/help/en/ram/conditional-operator)
shows the pattern: ``{"StringEquals": {"acs:ResourceTag/team": ["dev"]}}`` lets a user manage
only the resources tagged ``team:dev``. A tag becomes one context key: its prefix and its key,
lower-cased as every context key is (condition keys match case-insensitively); its value is
compared as written, so ``StringEquals`` is case-sensitive on values and
``StringEqualsIgnoreCase`` is not. Two tags whose keys differ only in case (``Team``, ``team``)
become one key with both values, which a positive operator matches if either does.

Who supplies them (``api.routers.decision_access``): a RAM user's or role's tags are facts
of the ledger, so for a resource ``acs:ram::<a>:user/<name>`` or ``…:role/<name>`` the index
(live) or the temporal index (as of T) supplies them and whatever a request said is dropped;
any other resource's tags (an OSS object, an ECS instance) only an enforcement point may
vouch for. Request tags come from the enforcement point, or from a caller deciding for
itself (they describe what it asks to do, not who or where it is).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from mandate.domain.policy.conditions import RESOURCE_TAG, ContextValue

__all__ = [
    "REQUEST_TAG",
    "RESOURCE_TAG",
    "ram_tagged_resource",
    "tag_context",
    "with_resource_tags",
    "without_resource_tags",
]

REQUEST_TAG: Final = "acs:requesttag/"


def tag_context(prefix: str, tags: Mapping[str, str]) -> dict[str, ContextValue]:
    """Context keys ``prefix + key`` (lower-cased) for ``tags``; keys equal but for case
    become one key holding every value."""
    context: dict[str, list[str]] = {}
    for key, value in tags.items():
        context.setdefault(prefix + key.lower(), []).append(value)
    return {
        key: values[0] if len(values) == 1 else tuple(values) for key, values in context.items()
    }


def with_resource_tags(
    context: Mapping[str, ContextValue], tags: Mapping[str, str]
) -> dict[str, ContextValue]:
    """``context`` with its ``acs:resourcetag/…`` keys replaced by exactly ``tags``.

    The prefix itself is set too, to no value (which holds as an absent key does): it says the
    resource's tags are known whole, so that an access review's optimistic reading
    (``conditions.condition_may_hold``) takes a tag the resource lacks as lacking, not open."""
    kept = {key: value for key, value in context.items() if not key.startswith(RESOURCE_TAG)}
    return {**kept, RESOURCE_TAG: (), **tag_context(RESOURCE_TAG, tags)}


def ram_tagged_resource(resource: str) -> tuple[str, str, str] | None:
    """``(account id, "user" | "role", name)`` for a RAM user's or role's ARN, else None.

    Only an exact ARN names one entity; a pattern (``user/*``) names no tags."""
    if not resource.startswith("acs:ram::"):
        return None
    parts = resource.split(":", 4)
    if len(parts) != 5 or parts[2] != "":
        return None
    account_id, relative = parts[3], parts[4]
    kind, _, name = relative.partition("/")
    if kind not in ("user", "role") or not name or "*" in name or "?" in name or "/" in name:
        return None
    return account_id, kind, name


def without_resource_tags(context: Mapping[str, ContextValue]) -> Mapping[str, ContextValue]:
    """``context`` without any ``acs:resourcetag/…`` key: for a decision about another
    resource than the request's (the role a principal would assume on the way to it), whose
    tags those are not."""
    if not any(key.startswith(RESOURCE_TAG) for key in context):
        return context
    return {key: value for key, value in context.items() if not key.startswith(RESOURCE_TAG)}
