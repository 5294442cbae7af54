"""Rendering RPC answers and errors as RAM and STS do.

An answer is JSON with PascalCase keys and a ``RequestId`` (the request's ``X-Request-Id``,
the id its events carry); an error is its HTTP status and ``{RequestId, HostId, Code,
Message, Recommend}`` — never an empty body: tea-openapi reads ``Code`` and ``Message`` from
it, aliyun-python-sdk-core too (and splits ``SignatureDoesNotMatch``'s message on ``:``).
Times are ``YYYY-MM-DDThh:mm:ssZ`` in UTC, the only form alibabacloud-credentials parses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

from fastapi.responses import JSONResponse

from mandate.api.presenters import page
from mandate.api.rpc.errors import RpcError, invalid_parameter
from mandate.domain.common.errors import InvalidInput
from mandate.domain.ledger.results import IssuedSession

__all__ = [
    "JSON_TYPE",
    "PRODUCTS",
    "answer_response",
    "error_body",
    "error_response",
    "issued_credentials",
    "listed",
    "paged",
    "rpc_time",
]

T = TypeVar("T")

JSON_TYPE: Final = "application/json;charset=utf-8"

PRODUCTS: Final[dict[str, str]] = {
    "2015-05-01": "Ram",
    "2015-04-01": "Sts",
    "2019-08-15": "Ims",
    "2020-03-31": "ResourceManager",
}
"""The API versions served at ``/`` and the product each belongs to."""


def rpc_time(at: datetime) -> str:
    """``2015-01-23T12:33:18Z``: UTC, whole seconds, a ``Z``."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _RpcJSON(JSONResponse):
    media_type = JSON_TYPE


def issued_credentials(issued: IssuedSession) -> dict[str, Any]:
    """A new session's ``Credentials`` and ``AssumedRoleUser`` as STS answers AssumeRole and
    AssumeRoleWithOIDC (the secret shown this once)."""
    return {
        "Credentials": {
            "AccessKeyId": issued.access_key_id,
            "AccessKeySecret": issued.access_key_secret,
            "SecurityToken": issued.security_token,
            "Expiration": rpc_time(issued.expiration),
        },
        "AssumedRoleUser": {"Arn": issued.arn, "AssumedRoleId": issued.assumed_role_id},
    }


def answer_response(request_id: str, body: dict[str, Any]) -> JSONResponse:
    """A 200 answer: ``RequestId`` first, then the action's fields."""
    return _RpcJSON({"RequestId": request_id, **body})


def error_body(error: RpcError, request_id: str, host: str, version: str | None) -> dict[str, Any]:
    """The error document RAM's gateway sends."""
    product = PRODUCTS.get(version or "", "Ram")
    return {
        "RequestId": request_id,
        "HostId": host or f"{product.lower()}.aliyuncs.com",
        "Code": error.code,
        "Message": error.message,
        "Recommend": (
            f"https://api.aliyun.com/troubleshoot?q={quote(error.code, safe='')}&product={product}"
        ),
    }


def error_response(
    error: RpcError, request_id: str, host: str, version: str | None = None
) -> JSONResponse:
    """The error's HTTP status and body."""
    return _RpcJSON(error_body(error, request_id, host, version), status_code=error.http_status)


def listed(wrapper: str, member: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """RAM's list wrapper, present even when empty: ``{"Users": {"User": [...]}}``."""
    return {wrapper: {member: items}}


def paged(
    items: Sequence[T],
    sort_key: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
    *,
    marker: str | None,
    max_items: int,
    wrapper: str,
    member: str,
) -> dict[str, Any]:
    """A RAM listing page: ``IsTruncated``, ``Marker`` (only when truncated) and the wrapper.

    The marker is the /v1 cursor (opaque: the last name of the page, encoded), so both
    dialects page the same index in the same order.
    """
    try:
        chunk = page(sorted(items, key=sort_key), sort_key, render, cursor=marker, limit=max_items)
    except InvalidInput:
        raise invalid_parameter("Marker", "it is not a marker this service issued") from None
    body: dict[str, Any] = {"IsTruncated": chunk["next_cursor"] is not None}
    if chunk["next_cursor"] is not None:
        body["Marker"] = chunk["next_cursor"]
    body.update(listed(wrapper, member, chunk["items"]))
    return body
