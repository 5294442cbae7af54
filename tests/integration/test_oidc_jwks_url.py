"""An OIDC provider whose keys are given by URL: fetched over HTTPS when a token is exchanged.

A JWKS is served from 127.0.0.1 over HTTPS with a throwaway certificate (the fetcher is
given a context trusting it, as production trusts the system's CAs). RAM reads an IdP's
keys from the IdP itself (the issuer), so the URL must be on the issuer's host:
https://www.alibabacloud.com/help/en/ram/user-guide/manage-an-oidc-idp
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mandate.api.jwks_fetch import HttpJwksSource
from mandate.domain.common.errors import InvalidInput
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.federation import read_oidc_provider
from mandate.domain.sts.oidc_tokens import JwksUnavailable, TokenRefused
from mandate.domain.sts.session_tokens import SessionTokenSigner
from tests.oidc_support import CLIENT_ID, SUBJECT, federated_trust, jwks, token


@dataclass
class JwksServer:
    url: str
    context: ssl.SSLContext
    answers: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def jwks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JwksServer]:
    cert, key = _certificate(tmp_path_factory.mktemp("tls"))
    state = JwksServer("", ssl.create_default_context(cafile=str(cert)))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            status, body, headers = state.answers.get(self.path, (404, b"", {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(cert, key)
    server.socket = serving.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _ledger(source: HttpJwksSource) -> Ledger:
    ledger = Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        hasher=SecretHasher("k", {"k": b"k" * 32}),
        token_signer=SessionTokenSigner("t1", {"t1": b"t" * 32}),
    )
    ledger.jwks_source = source
    return ledger


def test_the_fetcher_reads_a_jwks_caches_it_and_refuses_what_is_not_one(
    jwks_server: JwksServer,
) -> None:
    source = HttpJwksSource(ssl_context=jwks_server.context, ttl=300)
    jwks_server.answers["/keys"] = (200, json.dumps(jwks()).encode(), {})
    first = source.fetch(f"{jwks_server.url}/keys")
    assert json.loads(first)["keys"][0]["kid"] == "rsa-1"
    assert source.fetch(f"{jwks_server.url}/keys") == first
    assert jwks_server.hits.count("/keys") == 1  # the second came from the cache
    jwks_server.answers["/html"] = (200, b"<html>", {})
    jwks_server.answers["/moved"] = (302, b"", {"Location": f"{jwks_server.url}/keys"})
    for path, why in (
        ("/missing", "answered 404"),
        ("/html", "did not answer JSON"),
        ("/moved", "answered 302"),
    ):
        with pytest.raises(JwksUnavailable, match=why):
            source.fetch(f"{jwks_server.url}{path}")
    with pytest.raises(JwksUnavailable, match="https"):
        source.fetch("http://127.0.0.1:9/keys")
    untrusting = HttpJwksSource()  # the system's CAs do not know the throwaway certificate
    with pytest.raises(JwksUnavailable, match="cannot be reached"):
        untrusting.fetch(f"{jwks_server.url}/keys")


def test_a_provider_with_a_jwks_url_verifies_tokens_with_the_fetched_keys(
    jwks_server: JwksServer,
) -> None:
    issuer = f"{jwks_server.url}/tenant"
    jwks_server.answers["/tenant/keys"] = (200, json.dumps(jwks()).encode(), {})
    ledger = _ledger(HttpJwksSource(ssl_context=jwks_server.context))
    account = ledger.open_account("Acme").account_id
    with pytest.raises(InvalidInput, match="issuer URL's host"):
        ledger.create_oidc_provider(
            account,
            "ci-idp",
            issuer_url=issuer,
            client_ids=[CLIENT_ID],
            jwks_url="https://elsewhere.example.test/keys",
        )
    with pytest.raises(InvalidInput, match="inline"):
        ledger.create_oidc_provider(
            account,
            "ci-idp",
            issuer_url=issuer,
            client_ids=[CLIENT_ID],
            jwks=jwks(),
            jwks_url=f"{issuer}/keys",
        )
    ledger.create_oidc_provider(
        account, "ci-idp", issuer_url=issuer, client_ids=[CLIENT_ID], jwks_url=f"{issuer}/keys"
    )
    ledger.create_role(account, "deployer", federated_trust(account, "ci-idp", sub=SUBJECT))

    def exchange(oidc_token: str) -> Any:
        return ledger.assume_role_with_oidc(
            oidc_provider_arn=f"acs:ram::{account}:oidc-provider/ci-idp",
            role_arn=f"acs:ram::{account}:role/deployer",
            oidc_token=oidc_token,
            role_session_name="ci-run",
        )

    assert exchange(token(iss=issuer)).token.subject == SUBJECT
    assert exchange(token(alg="ES256", iss=issuer)).issued.access_key_id.startswith("STS.")
    # the provider now points at a URL that answers no JWKS: refused, nothing written
    ledger.update_oidc_provider(account, "ci-idp", jwks_url=f"{issuer}/gone")
    head = ledger.recorder.max_notification_id()
    with pytest.raises(TokenRefused) as refused:
        exchange(token(iss=issuer))
    assert refused.value.code == "AuthenticationFail.OIDCToken.HttpsUrlInvalid"
    assert ledger.recorder.max_notification_id() == head
    # back to inline keys
    ledger.update_oidc_provider(account, "ci-idp", jwks=jwks())
    provider = read_oidc_provider(ledger, account, "ci-idp")
    assert provider.jwks_url is None
    assert exchange(token(iss=issuer)).issued


@pytest.mark.parametrize("min_refresh", [0.0, 3_600.0], ids=["refetched", "too-soon"])
def test_a_token_naming_a_key_the_cached_jwks_lacks_reads_the_keys_afresh_once(
    jwks_server: JwksServer, min_refresh: float
) -> None:
    """The IdP rotated after the keys were cached: its new kid triggers one fresh read —
    unless the last read is younger than ``min_refresh`` (no hammering on unknown kids)."""
    prefix = f"/rotating-{int(min_refresh)}"
    issuer, path = f"{jwks_server.url}{prefix}", f"{prefix}/keys"
    old_only = {"keys": [jwks()["keys"][0]]}
    jwks_server.answers[path] = (200, json.dumps(old_only).encode(), {})
    source = HttpJwksSource(ssl_context=jwks_server.context, ttl=300, min_refresh=min_refresh)
    ledger = _ledger(source)
    account = ledger.open_account("Acme").account_id
    ledger.create_oidc_provider(
        account,
        "ci-idp",
        issuer_url=issuer,
        client_ids=[CLIENT_ID],
        jwks_url=f"{jwks_server.url}{path}",
    )
    ledger.create_role(account, "deployer", federated_trust(account, "ci-idp"))

    def exchange(oidc_token: str) -> Any:
        return ledger.assume_role_with_oidc(
            oidc_provider_arn=f"acs:ram::{account}:oidc-provider/ci-idp",
            role_arn=f"acs:ram::{account}:role/deployer",
            oidc_token=oidc_token,
            role_session_name="ci-run",
        )

    assert exchange(token(iss=issuer)).issued  # rsa-1: fetched and cached
    jwks_server.answers[path] = (200, json.dumps(jwks()).encode(), {})  # ec-1 added
    hits = jwks_server.hits.count(path)
    if min_refresh == 0:
        assert exchange(token(alg="ES256", iss=issuer)).issued
        assert jwks_server.hits.count(path) == hits + 1
    else:
        with pytest.raises(TokenRefused) as refused:
            exchange(token(alg="ES256", iss=issuer))
        assert refused.value.code == "AuthenticationFail.OIDCToken.InvalidSignature"
        assert jwks_server.hits.count(path) == hits
