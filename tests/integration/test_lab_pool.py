"""Issue 10: `hkp-lab run --hks 2 --store postgresql` runs the lab's account and then the
failover scenario (one HKS killed mid-run under load, started again, probed back by the
AR); `--hks 2` without the shared store is refused, saying why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hkp_lab.cli import main
from hkp_lab.lab import Lab, LabError

from .ar_fixtures import require_root_and_freeradius

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def test_run_with_two_hks_kills_one_mid_run_and_every_exchange_succeeds() -> None:
    require_root_and_freeradius()
    result = subprocess.run(
        [str(BIN / "hkp-lab"), "run", "--hks", "2", "--store", "postgresql"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr
    assert "replay state: PostgreSQL" in out
    assert out.count("  HKS: FreeRADIUS") == 2
    failover = out[out.index("[failover]") :]
    assert "killed lab-hks2 (SIGKILL)" in failover
    assert "exchanges: 300 (300 ok, 0 failed)" in failover
    assert "home server lab-hks2 marked dead" in failover
    assert "home server lab-hks2 alive again" in failover
    assert "requests to lab-hks2 while dead: 0 (probes only)" in failover
    assert "=> as expected" in failover
    assert "all exchanges as expected" in out


def test_several_hks_need_the_shared_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(LabError, match="--store postgresql"):
        Lab(tmp_path, hks_count=2)
    assert main(["up", "--hks", "2", "--dir", str(tmp_path)]) == 2
    assert "needs --store postgresql" in capsys.readouterr().err
