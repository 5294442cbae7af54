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
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mandate.api.console import CONTENT_SECURITY_POLICY
from mandate.api.runtime import Runtime
from tests.e2e.conftest import MandateClient, serving
from tests.e2e.console_support import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    LARGE_EVENTS,
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
def large_server(large: tuple[str, Path, Key, float]) -> Iterator[MandateClient]:
    """The server over the large account's store (the trail and first-paint tests)."""
    url, directory, _, _ = large
    with serving(Runtime(settings_for(url, directory), create_tables=True)) as client:
        wait_for_projections(client)
        yield client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MandateClient]:
    """A server over a store of its own for scenario 2: its reviews replay a short log (an
    access review's first replay over the large store's 100,000 events is a cost of its own,
    not the console's)."""
    directory = tmp_path_factory.mktemp("console-small")
    url = f"sqlite:///{directory}/mandate.db"
    with serving(Runtime(settings_for(url, directory), create_tables=True)) as client:
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
        # kept with the screenshots too: plain pytest captures what is printed
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "first-paint.json").write_text(json.dumps(FIRST_PAINTS, indent=2) + "\n")
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
        f"() => performance.getEntriesByName('view:{view}:rendered').length > 0",
        timeout=TIMEOUT_MS,
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
    page.wait_for_function(
        "(at) => document.documentElement.dataset.asOf === at",
        arg=instant.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    )


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
    # a condition on the request's context: decided with the context given, simulated again
    document["Statement"][0] = {
        "Effect": "Allow",
        "Action": "oss:GetObject",
        "Resource": "*",
        "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
    }
    editor.fill(json.dumps(document, indent=2))
    page.locator("#policy-decision .decision-value", has_text="ImplicitDeny").wait_for()
    page.get_by_label("Request context (JSON)").nth(1).fill('{"acs:SourceIp": "10.1.2.3"}')
    page.locator("#policy-decision .decision-value", has_text="Allow").wait_for()
    shoot(page, "policy-editor")


# -- (c) the audit timeline, on 100,000 records -------------------------------------------------


def test_the_audit_timeline_pages_a_large_trail_and_shows_its_chain(
    large_server: MandateClient, large: tuple[str, Path, Key, float], page: Any
) -> None:
    _, _, key, built = large
    print(f"\nlarge account: {LARGE_EVENTS:,} events written and projected in {built:.1f} s")
    sign_in(page, base_of(large_server), key, hash_="#/audit")
    rows = page.locator("#audit-list .rows .row")
    rows.first.wait_for()
    # paged through the API (200 a page) and virtualised: a screenful of rows in the page
    page.locator("#audit-status", has_text="200 records shown").wait_for()
    assert 10 <= rows.count() <= 60
    assert rows.first.locator("span").nth(2).inner_text() == "AccountOpened"
    # scrolling near the end of what is loaded reads the next page (the cursor)
    page.locator("#audit-list").evaluate("(list) => { list.scrollTop = list.scrollHeight; }")
    page.locator("#audit-status", has_text="400 records shown").wait_for()
    assert rows.count() <= 60
    # the keyboard moves the selection; the record's detail is shown
    page.locator("#audit-list").focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    detail = json.loads(page.locator("#audit-detail").inner_text())
    assert detail["position"] == 2  # the account's second event, in the log's order
    # the chain: verified over every record, and the last signed checkpoint
    verify = page.locator("#audit-verify")
    verify.wait_for(timeout=60_000)
    assert verify.inner_text().startswith("Verified:")
    checked = int(verify.inner_text().split()[1])
    assert checked > LARGE_EVENTS  # every record of the account's chain
    assert "Last signed checkpoint: position" in page.locator("#audit-checkpoint").inner_text()
    shoot(page, "audit-timeline")
    # filtered by type, then exported as CSV: the same selection, through a signed download
    page.get_by_label("Event type").fill("GroupCreated")
    page.get_by_role("button", name="Apply").click()
    page.locator("#audit-status", has_text="10 records shown").wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    exported = Path(download.value.path()).read_text().splitlines()
    assert len(exported) == 1 + 10  # a header, then the ten groups
    assert "GroupCreated" in exported[1]
    # a record leads to the page at its instant: the trail then ends there
    page.locator("#audit-list").focus()
    page.keyboard.press("End")
    last = json.loads(page.locator("#audit-detail").inner_text())
    page.get_by_role("button", name="Put the page at its instant").click()
    page.locator("#asof-status", has_text=last["time"][:19]).wait_for()
    page.locator("#audit-status", has_text="records shown").wait_for()
    assert page.get_by_label("To (UTC)").input_value() == last["time"][:19]


