"""A started ``Runtime`` for integration tests: secrets fixed, projections driven by the test.

``run_projections=False`` leaves the SQL projections to the test (``wait_for`` and
``catch_up`` apply them on demand), and the contract-term watcher ticks once an hour (a test
calls ``record_reached_terms`` itself), so what a test observes never races a background worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings


def started_runtime(url: str, **settings: Any) -> Runtime:
    runtime = Runtime(
        Settings(
            database_url=url,
            hash_key="k" * 40,
            admin_token="t" * 40,
            **{"run_projections": False, "term_watch_interval": 3600.0, **settings},
        ),
        create_tables=True,
    )
    runtime.start()
    return runtime


@contextmanager
def running(url: str, **settings: Any) -> Iterator[Runtime]:
    runtime = started_runtime(url, **settings)
    try:
        yield runtime
    finally:
        runtime.stop()
