"""The ``mandate`` command's groups, one module each (``api.cli`` builds the parser): ``serve``
and ``migrate``, ``projections``, ``index``, ``keys``, ``audit``.

``open_runtime`` is what every operation on a running store starts with: a runtime that runs
no projection worker of its own, or None after saying why the store cannot be opened.
"""

from __future__ import annotations

import sys

from mandate.api.runtime import Runtime, StoreUnavailable
from mandate.api.settings import Settings

__all__ = ["open_runtime"]


def open_runtime() -> Runtime | None:
    try:
        return Runtime(Settings().model_copy(update={"run_projections": False}))
    except StoreUnavailable as error:
        print(f"mandate: {error}", file=sys.stderr)
        return None
