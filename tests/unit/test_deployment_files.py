"""The image runs as a non-root user; docker-compose.yml migrates once before the API starts.

CI validates the compose file with ``docker-compose config -q`` (``.ci/run``); this checks what
validation cannot: the shape an operator relies on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = [
        line.split(None, 1)[1].strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("USER ")
    ]
    assert users, "the Dockerfile sets no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit(), users[-1]
    assert int(user) != 0, users[-1]


def test_compose_migrates_once_then_serves_with_health_checks() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "api"} <= set(services)
    assert "healthcheck" in services["postgres"]
    assert services["postgres"]["volumes"]
    assert services["migrate"]["command"] == ["mandate", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    api = services["api"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert api["command"][:2] == ["mandate", "serve"]
    # the same generated keys for every process: one state volume
    assert services["migrate"]["volumes"] == api["volumes"]
