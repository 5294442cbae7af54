"""`mandate projections run` survives PostgreSQL stopped for real, and resumes by itself.

It used to exit on any outage longer than ~5 s (its registry watch was outside any try): here a
throwaway cluster is stopped for 8 s under it, and once the cluster is back the runner — the
same process — applies what was written after the outage.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.audit import acting_as
from tests.e2e.test_store_outage import Cluster
from tests.integration.test_index_cache_coherence import ACTOR

pytestmark = pytest.mark.postgres

HASH_KEY = "h" * 40


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    made.start()
    try:
        yield made
    finally:
        made.remove()


def _write(runtime: Runtime, name: str) -> int:
    """One account opened, retried while the store comes back; its position."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with acting_as(ACTOR):
                return runtime.ledger.open_account(name).root_key.position
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _reached(runtime: Runtime, position: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the store coming back
            stores = [w.store for w in runtime.projection_workers]
            if all(store.position() >= position for store in stores):
                return True
        time.sleep(0.2)
    return False


def test_the_projection_runner_outlives_an_outage(cluster: Cluster, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MANDATE_DATABASE_URL": cluster.url,
        "MANDATE_HASH_KEY": HASH_KEY,
        "MANDATE_STATE_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "mandate.api.cli"]
    subprocess.run([*command, "migrate"], env=env, check=True, timeout=60)  # noqa: S603
    runner = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [*command, "projections", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    settings = Settings(database_url=cluster.url, hash_key=HASH_KEY, state_dir=tmp_path)
    runtime = Runtime(settings.model_copy(update={"run_projections": False}))
    try:
        assert _reached(runtime, _write(runtime, "Before"), 20), "the runner applied nothing"
        cluster.stop()
        time.sleep(8.0)
        assert runner.poll() is None, "the runner exited during the outage"
        cluster.start()
        position = _write(runtime, "After")
        assert _reached(runtime, position, 30), "the runner did not resume"
        assert runner.poll() is None
    finally:
        runtime.stop()
        runner.send_signal(signal.SIGTERM)
        code = runner.wait(timeout=30)
    assert code == 0, runner.stderr.read().decode() if runner.stderr else ""
