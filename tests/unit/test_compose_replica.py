"""docker-compose.yml's read replica: a hot standby made from the primary, read by the API only.

``docker-compose config -q`` (``.ci/run``) checks the syntax; this checks the wiring an operator
relies on: the standby's entrypoint script exists and copies the primary with
``pg_basebackup -R``, the primary makes the replication role on its first start, and only the
API (not ``migrate``) reads through ``MANDATE_READ_DATABASE_URL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _services() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    return services


def _mounted(service: dict[str, Any], target_prefix: str) -> Path:
    """The repository file ``service`` mounts at a path starting with ``target_prefix``."""
    for volume in service["volumes"]:
        source, _, rest = volume.partition(":")
        if source.startswith("./") and rest.startswith(target_prefix):
            return ROOT / source
    raise AssertionError(f"nothing mounted at {target_prefix}: {service['volumes']}")


def test_the_replica_is_a_hot_standby_copied_from_the_primary() -> None:
    services = _services()
    replica = services["postgres-replica"]
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in replica
    script = _mounted(replica, replica["entrypoint"][0])
    text = script.read_text()
    assert "pg_basebackup" in text
    assert " -R" in text, "the standby is not made with -R (primary_conninfo, standby.signal)"
    assert "hot_standby=on" in text
    assert "exec docker-entrypoint.sh postgres" in text  # the image's entrypoint starts it
    # Its own data volume: never the primary's.
    assert replica["volumes"][0].split(":")[0] != services["postgres"]["volumes"][0].split(":")[0]


def test_the_primary_makes_the_replication_role_on_its_first_start() -> None:
    primary = _services()["postgres"]
    init = _mounted(primary, "/docker-entrypoint-initdb.d/").read_text()
    assert "REPLICATION LOGIN" in init
    assert "host replication" in init  # its pg_hba line
    assert "wal_level=replica" in primary["command"]


def test_only_the_api_reads_from_the_replica() -> None:
    services = _services()
    api = services["api"]
    url = api["environment"]["MANDATE_READ_DATABASE_URL"]
    assert "@postgres-replica:" in url, url
    assert api["environment"]["MANDATE_DATABASE_URL"].count("@postgres:") == 1
    assert api["depends_on"]["postgres-replica"]["condition"] == "service_healthy"
    # migrate writes the schema on the primary; it never opens the replica.
    assert "MANDATE_READ_DATABASE_URL" not in services["migrate"]["environment"]
