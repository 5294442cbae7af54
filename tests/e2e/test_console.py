"""The audit console in a real browser: headless Chromium driving the page the API serves.

One server over SQLite for the module (the console is static files over the same HTTP API as
every client; the stores are covered by the API's own tests), holding an account of 100,000
audit records and scenario 2 with its contract revoked (``console_support``). Each test signs in
through the page as a user would; screenshots of the main views land in
``test-artifacts/console/`` (gitignored). First paint of each view is measured with the
Performance API and printed (``-s`` shows the table): a figure reported, never asserted against a
clock on a shared machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mandate.api.console import CONTENT_SECURITY_POLICY
from mandate.api.runtime import Runtime
from tests.e2e.conftest import MandateClient, serving
from tests.e2e.console_support import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    Key,
    Scenario2,
    build_large_account,
    chromium_or_skip,
    post,
    scenario_2,
    settings_for,
    wait_for_projections,
)

TIMEOUT_MS = 20_000
FIRST_PAINTS: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Key, float]:
    """A SQLite store holding one account of ``LARGE_EVENTS`` events, projected."""
    directory = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{directory}/mandate.db"
    key, seconds = build_large_account(url, directory)
    return url, directory, key, seconds


@pytest.fixture(scope="module")
def server(large: tuple[str, Path, Key, float]) -> Iterator[MandateClient]:
    url, directory, _, _ = large
    with serving(Runtime(settings_for(url, directory), create_tables=True)) as client:
        wait_for_projections(client)
        yield client


@pytest.fixture(scope="module")
def scenario(server: MandateClient) -> Scenario2:
    found = scenario_2(server)
    a = found.acme.account_id
    policy_path = f"/v1/accounts/{a}/policies"
    first = {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": f"acs:ecs:*:{a}:*"}
    post(
        server,
        policy_path,
        found.acme,
        {"policy_name": "fleet-readers", "policy_document": {"Version": "1", "Statement": [first]}},
    )
    second = [first, {"Effect": "Deny", "Action": "ecs:DeleteInstance", "Resource": "*"}]
    post(
        server,
        f"{policy_path}/fleet-readers/versions",
        found.acme,
        {"policy_document": {"Version": "1", "Statement": second}, "set_as_default": True},
    )
    wait_for_projections(server)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
    if FIRST_PAINTS:
        print("\nconsole first paint (ms after navigation start, 100,000-record account):")
        for view, figures in FIRST_PAINTS.items():
            shown = ", ".join(f"{name} {value:.0f}" for name, value in figures.items())
            print(f"  {view:<11} {shown}")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    yield opened
    context.close()
    # no uncaught exception and no refused script or style (the CSP would say so here)
    assert [e for e in errors if "status of 4" not in e] == []


def sign_in(page: Any, base: str, key: Key, *, hash_: str = "") -> None:
    page.goto(f"{base}/console/{hash_}")
    page.get_by_label("AccessKeyId").fill(key.access_key_id)
    page.get_by_label("AccessKeySecret").fill(key.access_key_secret)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#identity .who").wait_for()


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def first_paint(page: Any, view: str) -> dict[str, float]:
    """The Performance API's figures for this navigation: first contentful paint and the
    view's own mark (set when its first rows are in the page)."""
    page.wait_for_function(
        f"performance.getEntriesByName('view:{view}:rendered').length > 0", timeout=TIMEOUT_MS
    )
    figures: dict[str, float] = page.evaluate(
        f"""() => {{
          const paint = performance.getEntriesByType('paint')
            .find((e) => e.name === 'first-contentful-paint');
          const mark = performance.getEntriesByName('view:{view}:rendered')[0];
          return {{ 'first-contentful-paint': paint ? paint.startTime : -1,
                   'view rendered': mark.startTime }};
        }}"""
    )
    return figures


# -- (a) serving and sign-in --------------------------------------------------------------------