def test_first_paint_of_each_view_on_the_large_account_is_measured(
    large_server: MandateClient, large: tuple[str, Path, Key, float], page: Any
) -> None:
    """Each view opened afresh (a reload, signed in from the tab's session) on the account of
    100,000 records: the browser's first contentful paint and the view's own mark, recorded and
    printed. The issue asks for under 1 s; a shared CI machine is no place for a timed assert."""
    _, _, key, _ = large
    sign_in(page, base_of(large_server), key)
    for view in ("principals", "audit", "tester", "graph"):
        page.evaluate(f"() => {{ location.hash = '#/{view}'; }}")
        page.reload()
        FIRST_PAINTS[view] = figures = first_paint(page, view)
        assert figures["first-contentful-paint"] > 0
        assert figures["view rendered"] >= figures["first-contentful-paint"]
        if view == "principals":
            users = page.locator("#list-users li")
            assert users.count() >= 200  # the large account's users, all listed
            # a group's members lead to a member's permissions, the group's among them
            page.locator("#list-groups").get_by_role("button", name="g00").click()
            members = page.locator("#group-members li button")
            members.first.wait_for()
            member = members.first.inner_text()
            members.first.click()
            effective = page.locator("#effective")
            effective.wait_for()
            assert f":user/{member} as of " in effective.inner_text()


# -- (d) principals and grants ------------------------------------------------------------------


def test_principals_show_effective_permissions_and_a_policys_versions_side_by_side(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    b = scenario.opsco.account_id
    sign_in(page, base_of(server), scenario.opsco, hash_="#/principals")
    page.locator("#list-users").get_by_role("button", name="ravi.k").click()
    effective = page.locator("#effective")
    effective.wait_for()
    assert f"acs:ram::{b}:user/ravi.k" in effective.inner_text()
    assert "AliyunSTSAssumeRoleAccess" in effective.locator("table").inner_text()
    # the contract as OpsCo received it, revoked, with its delegation ended
    contracts = page.locator("#list-contracts")
    contracts.get_by_text("Entrustments received").wait_for()
    assert "MSA-2026-117" in contracts.inner_text()
    assert "revoked" in contracts.inner_text()
    # what the contract grants, unfolded from the keyboard
    received = contracts.locator("table", has_text="Entrustments received")
    received.locator("summary").first.focus()
    page.keyboard.press("Enter")
    assert "ops-bucket" in received.locator("details pre").first.inner_text()
    # before the revocation, as OpsCo received it then
    put_at(page, scenario.before_revocation)
    page.locator("#h-contracts", has_text="as of").wait_for()
    then = page.locator("#list-contracts table", has_text="Entrustments received")
    then.locator(".status.active").wait_for()
    assert scenario.acme.account_id in then.inner_text()
    page.get_by_role("button", name="Now (live)").click()
    page.locator("#h-contracts", has_text="as of").wait_for(state="detached")
    shoot(page, "principals")
    # Acme's policy and its two versions, as a diff
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base_of(server), scenario.acme, hash_="#/principals")
    page.locator("#list-policies").get_by_role("button", name="fleet-readers").click()
    diff = page.locator("#version-diff table.diff")
    diff.wait_for()
    assert page.get_by_label("Version", exact=True).input_value() == "v1"
    assert page.get_by_label("beside").input_value() == "v2"
    added = diff.locator("tr.added").all_inner_texts()
    assert any("ecs:DeleteInstance" in row for row in added)
    assert diff.locator("tr.removed").count() <= 2  # v1's closing lines, reshaped at most
    shoot(page, "policy-versions")


