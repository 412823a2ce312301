"""The README gives exactly two commands (issue 5, must show 1): the first sets up and runs
the lab to a successful exchange and exits 0; the second is what `.ci/run` calls."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^    (\S.*)$", section, re.MULTILINE)


def test_readme_gives_exactly_two_commands_and_ci_runs_the_second() -> None:
    commands = _readme_commands()
    assert commands == ["./scripts/lab.sh", "./scripts/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test.sh" in ci


def test_first_readme_command_runs_the_lab_and_exits_0() -> None:
    first = _readme_commands()[0]
    env = {k: v for k, v in os.environ.items() if k != "HKP_LAB_DIR"}
    result = subprocess.run(
        [first], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all exchanges as expected" in result.stdout
    assert "Summary" in result.stdout
