"""The core stays what FreeRADIUS can load and what STYLE practice 1-2 promise (issue 2
point 6): standard library only, importable and passing its unit tests under Debian's
`/usr/bin/python3 -S`, and free of sockets, clocks and random sources."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE = ROOT / "hkp_radius"
DEBIAN_PYTHON = "/usr/bin/python3"
# What the sans-I/O core must never import: I/O, clocks, randomness, or our adapters.
FORBIDDEN = {
    "socket",
    "asyncio",
    "selectors",
    "select",
    "ssl",
    "time",
    "random",
    "secrets",
    "threading",
    "subprocess",
    "sqlite3",
    "logging",
    "pyrad",
    "radiusd",
    "cryptography",
    "freeradius_module",
    "ar_proxy",
    "mn_client",
    "hkp_lab",
}


def _core_modules() -> list[str]:
    return sorted(f"hkp_radius.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__")


def test_core_imports_nothing_but_the_standard_library_and_no_io() -> None:
    stdlib = set(sys.stdlib_module_names)
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in stdlib or top == "hkp_radius", f"{path.name} imports {name}"
                assert top not in FORBIDDEN, f"{path.name} imports {name} (sans-I/O core)"
            if isinstance(node, ast.Attribute) and node.attr == "urandom":
                raise AssertionError(f"{path.name} reads os.urandom: inject randomness")


def test_core_imports_under_debian_python_without_site_packages() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        + "; ".join(f"import {m}" for m in _core_modules())
        + "; print('imported', len(sys.modules))"
    )
    result = subprocess.run(
        [DEBIAN_PYTHON, "-S", "-c", code, str(ROOT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout


def test_core_unit_tests_pass_under_debian_python_without_site_packages() -> None:
    result = subprocess.run(
        [DEBIAN_PYTHON, "-S", str(ROOT / "tests" / "core" / "run_stdlib.py")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.endswith(" 0 failed") and not last.startswith("0 passed"), last
