"""The handover scenario (issue 12, Must show 2 and 3) in network namespaces: one HKS,
hkp-ar as PAR and NAR on two access links, the MN moving between them over raw IPv6.
Every step is checked: the keys and SPIs at both ARs, the CoA each AR bound, the §6.5
refresh through the NAR, the FBU the PAR accepts with an FBack verified with its HK, the
forged FBUs refused with their reasons, and the return with the V flag (§6.2.3)."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hkp_lab.handover import HandoverLab, HandoverRunner, StepResult
from hkp_lab.scenario import SHIPPED, load

from .mn_lab import needs_root_and_freeradius

pytestmark = [pytest.mark.integration, pytest.mark.netns, needs_root_and_freeradius]

SCENARIO = SHIPPED / "handover.toml"


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[HandoverLab, list[StepResult], list[str]]]:
    scenario = load(SCENARIO)
    directory = Path(tempfile.mkdtemp(prefix="hkp-handover-", dir="/tmp"))
    lab = HandoverLab(directory, scenario.routers)
    lines: list[str] = []
    try:
        lab.start()
        results = HandoverRunner(lab, lines.append).run(scenario.steps)
        assert lab.links is not None
        yield lab, results, lines
    finally:
        lab.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _spi(text: str) -> int:
    found = re.search(r"SPI (\d+)", text)
    assert found, text
    return int(found.group(1))


def test_every_step_as_expected(run: tuple[HandoverLab, list[StepResult], list[str]]) -> None:
    _, results, lines = run
    assert [r.ok for r in results] == [True] * len(results), "\n".join(lines)


def test_keys_spis_and_bindings_at_both_ars(
    run: tuple[HandoverLab, list[StepResult], list[str]],
) -> None:
    _, results, _ = run
    said = [r.said for r in results]
    par_link, nar_link = said[0][0], said[2][0]
    pcoa = par_link.split("CoA ")[1]
    ncoa = nar_link.split("CoA ")[1]
    assert ipaddress.IPv6Address(pcoa) != ipaddress.IPv6Address(ncoa)
    # Step 2: the PAR issues a key bound to the PCoA; step 4: the NAR one for the NCoA.
    assert said[1][1].startswith("par decided: issued") and f"CoA bound {pcoa})" in said[1][1]
    assert said[3][1].startswith("nar decided: issued") and f"CoA bound {ncoa})" in said[3][1]
    par_first, nar_key = _spi(said[1][0]), _spi(said[3][0])
    # Step 5: the §6.5 refresh reaches the PAR through the NAR with the NULL CoA: a new
    # key, bound to no CoA.
    assert "alice -> par via nar: new key" in said[4][0] and "NULL" in said[4][0]
    assert "CoA bound ::)" in said[4][1]
    par_key = _spi(said[4][0])
    assert len({par_first, nar_key, par_key}) == 3
    # Step 6: the FBU with the PAR's HK, from the NCoA: accepted, FBack verified.
    assert f"from {ncoa}, BADF SPI {par_key} (HK of par)" in said[5][0]
    assert said[5][1] == "FBack from par: verified with the HK"
    assert said[5][2] == f"par decided: accepted (SPI {par_key}, CoA {ncoa} -> {ncoa})"
    # Step 12: back on the PAR's link, the V flag confirms the refreshed key, which the
    # PAR now binds to the PCoA.
    assert f"verified key SPI {par_key}" in said[11][0]
    assert said[11][1] == f"par decided: verified (SPI {par_key}, CoA bound {pcoa})"


def test_forged_fbus_refused(run: tuple[HandoverLab, list[StepResult], list[str]]) -> None:
    _, results, _ = run
    refusals = {r.step.forge + "/" + r.step.spi_of: r.said for r in results[6:10]}
    for said in refusals.values():
        assert said[1].startswith("no FBack"), said
    assert (
        refusals["wrong-key/"][2] == "par decided: refused (the BADF Authenticator does not verify)"
    )
    assert refusals["none/nar"][2] == "par decided: refused (no unexpired HK under this SPI)"
    assert refusals["edited/"][2] == "par decided: refused (the BADF Authenticator does not verify)"
    assert refusals["replay/"][2] == "par decided: refused (replay: Sequence # 1 not after 1)"


def test_wrong_expectation_exits_1_naming_the_step(tmp_path: Path) -> None:
    text = SCENARIO.read_text()
    replay = text.index('forge = "replay"')
    wrong = text[:replay] + text[replay:].replace('expect = "refused"', 'expect = "fback"', 1)
    path = tmp_path / "wrong.toml"
    path.write_text(wrong)
    step_line = wrong[:replay].count("\n") - 3  # the [[step]] of the replay
    assert wrong.splitlines()[step_line - 1] == "[[step]]"
    done = subprocess.run(
        [sys.executable, "-m", "hkp_lab.cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{path}:line {step_line}: step fbu did not get fback" in done.stderr
    assert "1 of 12 steps FAILED" in done.stdout
