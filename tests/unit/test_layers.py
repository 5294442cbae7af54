"""The layers' rules, read off the import statements: dependencies point inward only.

``domain/`` knows no HTTP and no SQL and imports neither ``projections`` nor ``api``;
``projections/`` never imports ``api``; a private module (``_name``) is imported only from its
own package. A module over the size ceiling is named, so a file that has grown several jobs is
split rather than found by a newcomer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "projections", "api")
PACKAGE = "mandate"
"""The one installed name: ``mandate/`` links to each layer folder (README, "How it works")."""

# What each layer must never import (top-level module names).
FORBIDDEN: dict[str, set[str]] = {
    "domain": {
        "projections",
        "api",
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "psycopg",
        "psycopg_pool",
        "sqlite3",
        "prometheus_client",
    },
    "projections": {"api", "fastapi", "starlette", "uvicorn"},
    "api": set(),
}
# The map of the code (README, "How it works"): what each package of domain/ and projections/
# may import of Mandate's own packages; "domain" stands for any package of domain/.
ALLOWED: dict[str, set[str]] = {
    "domain.common": set(),
    "domain.policy": {"domain.common"},
    "domain.permissions": {"domain.common", "domain.policy"},
    "domain.identity": {"domain.common", "domain.policy", "domain.permissions"},
    "domain.contracts": {"domain.common", "domain.policy"},
    "domain.sts": {
        "domain.common",
        "domain.policy",
        "domain.permissions",
        "domain.identity",
        "domain.contracts",
    },
    "domain.ledger": {"domain"},
    "domain.events": {"domain"},
    "projections.dispatch": set(),
    "projections.store": {"domain"},
    "projections.decisions": {"domain", "projections.dispatch"},
    "projections.audit": {"domain", "projections.dispatch", "projections.store"},
    "projections.history": {
        "domain",
        "projections.dispatch",
        "projections.store",
        "projections.decisions",
    },
}
MAX_LINES = 450
"""About 400 lines: past this a module has grown a second job (README, "How it works")."""


def modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def imported_as_written(path: Path) -> list[str]:
    """Every module ``path`` imports, absolute, exactly as written."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imported(path: Path) -> list[str]:
    """Every module ``path`` imports, named by layer (``mandate.domain.x`` is ``domain.x``)."""
    return [name.removeprefix(f"{PACKAGE}.") for name in imported_as_written(path)]


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parent.parts)


@pytest.mark.parametrize("layer", LAYERS)
def test_dependencies_point_inward(layer: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(layer)
        for name in imported(path)
        if name.split(".")[0] in FORBIDDEN[layer]
    ]
    assert offences == []


@pytest.mark.parametrize("layer", LAYERS)
def test_private_modules_stay_in_their_package(layer: str) -> None:
    offences = []
    for path in modules(layer):
        for name in imported(path):
            parts = name.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])
                    if owner != package_of(path):
                        offences.append(f"{path.relative_to(ROOT)} imports {name}")
                    break
    assert offences == []


def test_layers_are_packages_all_the_way_down() -> None:
    """A folder without ``__init__.py`` would be a namespace package that tools miss (a folder
    holding no Python at all, such as the console's ``static/``, is data, not a package)."""
    missing = [
        str(folder.relative_to(ROOT))
        for layer in LAYERS
        for folder in [ROOT / layer, *(ROOT / layer).rglob("*")]
        if folder.is_dir()
        and folder.name != "__pycache__"
        and not (folder / "__init__.py").exists()
        and any(folder.rglob("*.py"))
    ]
    assert missing == []


def package_key(path: Path) -> str:
    """``domain.policy`` for ``domain/policy/x.py``; ``domain.events`` for ``domain/events.py``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:2])


@pytest.mark.parametrize("layer", ["domain", "projections"])
def test_packages_import_only_what_the_map_allows(layer: str) -> None:
    offences = []
    for path in modules(layer):
        me = package_key(path)
        if me.endswith("__init__"):
            continue
        assert me in ALLOWED, f"{me} is not on the map: add it to ALLOWED and the README"
        for name in imported(path):
            parts = name.split(".")
            if parts[0] not in LAYERS or len(parts) < 2:
                continue
            target = ".".join(parts[:2])
            if target == me or target in ALLOWED[me] or parts[0] in ALLOWED[me]:
                continue
            offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offences == []


@pytest.mark.parametrize("layer", LAYERS)
def test_no_module_has_grown_several_jobs(layer: str) -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules(layer)
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_package_links_each_layer_folder() -> None:
    """``mandate/domain`` is ``domain/`` itself: one tree of files under two paths, one name."""
    for layer in LAYERS:
        link = ROOT / PACKAGE / layer
        assert link.is_symlink(), f"{link} must be a link to ../{layer}"
        assert link.resolve() == (ROOT / layer).resolve()


def test_code_and_tests_import_mandate_by_its_one_name() -> None:
    """A bare ``import domain`` from the checkout would load a second copy of every class."""
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in (*LAYERS, "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in imported_as_written(path)
        if name.split(".")[0] in LAYERS
    ]
    assert offences == []
