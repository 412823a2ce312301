"""Scenario files (issue 12, Must show 3, the part that needs no lab): a malformed file
makes `hkp-lab run FILE` exit 2 naming the line, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from hkp_lab.cli import EXIT_SETUP, main
from hkp_lab.scenario import SHIPPED, ScenarioError, load, parse

HANDOVER = (SHIPPED / "handover.toml").read_text()


def test_shipped_scenario_loads() -> None:
    scenario = load(SHIPPED / "handover.toml")
    assert scenario.routers == ["par", "nar"] and scenario.mns == ["alice"]
    assert [s.do for s in scenario.steps][:3] == ["attach", "request", "attach"]
    assert scenario.steps[1].line == 29 and scenario.steps[1].expect == "key"
    forged = [s for s in scenario.steps if s.do == "fbu" and s.expect == "refused"]
    assert {s.forge for s in forged} == {"wrong-key", "edited", "replay", "none"}


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


@pytest.mark.parametrize(
    ("edit", "needle", "message"),
    [
        (('expect = "fback"', "expect = fback"), "expect = fback", "not TOML"),
        (('do = "refresh"', 'do = "teleport"'), "[[step]]", "teleport"),
        (('spi_of = "nar"', 'spi_of = "third"'), "[[step]]", "not an [[ar]]"),
        (('forge = "edited"', 'forge = "melted"'), "[[step]]", "forge"),
        (('name = "alice"', 'name = "eve"'), "[[mn]]", "no lab identity"),
        (('link = "nar"', 'link = "nar"\nwho = "alice"'), "[[step]]", "does not take"),
    ],
)
def test_malformed_file_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], needle: str,
    message: str,
) -> None:  # fmt: skip
    old, new = edit
    assert old in HANDOVER
    text = HANDOVER.replace(old, new, 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    if needle == "[[step]]":  # the step table that holds the edit
        edited = _line_of(text, new.splitlines()[0])
        needle_line = max(n for n, line in enumerate(text.splitlines(), 1)
                          if line.startswith("[[step]]") and n < edited)  # fmt: skip
    elif needle == "[[mn]]":
        needle_line = _line_of(text, "[[mn]]")
    else:
        needle_line = _line_of(text, needle)
    assert main(["run", str(path)]) == EXIT_SETUP
    err = capsys.readouterr().err
    assert f"{path}:line {needle_line}:" in err and message in err, err


def test_unreadable_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nothing.toml")]) == EXIT_SETUP
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(ScenarioError, match="needs \\[\\[step\\]\\]"):
        parse('[[ar]]\nname = "par"\n')
    with pytest.raises(ScenarioError, match="line 1"):
        parse("title = 3\n")