# -- (e) the time slider ------------------------------------------------------------------------


def test_the_principals_view_follows_the_slider(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    """At an instant the lists are the account's as they stood (GET …/as-of/{kind})."""
    sign_in(page, base_of(server), scenario.acme, hash_="#/principals")
    contracts = page.locator("#list-contracts")
    contracts.get_by_text("Entrustments granted").wait_for()
    put_at(page, scenario.before_revocation)
    page.locator("#h-contracts", has_text="as of").wait_for()
    granted = contracts.locator("table").first
    granted.locator(".status.active").wait_for()
    sessions = contracts.locator("table", has_text="Role sessions")
    assert "ravi-oncall" in sessions.inner_text()
    assert sessions.locator(".status.active").count() == 1
    # the policy created after the revocation did not exist yet
    assert "fleet-readers" not in page.locator("#list-policies").inner_text()
    put_at(page, scenario.after_revocation)
    contracts.locator("table").first.locator(".status.revoked").wait_for()
    ended = contracts.locator("table", has_text="Role sessions").locator(".status.ended")
    ended.wait_for()
    assert "revoked" in contracts.locator("table", has_text="Role sessions").inner_text()
    shoot(page, "principals-as-of")


def at_second() -> datetime:
    """An instant the slider can be put at (whole seconds) after every event written so far;
    every event written from now on comes after it."""
    time.sleep(1.1)
    return datetime.now(UTC).replace(microsecond=0)


def test_a_principals_relations_follow_the_slider(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    """Across a detach and a membership removal: the user's attached policies and effective
    permissions, the group's members and the policy's holders are those of the instant; a
    contract's managed role's trust policy admits ravi.k before the revocation, no one after."""
    a = scenario.acme.account_id
    base = f"/v1/accounts/{a}"
    post(server, f"{base}/users", scenario.acme, {"user_name": "dana"})
    post(server, f"{base}/groups", scenario.acme, {"group_name": "auditors"})
    reads = [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:{a}:reports/*"}]
    server.create_policy(a, scenario.acme.basic, "dana-reads", reads)
    server.attach(a, scenario.acme.basic, "users/dana", "Custom", "dana-reads")
    assert server.put(
        f"{base}/groups/auditors/members/dana", headers=scenario.acme.basic
    ).is_success
    attached = at_second()
    for path in ("users/dana/policies/Custom/dana-reads", "groups/auditors/members/dana"):
        assert server.delete(f"{base}/{path}", headers=scenario.acme.basic).is_success
    detached = at_second()

    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    sign_in(page, base_of(server), scenario.acme, hash_="#/principals")
    page.locator("#list-users").get_by_role("button", name="dana").click()
    policies = page.locator("#attached-policies")
    policies.get_by_text("Attached policies (live)").wait_for()
    assert "dana-reads" not in policies.inner_text()
    page.locator("#asof-slider").focus()  # as a keyboard user moving it
    put_at(page, attached)
    policies.get_by_text(f"Attached policies as of {iso(attached)}").wait_for()
    assert "dana-reads" in policies.inner_text()
    effective = page.locator("#effective")
    assert f"as of {iso(attached)}" in effective.inner_text()
    assert "dana-reads" in effective.locator("table").inner_text()
    assert page.evaluate("() => document.activeElement.id") == "asof-slider"  # kept there
    put_at(page, detached)
    policies.get_by_text(f"Attached policies as of {iso(detached)}").wait_for()
    assert "dana-reads" not in policies.inner_text()
    assert f"as of {iso(detached)}" in effective.inner_text()
    assert "dana-reads" not in effective.inner_text()
    # the group's members, then and after the removal
    page.locator("#list-groups").get_by_role("button", name="auditors").click()
    members = page.locator("#group-members")
    members.get_by_text(f"Members as of {iso(detached)}: 0").wait_for()
    put_at(page, attached)
    members.get_by_text(f"Members as of {iso(attached)}: 1").wait_for()
    assert members.get_by_role("button", name="dana").is_visible()
    # what the policy is attached to, at each instant
    page.locator("#list-policies").get_by_role("button", name="dana-reads").click()
    holders = page.locator("#policy-entities")
    holders.get_by_text(f"Attached to (as of {iso(attached)}): 1").wait_for()
    assert "user · acs:ram::" in holders.inner_text()
    shoot(page, "principals-relations-as-of")
    put_at(page, detached)
    holders.get_by_text(f"Attached to (as of {iso(detached)}): 0").wait_for()
    # the contract's managed role: its computed trust then
    put_at(page, scenario.before_revocation)
    page.locator("#list-roles").get_by_role("button", name="MSA-2026-117").click()
    trust = page.locator("#trust-policy")
    trust.get_by_text(f"Trust policy as of {iso(scenario.before_revocation)}").wait_for()
    assert f"acs:ram::{scenario.opsco.account_id}:user/ravi.k" in trust.inner_text()
    put_at(page, scenario.after_revocation)
    trust.get_by_text(f"Trust policy as of {iso(scenario.after_revocation)}").wait_for()
    assert "ravi.k" not in trust.inner_text()


def test_the_time_slider_changes_an_answer_across_the_revocation(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    sign_in(page, base_of(server), scenario.acme, hash_="#/tester")
    page.get_by_label("Principal (ARN or STS key id)").fill(scenario.session_key_id)
    page.get_by_label("Action", exact=True).fill("ecs:RebootInstance")
    page.get_by_label("Resource", exact=True).fill(scenario.instance)
    put_at(page, scenario.before_revocation)
    page.get_by_role("button", name="Decide").click()
    verdict = page.locator("#tester-decision .decision-value")
    verdict.wait_for()
    assert verdict.inner_text() == "Allow"
    assert scenario.delegation["arn"] in page.locator("#tester-decision .chain").inner_text()
    # the events around the instant, under the slider: the revocation comes just after
    page.locator("#asof-events li.later", has_text="EntrustmentRevoked").wait_for()
    shoot(page, "time-slider-before")
    # past the revocation the same question, asked again by the slider itself, is refused
    put_at(page, scenario.after_revocation)
    page.locator("#tester-decision .decision-value", has_text="ImplicitDeny").wait_for()
    assert "revoked" in page.locator("#tester-decision .reason").inner_text()
    page.locator("#asof-events li.earlier", has_text="EntrustmentRevoked").wait_for()
    shoot(page, "time-slider-after")
    # back to live
    page.get_by_role("button", name="Now (live)").click()
    page.locator("#asof-status", has_text="Live").wait_for()


# -- (f) the delegation graph -------------------------------------------------------------------


def test_the_delegation_graph_of_scenario_2_moves_with_the_slider(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    a, b = scenario.acme.account_id, scenario.opsco.account_id
    query = f"?resource={scenario.instance}&action=ecs:RebootInstance"
    sign_in(page, base_of(server), scenario.acme, hash_=f"#/graph{query}")
    page.locator("#graph-status", has_text="principals").wait_for()
    nodes = page.evaluate("() => window.mandateGraph.nodes().map((n) => n.id())")
    ravi = f"acs:ram::{b}:user/ravi.k"
    chain = [
        ravi,
        scenario.delegation["arn"],
        scenario.entrustment["arn"],
        f"acs:ram::{a}:role/MSA-2026-117",
    ]
    assert set(chain) <= set(nodes)
    assert f"acs:ram::{b}:user/lee.w" not in nodes  # never delegated: reaches nothing

    def link_state() -> str:
        state: str = page.evaluate(
            "(id) => window.mandateGraph.getElementById(id).classes().join(' ')",
            f"{ravi}→{scenario.delegation['arn']}",
        )
        return state

    put_at(page, scenario.before_revocation)
    page.wait_for_function(
        "() => document.querySelector('#view-graph').dataset.instant !== undefined"
    )
    assert link_state() == "live"
    assert page.locator("#graph-table [data-state=live]").count() >= 1
    # ravi.k's session of the contract's role, live at the instant: role → session
    page.wait_for_function(
        "(at) => document.querySelector('#view-graph').dataset.sessionsAt === at",
        arg=scenario.before_revocation.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    )
    assert page.locator("#view-graph").get_attribute("data-sessions") == "1"
    session_edge = page.evaluate(
        "() => window.mandateGraph.edges('.session')"
        ".map((e) => [e.source().id(), e.classes().join(' ')])"
    )
    assert session_edge == [[f"acs:ram::{a}:role/MSA-2026-117", "session live"]]
    # each principal inside its account
    parents = page.evaluate("(arn) => window.mandateGraph.getElementById(arn).parent().id()", ravi)
    assert parents == f"account:{b}"
    shoot(page, "delegation-graph-before")
    put_at(page, scenario.after_revocation)
    page.locator("#graph-table [data-state=ended]").first.wait_for()
    assert link_state() == "ended"
    page.wait_for_function("() => window.mandateGraph.edges('.session.ended').length === 1")
    assert (
        page.evaluate(
            "(id) => window.mandateGraph.getElementById(id).style('line-style')",
            f"{ravi}→{scenario.delegation['arn']}",
        )
        == "dashed"
    )
    shoot(page, "delegation-graph-after")
    # the review as a file: one row per principal and interval, with its chain
    with page.expect_download() as download:
        page.get_by_role("button", name="Download review (CSV)").click()
    rows = Path(download.value.path()).read_text().splitlines()
    assert rows[0] == "principal,principal_type,from,to,conditional,chain"
    (ravi_row,) = [r for r in rows if r.startswith(ravi)]
    assert " > ".join(chain) in ravi_row


# -- (g) accessibility --------------------------------------------------------------------------

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                    || el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON'
                    && el.textContent.trim())))
  .map((el) => el.outerHTML.slice(0, 80))"""

LOW_CONTRAST = """() => {
  const rgb = (text) => text.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => v / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const value = rgb(getComputedStyle(node).backgroundColor);
      if (value.length < 4 || value[3] > 0) return value.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  const all = document.querySelectorAll('main *, header *, nav *, #time *');
  for (const el of all) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.offsetParent === null) continue;
    const fg = lum(rgb(getComputedStyle(el).color));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) bad.push(`${el.tagName}.${el.className} ${ratio.toFixed(2)}`);
  }
  return bad;
}"""


FOCUSED = """() => { const el = document.activeElement;
  return el.name || el.id || el.textContent.trim().slice(0, 40); }"""


def test_every_control_is_labelled_keyboard_reachable_and_legible(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    page.goto(f"{base_of(server)}/console/")
    page.get_by_label("AccessKeyId").wait_for()
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(LOW_CONTRAST) == []
    # the focus order of the sign-in form: the fields in order, then the button (the tab
    # order cycles through the page: it holds these four in a row)
    order = []
    for _ in range(10):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED))
    expected = ["access_key_id", "access_key_secret", "security_token", "Sign in"]
    assert "access_key_id" in order, order
    start = order.index("access_key_id")
    assert order[start : start + 4] == expected, order
    # signing in with the keyboard alone
    page.get_by_label("AccessKeyId").fill(scenario.acme.access_key_id)
    page.get_by_label("AccessKeySecret").fill(scenario.acme.access_key_secret)
    page.get_by_label("AccessKeySecret").press("Enter")
    page.locator("#identity .who").wait_for()
    for view in ("principals", "audit", "tester", "graph"):
        page.evaluate(f"() => {{ location.hash = '#/{view}'; }}")
        page.wait_for_function(
            f"() => performance.getEntriesByName('view:{view}:rendered').length > 0"
        )
        assert page.evaluate(UNLABELLED) == [], view
        assert page.evaluate(LOW_CONTRAST) == [], view
    # the views' links and the slider are reached by Tab from the top of the page (the skip
    # link is the first stop), and the skip link leads to the content
    page.locator("a.skip").focus()
    reached = set()
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate("() => document.activeElement.id || document.activeElement.textContent")
        )
    assert {"Principals and grants", "Audit timeline", "asof-slider"} <= reached
    page.locator("a.skip").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "view"
    assert page.evaluate("() => location.hash") == "#/graph"  # the view stays


# -- what the caller may see --------------------------------------------------------------------


def test_a_user_sees_only_what_it_may_and_sts_credentials_sign_in_with_their_token(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    a = scenario.acme.account_id
    base = f"/v1/accounts/{a}"
    # carol may list users and nothing else; she may assume the role "auditor"
    users = post(server, f"{base}/users", scenario.acme, {"user_name": "carol"})
    issued = post(server, f"{base}/users/carol/access-keys", scenario.acme)
    carol = Key(a, issued["access_key_id"], issued["access_key_secret"])
    allow = [
        {"Effect": "Allow", "Action": ["ram:ListUsers", "sts:AssumeRole"], "Resource": "*"},
    ]
    server.create_policy(a, scenario.acme.basic, "carol-lists", allow)
    server.attach(a, scenario.acme.basic, "users/carol", "Custom", "carol-lists")
    sign_in(page, base_of(server), carol, hash_="#/principals")
    assert page.locator("#identity .who").inner_text() == users["arn"]
    page.locator("#list-users").get_by_role("button", name="carol").wait_for()
    groups = page.locator("#list-groups")
    groups.get_by_text("Not visible to you (403)").wait_for()
    assert "ram:ListGroups" in groups.inner_text()
    page.get_by_role("link", name="Audit timeline").click()
    page.locator("#audit-status", has_text="Not visible to you (403)").wait_for()
    page.get_by_role("button", name="Sign out").click()
    # STS credentials: the security token is signed (x-acs-security-token), never the secret
    trust = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [users["arn"]]}}
        ],
    }
    role = post(
        server,
        f"{base}/roles",
        scenario.acme,
        {"role_name": "auditor", "assume_role_policy_document": trust},
    )
    credentials = post(
        server,
        "/v1/sts/assume-role",
        carol,
        {"role_arn": role["arn"], "role_session_name": "quarterly-review"},
    )["credentials"]
    sent: list[str] = []
    page.on("request", lambda request: sent.append(json.dumps(request.all_headers())))
    page.get_by_label("AccessKeyId").fill(credentials["access_key_id"])
    page.get_by_label("AccessKeySecret").fill(credentials["access_key_secret"])
    page.get_by_label("Security token (STS credentials only)").fill(credentials["security_token"])
    page.get_by_role("button", name="Sign in").click()
    page.locator("#identity .kind", has_text="AssumedRoleUser").wait_for()
    assert page.locator("#identity .who").inner_text() == (
        f"acs:ram::{a}:assumed-role/auditor/quarterly-review"
    )
    assert sent
    assert all(credentials["access_key_secret"] not in headers for headers in sent)
    assert any("x-acs-security-token" in headers for headers in sent)


def test_a_page_whose_clock_is_off_signs_with_the_servers_time(
    server: MandateClient, scenario: Scenario2, page: Any
) -> None:
    """Two hours behind (beyond the 15 minutes a signature may be off): the first request is
    refused InvalidTimeStamp.Expired, the console takes the server's Date and signs again."""
    refused: list[int] = []
    page.on("response", lambda r: refused.append(r.status) if r.status == 401 else None)
    page.clock.set_system_time(datetime.now(UTC) - timedelta(hours=2))
    sign_in(page, base_of(server), scenario.acme)
    assert (
        page.locator("#identity .who").inner_text() == f"acs:ram::{scenario.acme.account_id}:root"
    )
    assert refused == [401]  # once: every later request is signed with the corrected clock
    page.locator("#list-users").wait_for()
