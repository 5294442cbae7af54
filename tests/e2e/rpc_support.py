"""What the RPC end-to-end tests share: the served app, and the real Alibaba Cloud SDK clients
pointed at it.

The app is the real one under uvicorn (``conftest.serving``), over the module's store, with
the runtime's own secret lookup: every secret it issues is sealed into its event, and a
signature is verified with the secret the decision index unseals — nothing is handed to the
server by the test.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException as TeaError
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, MandateClient, serving

RAM_VERSION = "2015-05-01"
STS_VERSION = "2015-04-01"
REGION = "cn-hangzhou"


@dataclass(frozen=True)
class Key:
    """An AccessKey the test holds."""

    access_key_id: str
    secret: str
    account_id: str = ""


@dataclass
class RpcServer:
    """The served app and SDK clients bound to it."""

    api: MandateClient
    accounts: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``, as ``Config(endpoint=…)`` and sdk-core's domain take it."""
        url = self.api.base_url
        return f"{url.host}:{url.port}"

    def head(self) -> int:
        """The head of the log (a refused call must leave it where it was)."""
        return self.api.log_head()

    def open_account(self) -> Key:
        """A new account (through /v1 as the admin); its root key."""
        response = self.api.post("/v1/accounts", json={"name": "Acme"}, headers=self.api.admin)
        assert response.status_code == 201, response.text
        body = response.json()
        root = body["root_access_key"]
        return Key(root["access_key_id"], root["access_key_secret"], body["account_id"])

    def register(self, access_key_id: str, secret: str, account_id: str = "") -> Key:
        """A key an SDK call was just issued, as the test holds it (the server already
        keeps it sealed: nothing is handed to the server)."""
        return Key(access_key_id, secret, account_id)

    def ram(self, key: Key, *, v1: bool = False) -> RamClient:
        """tea-openapi's RAM client: V3 signatures, or V1 (``signature_algorithm='v2'``)."""
        return RamClient(
            Config(
                access_key_id=key.access_key_id,
                access_key_secret=key.secret,
                endpoint=self.endpoint,
                protocol="http",
                signature_algorithm="v2" if v1 else None,
            )
        )

    def core(self, key: Key) -> AcsClient:
        """aliyun-python-sdk-core's client (V1 signatures), every product routed here."""
        client = AcsClient(key.access_key_id, key.secret, REGION)
        client.add_endpoint(REGION, "Ram", self.endpoint)
        client.add_endpoint(REGION, "Sts", self.endpoint)
        return client

    def common(
        self,
        action: str,
        query: dict[str, Any] | None = None,
        *,
        body: dict[str, Any] | None = None,
        method: str = "GET",
        version: str = RAM_VERSION,
    ) -> CommonRequest:
        """sdk-core's ``CommonRequest`` (GET by default, as sdk-core sends it)."""
        request = CommonRequest(domain=self.endpoint, version=version, action_name=action)
        request.set_protocol_type("http")
        request.set_accept_format("json")
        request.set_method(method)
        for name, value in (query or {}).items():
            request.add_query_param(name, value)
        for name, value in (body or {}).items():
            request.add_body_params(name, value)
        return request


def core_call(client: AcsClient, request: Any) -> dict[str, Any]:
    """An sdk-core call's JSON answer."""
    answer: dict[str, Any] = json.loads(client.do_action_with_exception(request))
    return answer


@contextlib.contextmanager
def rpc_serving(
    store_url: str, state_dir: Path, *, tls: tuple[Path, Path] | None = None
) -> Iterator[RpcServer]:
    """Serve the real app over ``store_url``, with its own sealed-secret lookup (over HTTPS
    with ``tls``: certificate and key files, for clients that insist on it)."""
    settings = Settings(
        database_url=store_url,
        admin_token=ADMIN_TOKEN,
        hash_key=HASH_KEY,
        state_dir=state_dir,
    )
    runtime = Runtime(settings, create_tables=True)
    with serving(runtime, tls=tls) as api:
        yield RpcServer(api)


__all__ = [
    "RAM_VERSION",
    "STS_VERSION",
    "Key",
    "RpcServer",
    "ServerException",
    "TeaError",
    "core_call",
    "rpc_serving",
]
