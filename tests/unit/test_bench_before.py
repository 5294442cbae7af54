"""The access review benchmark's "before" column loads the old code it compares against.

``tests.bench.access_review`` runs ``projections/access_review.py`` as of ``BEFORE_COMMIT``
with its imports pointed at today's modules; a module moved or a name renamed since breaks it
(``ImportError: Request`` after a4c0fcb). Loading it here notices that the day it happens, in
well under a second, instead of the next time someone runs the benchmark.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.bench import access_review


def _has_before_commit() -> bool:
    try:
        found = subprocess.run(  # noqa: S603 (a fixed git command, no input)
            ["git", "cat-file", "-e", f"{access_review.BEFORE_COMMIT}^{{commit}}"],  # noqa: S607
            capture_output=True,
            check=False,
            cwd=Path(access_review.__file__).resolve().parent,
        )
    except OSError:
        return False
    return found.returncode == 0


def test_old_names_are_bound_to_their_new_ones() -> None:
    source = "from mandate.domain.policy.evaluation import Effect, Request, condition_may_hold\n"
    assert access_review._renamed_imports(source) == (
        "from mandate.domain.policy.evaluation import "
        "Effect, AccessRequest as Request, condition_may_hold\n"
    )


@pytest.mark.skipif(not _has_before_commit(), reason="no git history (a shallow clone)")
def test_the_before_code_loads() -> None:
    module = access_review._before_module()
    assert module is not None
    assert callable(module.review_access)
