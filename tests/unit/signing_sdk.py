"""Requests signed by Alibaba Cloud's own SDKs, seen as a server would see them.

The SDK clients run for real up to the point of sending: their transport (``do_action``) is
replaced by one that keeps the prepared request and fails, so nothing leaves the machine.
``wire`` then turns the request into what a server reads: the URL the SDK's transport would
build (``compose_url``: ``urlencode``), split and decoded as Starlette does
(``parse_qsl(keep_blank_values=True)``), the headers, the body's bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

AK = "LTAI5tExampleKey0001"
SECRET = "Ex4mpleSecretKeyForTests0000001"
TOKEN = "CAIS+token/with==odd chars"


@dataclass(frozen=True)
class Wire:
    """One request as the server receives it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes

    def form(self) -> list[tuple[str, str]]:
        """The form body's parameters, decoded."""
        return parse_qsl(self.body.decode(), keep_blank_values=True)


class Sent(Exception):
    """Raised by the fake transport, carrying the request the SDK was about to send."""

    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def capture(monkeypatch: pytest.MonkeyPatch, owner: Any, call: Callable[[], object]) -> Any:
    """Run ``call`` with ``owner.do_action`` replaced; the request it would have sent."""
    seen: list[Any] = []

    def do_action(request: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(request)
        raise Sent(request)

    with monkeypatch.context() as patch:
        patch.setattr(owner, "do_action", staticmethod(do_action))
        with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK wraps Sent its own ways
            call()
    assert seen, "the SDK sent nothing"
    return seen[-1]


def wire(request: Any, compose_url: Callable[[Any], str]) -> Wire:
    """A Tea/Dara request as received: URL built by the SDK's transport, then decoded."""
    split = urlsplit(compose_url(request))
    body = request.body
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        data = body
    else:
        data = str(body).encode()
    return Wire(
        method=request.method,
        path=split.path or "/",
        query=parse_qsl(split.query, keep_blank_values=True),
        headers=[(k, str(v)) for k, v in request.headers.items() if v is not None],
        body=data,
    )


def tea_client(**config: Any) -> Any:
    """A bare tea-openapi client for ram.aliyuncs.com with the test key (and ``config``)."""
    from alibabacloud_tea_openapi.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    settings: dict[str, Any] = {
        "access_key_id": AK,
        "access_key_secret": SECRET,
        "endpoint": "ram.aliyuncs.com",
    }
    settings.update(config)
    return Client(Config(**settings))


def tea_call(
    monkeypatch: pytest.MonkeyPatch,
    *,
    query: dict[str, str] | None = None,
    body: dict[str, str] | None = None,
    action: str = "CreateUser",
    method: str = "POST",
    pathname: str = "/",
    style: str = "RPC",
    **config: Any,
) -> Wire:
    """``call_api`` as RAM's client makes it (an RPC action unless ``style``/``pathname``
    say otherwise); the request on the wire."""
    from alibabacloud_tea_openapi import client as openapi
    from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
    from darabonba.core import DaraCore
    from darabonba.runtime import RuntimeOptions

    client = tea_client(**config)
    params = Params(
        action=action,
        version="2015-05-01",
        protocol="HTTPS",
        pathname=pathname,
        method=method,
        auth_type="AK",
        style=style,
        req_body_type="formData",
        body_type="json",
    )
    request = OpenApiRequest(query=query, body=body)
    sent = capture(
        monkeypatch,
        openapi.DaraCore,
        lambda: client.call_api(params, request, RuntimeOptions()),
    )
    return wire(sent, DaraCore.compose_url)


def core_signed(
    query: dict[str, str], body: dict[str, str], *, method: str = "POST", token: str | None = None
) -> tuple[list[tuple[str, str]], str]:
    """aliyun-python-sdk-core's RpcRequest, as AcsClient would send it: the parameters as
    the server decodes them (URL query + form body) and the SDK's own string to sign."""
    from aliyunsdkcore.request import RpcRequest as CoreRpcRequest

    request = CoreRpcRequest("Ram", "2015-05-01", "CreateUser")
    request.set_method(method)
    for k, v in query.items():
        request.add_query_param(k, v)
    for k, v in body.items():
        request.add_body_params(k, v)
    if token is not None:  # what StsTokenSigner does for an RPC request
        request.add_query_param("SecurityToken", token)
    url = request.get_url("cn-hangzhou", AK, SECRET)
    received = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    form = parse_qsl(urlencode(body), keep_blank_values=True)  # AcsClient: urlencode(body)
    return received + form, request.string_to_sign