def test_the_console_is_served_from_the_api_with_a_self_only_policy(server: MandateClient) -> None:
    page = server.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert '<script type="module" src="js/app.js">' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no other host
    script = server.get("/console/js/signing.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    vendored = server.get("/console/vendor/cytoscape.min.js")
    assert vendored.status_code == 200
    assert "Cytoscape Consortium" in vendored.text[:400]
    moved = server.get("/console", follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (308, "/console/")
    missing = server.get("/console/nothing.js")
    assert missing.status_code == 404
    assert missing.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    # the console is no operation of the API: the OpenAPI document does not list it
    paths = server.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]


def test_sign_in_signs_every_request_and_never_sends_the_secret(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    sent: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: sent.append(
            {
                "url": request.url,
                "headers": request.all_headers(),
                "body": request.post_data or "",
            }
        ),
    )
    key = scenario.acme
    sign_in(page, server.base_url.__str__().rstrip("/"), key)
    assert page.locator("#identity .who").inner_text() == f"acs:ram::{key.account_id}:root"
    page.locator("#list-users").wait_for()
    api_calls = [r for r in sent if "/v1/" in r["url"]]
    assert len(api_calls) >= 3
    for request in api_calls:
        authorization = request["headers"].get("authorization", "")
        assert authorization.startswith(
            f"ACS3-HMAC-SHA256 Credential={key.access_key_id},SignedHeaders="
        ), request
        assert "host" in authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    for request in sent:
        assert key.access_key_secret not in json.dumps(request), request["url"]
    # the key is kept in this tab's sessionStorage only
    stored = page.evaluate("() => [sessionStorage.length, localStorage.length, document.cookie]")
    assert stored == [1, 0, ""]
    # a wrong secret is refused with the API's reason, and nothing is kept
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("AccessKeyId").fill(key.access_key_id)
    page.get_by_label("AccessKeySecret").fill("not-the-secret-" + "x" * 16)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#signin-status", has_text="Sign-in refused").wait_for()
    assert "SignatureDoesNotMatch" in page.locator("#signin-status").inner_text() or (
        "signature" in page.locator("#signin-status").inner_text().lower()
    )
    assert page.evaluate("() => sessionStorage.length") == 0


def test_a_signature_made_in_the_browser_is_accepted_once(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    """The browser's ACS3 signature, replayed as captured: accepted, then refused (the nonce)."""
    base = str(server.base_url).rstrip("/")
    sign_in(page, base, scenario.acme)
    signed = page.evaluate(
        """async (base) => {
          const { makeSigner } = await import('/console/js/signing.js');
          const creds = JSON.parse(sessionStorage.getItem('mandate.console.credentials'));
          const signer = await makeSigner(creds.accessKeyId, creds.accessKeySecret);
          const url = new URL('/v1/sts/caller-identity?b=2&a=x%20y', base);
          return { url: url.href, headers: await signer.sign('GET', url, '') };
        }""",
        base,
    )
    first = server.get(signed["url"], headers=signed["headers"])
    assert first.status_code == 200, first.text
    assert first.json()["arn"] == f"acs:ram::{scenario.acme.account_id}:root"
    again = server.get(signed["url"], headers=signed["headers"])
    assert again.status_code == 401
    assert again.json()["code"] == "SignatureNonceUsed"


def base_of(server: MandateClient) -> str:
    return str(server.base_url).rstrip("/")


def put_at(page: Any, instant: datetime) -> None:
    """Move the time slider to ``instant`` as a user would (its value, then its input event)."""
    page.locator("#asof-slider").evaluate(
        "(slider, seconds) => { slider.value = String(seconds);"
        " slider.dispatchEvent(new Event('input', { bubbles: true })); }",
        int(instant.timestamp()),
    )
    page.locator("#asof-status", has_text=instant.isoformat().replace("+00:00", "")).wait_for()


# -- (b) decision tester and policy editor ------------------------------------------------------


def test_the_decision_tester_answers_as_post_authorize(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    sign_in(page, base_of(server), scenario.opsco, hash_="#/tester")
    a, b = scenario.acme.account_id, scenario.opsco.account_id
    page.get_by_label("Principal (ARN or STS key id)").fill(f"acs:ram::{b}:user/lee.w")
    page.get_by_label("Action", exact=True).fill("sts:AssumeRole")
    page.get_by_label("Resource", exact=True).fill(f"acs:ram::{a}:role/MSA-2026-117")
    page.get_by_role("button", name="Decide").click()
    shown = page.locator("#tester-decision")
    shown.wait_for()
    expected = server.authorize(
        scenario.opsco.basic,
        principal=f"acs:ram::{b}:user/lee.w",
        action="sts:AssumeRole",
        resource=f"acs:ram::{a}:role/MSA-2026-117",
    )
    assert shown.locator(".decision-value").inner_text() == expected["decision"] == "Allow"
    assert expected["reason"] in shown.inner_text()
    assert "AliyunSTSAssumeRoleAccess" in shown.locator("table").inner_text()
    shoot(page, "decision-tester")


def test_the_policy_editor_shows_the_apis_errors_as_you_type_then_simulates(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    sign_in(page, base_of(server), scenario.acme, hash_="#/tester")
    editor = page.get_by_label("Policy document (JSON)")
    page.locator("#policy-valid").wait_for()  # the example document is valid
    document = {
        "Version": "1",
        "Statement": [{"Effect": "Alow", "Action": "oss:GetObject", "Resource": "*"}],
    }
    editor.fill(json.dumps(document, indent=2))
    errors = page.locator("#policy-errors")
    errors.wait_for()
    api_says = server.post(
        "/v1/simulate",
        json={"policies": [document], "action": "oss:GetObject", "resource": "acs:oss:*:1:b/x"},
        headers=scenario.acme.basic,
    ).json()["errors"][0]
    assert api_says["field"] == "policies[0].Statement[0].Effect"
    assert errors.locator("code.path").first.inner_text() == "$.Statement[0].Effect"
    assert api_says["reason"] in errors.inner_text()
    assert editor.get_attribute("aria-invalid") == "true"
    editor.fill("{not json")
    page.locator("#policy-errors", has_text="Not JSON").wait_for()
    document["Statement"][0]["Effect"] = "Deny"
    editor.fill(json.dumps(document, indent=2))
    page.locator("#policy-valid").wait_for()
    decision = page.locator("#policy-decision .decision-value")
    assert decision.inner_text() == "ExplicitDeny"
    assert editor.get_attribute("aria-invalid") is None
    shoot(page, "policy-editor")
