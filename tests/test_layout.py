"""The import rules of docs/architecture.md ("## Import rules"), read off every module's
imports (top level and inside functions), each rule also shown to catch a planted
violation; and no module over 600 lines (issue 8, Must show 2 and 3)."""

from __future__ import annotations

import ast
import pathlib
import sys
from collections.abc import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE = "hkp_radius"
ROLES = ("hkp_radius.ar", "hkp_radius.hks", "hkp_radius.mn")
SUPPORT = "hkp_support"
# Tool packages: adapters and tools that must not import each other (rule 3). A new tool
# package goes here.
TOOLS = ("freeradius_module", "ar_proxy", "mn_client", "hkp_lab", "hkp_fuzz", "hkp_flood")
# Tools that drive the MN as a test peer or load generator: they may import the
# `mn_client` package itself (its `__init__` API), never its modules.
MN_USERS = ("hkp_lab", "hkp_fuzz", "hkp_flood")
# Loaded by FreeRADIUS into Debian's /usr/bin/python3: the core, the stdlib, each other
# and `radiusd` (rlm_python3's own module) only.
FREERADIUS_LOADED = (
    "freeradius_module.rlm_hkp_hks",
    "freeradius_module.config",
    "freeradius_module.replay_sqlite",
    "freeradius_module.replay_postgresql",
)
# Third-party modules FreeRADIUS-loaded code may import, each from Debian's packages for
# /usr/bin/python3, and only where named: psycopg (python3-psycopg) for the shared replay
# state, imported lazily so that an SQLite server needs no psycopg.
FREERADIUS_THIRD_PARTY = {"freeradius_module.replay_postgresql": frozenset({"psycopg"})}
# What the sans-I/O core never imports: I/O, clocks, randomness (rule 1).
CORE_FORBIDDEN = frozenset(
    {
        "asyncio", "multiprocessing", "os", "random", "secrets", "select", "selectors",
        "shutil", "socket", "sqlite3", "ssl", "subprocess", "sys", "tempfile", "threading",
        "time", "logging", "http", "urllib", "pathlib", "io", "signal",
    }
)  # fmt: skip
MAX_LINES = 600
STDLIB = frozenset(sys.stdlib_module_names)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _top_package(module: str) -> str:
    return module.split(".")[0]


def imports(module: str, source: str, is_package: bool = False) -> Iterator[str]:
    """Every module `source` imports, absolute; `from P import name` also yields P.name
    when name is a module of ours, so a submodule reached through its package counts."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "__future__":
                continue
            yield target
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                path = ROOT / candidate.replace(".", "/")
                if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
                    yield candidate


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    found: list[str] = []
    for imported in imports(module, source, is_package):
        top = _top_package(imported)
        if _within(module, CORE):
            if top not in STDLIB and top != CORE:
                found.append(f"rule 1: core module {module} imports {imported} (not stdlib)")
            elif top in CORE_FORBIDDEN:
                found.append(f"rule 1: core module {module} imports {imported} (I/O)")
            for role in ROLES:
                if (
                    _within(imported, role)
                    and not _within(module, role)
                    and any(_within(module, r) for r in ROLES)
                ):
                    found.append(f"rule 2: role {module} imports another role's {imported}")
        tool = next((t for t in TOOLS if _within(module, t)), None)
        if tool is not None:
            other = next((t for t in TOOLS if _within(imported, t) and t != tool), None)
            if other is not None:
                allowed = other == "mn_client" and imported == "mn_client" and tool in MN_USERS
                if not allowed:
                    found.append(f"rule 3: tool {module} imports tool {imported}")
        if _within(module, SUPPORT) and any(_within(imported, t) for t in TOOLS):
            found.append(f"rule 4: {module} (shared infrastructure) imports tool {imported}")
        if (
            module in FREERADIUS_LOADED
            and top not in STDLIB | {CORE, "radiusd"}
            and top not in FREERADIUS_THIRD_PARTY.get(module, frozenset())
            and imported not in FREERADIUS_LOADED
            and imported != "freeradius_module"
        ):
            found.append(f"rule 5: {module} (loaded by FreeRADIUS) imports {imported}")
    return found


def _modules() -> Iterator[tuple[str, pathlib.Path]]:
    for package in (CORE, SUPPORT, *TOOLS):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def test_every_module_keeps_the_import_rules() -> None:
    found = []
    for module, path in _modules():
        found += violations(module, path.read_text(), path.name == "__init__.py")
    assert found == []
    assert len(list(_modules())) > 40  # the walk found the tree


def test_no_module_is_longer_than_600_lines() -> None:
    paths = [p for _, p in _modules()] + sorted((ROOT / "tests").rglob("*.py"))
    paths += sorted((ROOT / "benchmarks").rglob("*.py"))
    long = {
        str(p.relative_to(ROOT)): n
        for p in paths
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("hkp_radius.wire.messages", "import socket", "rule 1"),
        ("hkp_radius.mn.role", "def f():\n    import time", "rule 1"),
        ("hkp_radius.crypto", "from os import urandom", "rule 1"),
        ("hkp_radius.ar.role", "import pyrad.packet", "rule 1"),
        ("hkp_radius.ar.role", "from ar_proxy.daemon import main", "rule 1"),
        ("hkp_radius.ar.role", "from hkp_radius.mn.keys import KeyStore", "rule 2"),
        ("hkp_radius.mn.role", "from ..hks import role", "rule 2"),
        ("hkp_radius.hks.role", "from hkp_radius.ar import AccessRouter", "rule 2"),
        ("ar_proxy.daemon", "from freeradius_module.config import load", "rule 3"),
        ("mn_client.cli", "import hkp_lab.lab", "rule 3"),
        ("hkp_lab.account", "from mn_client.session import run_exchange", "rule 3"),
        ("hkp_lab.account", "from mn_client import session", "rule 3"),
        ("hkp_lab.account", "import mn_client.driver", "rule 3"),
        ("ar_proxy.daemon", "from mn_client import run_load", "rule 3"),
        ("hkp_support.freeradius", "from hkp_lab.lab import Lab", "rule 4"),
        ("freeradius_module.rlm_hkp_hks", "import hkp_support.paths", "rule 5"),
        ("freeradius_module.config", "from pyrad import dictionary", "rule 5"),
        ("freeradius_module.rlm_hkp_hks", "from freeradius_module.install import main", "rule 5"),
        ("freeradius_module.rlm_hkp_hks", "import psycopg", "rule 5"),
    ],
)
def test_each_rule_catches_a_planted_violation(module: str, source: str, rule: str) -> None:
    found = violations(module, source)
    assert any(v.startswith(rule) for v in found), found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("hkp_radius.mn.role", "from hkp_radius.wire.messages import HKReq\nimport hmac"),
        ("hkp_radius.ar.role", "from .state import TRANSITIONS"),
        ("hkp_lab.account", "from mn_client import run_exchange, starter"),
        ("hkp_lab.lab", "from hkp_support.freeradius import FreeRadiusInstance"),
        ("ar_proxy.daemon", "import pyrad.client\nfrom hkp_radius.ar import AccessRouter"),
        ("freeradius_module.rlm_hkp_hks", "from hkp_radius.hks import handle_request"),
        ("freeradius_module.replay_postgresql", "def f():\n    import psycopg.conninfo"),
    ],
)
def test_what_the_rules_allow_passes(module: str, source: str) -> None:
    assert violations(module, source) == []
