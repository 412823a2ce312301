"""Run the core's unit tests without pytest, e.g. under `/usr/bin/python3 -S`.

Discovers tests/core/test_*.py, calls every module-level `test_*` function, prints one
line per failure and a closing 'N passed, N failed' line; exits non-zero on a failure.
"""

from __future__ import annotations

import importlib
import pathlib
import sys
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))


def main() -> int:
    passed = failed = 0
    for path in sorted(HERE.glob("test_*.py")):
        module = importlib.import_module(f"tests.core.{path.stem}")
        for name in sorted(vars(module)):
            func = getattr(module, name)
            if name.startswith("test_") and callable(func):
                try:
                    func()
                except Exception:
                    failed += 1
                    print(f"FAILED {path.stem}.{name}")
                    traceback.print_exc()
                else:
                    passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
