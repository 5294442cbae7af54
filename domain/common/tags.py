"""Tags on RAM users and roles: RAM's limits, and the one change both aggregates record.

RAM tags users through IMS ``TagResources`` (``ResourceType=user``) and roles through RAM's
own ``TagResources`` (``ResourceType=role``); both take the same keys and limits, but for a
role's longer values, quoted here from RAM's pages so that a refusal says what RAM would:

* IMS TagResources (https://help.aliyun.com/zh/ram/developer-reference/api-ims-2019-08-15-tagresources),
  for users: ``Tag.N`` — N from 1 to 20; a key, once passed, must not be empty, has at most
  128 characters, must not start with ``aliyun`` or ``acs:``, must not contain ``http://`` or
  ``https://``; a value may be empty, at most 128 characters.
* Alibaba Cloud's tag structure (e.g. https://alibabacloud.com/help/en/emr/emr-on-ecs/developer-reference/api-emr-2021-03-20-struct-tag):
  a value "cannot start with acs: and cannot contain http:// or https://".
* RAM TagResources (https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-tagresources,
  its SDK's ``TagResourcesRequestTag``), for roles: at most 20 tags and 50 resource names per
  call, a key of up to 128 characters, a value of up to 256.
* UntagResources (https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-untagresources):
  at most 20 tag keys per call.
* Resource Management limits (https://www.alibabacloud.com/help/en/resource-management/latest/limits):
  "Maximum number of tags that can be added to a single resource: 20".

Tagging a key a resource already has replaces its value (one value per key). Keys and values
are stored exactly as given (case-sensitive); a ``Condition`` names the key case-insensitively,
as every condition key (``domain.policy.resource_tags``).

Both aggregates record one event, ``TagsChanged``, holding the resource's whole tag set after
the change: a read model then sets what it holds, and an as-of read takes the set alive at T.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mandate.domain.common.errors import FieldError, InvalidInput, LimitExceeded

__all__ = [
    "MAX_ROLE_TAG_VALUE_CHARS",
    "MAX_TAGS_PER_CALL",
    "MAX_TAGS_PER_RESOURCE",
    "MAX_TAG_KEY_CHARS",
    "MAX_TAG_VALUE_CHARS",
    "Tagged",
    "check_tag_keys",
    "check_tags",
]

MAX_TAGS_PER_CALL = 20
MAX_TAGS_PER_RESOURCE = 20
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 128
MAX_ROLE_TAG_VALUE_CHARS = 256
_RESERVED_PREFIXES = ("aliyun", "acs:")
_URL_MARKERS = ("http://", "https://")


def _key_fault(key: object) -> str | None:
    if not isinstance(key, str) or not key:
        return "a tag key must be a non-empty string"
    if len(key) > MAX_TAG_KEY_CHARS:
        return f"a tag key has at most {MAX_TAG_KEY_CHARS} characters"
    if key.startswith(_RESERVED_PREFIXES):
        return "a tag key must not start with 'aliyun' or 'acs:' (reserved by Alibaba Cloud)"
    if any(marker in key for marker in _URL_MARKERS):
        return "a tag key must not contain 'http://' or 'https://'"
    if "\x00" in key:
        return "a tag key must not contain NUL characters"
    return None


def _value_fault(value: object, max_chars: int) -> str | None:
    if not isinstance(value, str):
        return "a tag value must be a string (it may be empty)"
    if len(value) > max_chars:
        return f"a tag value has at most {max_chars} characters"
    if value.startswith("acs:"):
        return "a tag value must not start with 'acs:' (reserved by Alibaba Cloud)"
    if any(marker in value for marker in _URL_MARKERS):
        return "a tag value must not contain 'http://' or 'https://'"
    if "\x00" in value:
        return "a tag value must not contain NUL characters"
    return None


def check_tags(
    field: str, tags: object, *, max_value_chars: int = MAX_TAG_VALUE_CHARS
) -> dict[str, str]:
    """The tags to add, as ``{key: value}``, or ``InvalidInput`` naming each bad one
    (``max_value_chars``: 128 for a user's, 256 for a role's)."""
    if not isinstance(tags, Mapping) or not tags:
        raise InvalidInput(
            FieldError(field, "must be an object of 1 to 20 tags {key: value}"),
            code="InvalidParameter.Tag",
        )
    errors: list[FieldError] = []
    if len(tags) > MAX_TAGS_PER_CALL:
        errors.append(FieldError(field, f"at most {MAX_TAGS_PER_CALL} tags per call"))
    for key, value in tags.items():
        fault = _key_fault(key) or _value_fault(value, max_value_chars)
        if fault is not None:
            errors.append(FieldError(f"{field}.{key}", fault))
    if errors:
        raise InvalidInput(errors, code="InvalidParameter.Tag")
    return {str(key): str(value) for key, value in tags.items()}


def check_tag_keys(field: str, keys: object) -> list[str]:
    """The keys to remove (1 to 20 of them), or ``InvalidInput``."""
    if (
        not isinstance(keys, Sequence)
        or isinstance(keys, str)
        or not 1 <= len(keys) <= MAX_TAGS_PER_CALL
    ):
        raise InvalidInput(
            FieldError(field, f"must be a list of 1 to {MAX_TAGS_PER_CALL} tag keys"),
            code="InvalidParameter.TagKey",
        )
    errors = [
        FieldError(f"{field}[{i}]", "a tag key must be a non-empty string")
        for i, key in enumerate(keys)
        if not isinstance(key, str) or not key
    ]
    if errors:
        raise InvalidInput(errors, code="InvalidParameter.TagKey")
    return [str(key) for key in keys]


class Tagged:
    """A tagged aggregate's guards; the aggregate records ``_tags_changed(tags=…)``."""

    tags: dict[str, str]

    def _tagged_name(self) -> str:
        raise NotImplementedError

    def _tags_changed(self, tags: dict[str, str]) -> None:
        raise NotImplementedError

    def current_tags(self) -> dict[str, str]:
        """Its tags (none for an aggregate created before tags, whose state has no field)."""
        return dict(getattr(self, "tags", None) or {})

    def tag(self, tags: Mapping[str, str]) -> None:
        """Add ``tags``, replacing the value of a key it has; refused past 20 tags."""
        merged = {**self.current_tags(), **tags}
        if len(merged) > MAX_TAGS_PER_RESOURCE:
            raise LimitExceeded(
                f"{self._tagged_name()} would have {len(merged)} tags; a resource has at most "
                f"{MAX_TAGS_PER_RESOURCE}",
                code="LimitExceeded.Tag",
            )
        if merged != self.current_tags():
            self._tags_changed(tags=merged)

    def untag(self, keys: Sequence[str] | None) -> None:
        """Remove the tags with ``keys`` (None: all); keys it does not have are no change."""
        current = self.current_tags()
        kept = {} if keys is None else {k: v for k, v in current.items() if k not in set(keys)}
        if kept != current:
            self._tags_changed(tags=kept)
