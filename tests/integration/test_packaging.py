"""The built wheel installs Mandate under one name, ``mandate``, and nothing generic.

The layer folders sit at the repository's top level and ``mandate/`` links to them (README, "How
it works"): this builds the wheel as a user's ``pip install`` would and reads what it would put
into site-packages — ``mandate/…`` and its metadata only, every layer inside, the console script
pointing into it.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(  # noqa: S603 (fixed arguments)
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("mandate_ledger-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_installs_one_top_level_name(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"mandate"}


def test_every_layer_is_inside_with_its_modules(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for layer in ("domain", "projections", "api"):
        sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / layer).rglob("*.py")}
        assert {f"mandate/{s}" for s in sources} <= names, layer
        assert f"mandate/{layer}/py.typed" in names


def test_the_console_script_points_into_the_package(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    assert "mandate = mandate.api.cli:main" in wheel.read(entry_points).decode()


def test_the_audit_console_ships_its_static_files(wheel: zipfile.ZipFile) -> None:
    """``mandate serve`` from a wheel serves /console/: the page, its modules, Cytoscape.js."""
    names = set(wheel.namelist())
    static = ROOT / "api" / "console" / "static"
    shipped = {
        f"mandate/api/console/static/{p.relative_to(static).as_posix()}"
        for p in static.rglob("*")
        if p.is_file()
    }
    assert "mandate/api/console/static/index.html" in shipped
    assert "mandate/api/console/static/vendor/cytoscape.min.js" in shipped
    assert shipped <= names
