"""Issue 14, Must show 2 (CI smoke run of the whole path): `hkp-mn load --lab` against a
real lab over UDP (hkp-ar, FreeRADIUS 3.2.1 with the HKS module, replay state on disk):
5,000 exchanges at 50 in flight, no failure, no retransmission, no correction, and
every figure in the JSON result. Speed is printed, never asserted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .mn_lab import needs_root_and_freeradius

pytestmark = [pytest.mark.integration, needs_root_and_freeradius]
REPO = Path(__file__).resolve().parents[2]


def command(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True,
        timeout=timeout, env=env, cwd=REPO, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def lab_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="hkp-loadtest-", dir="/tmp"))
    up = command("hkp_lab.cli", "up", "--dir", str(directory))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield directory
    finally:
        down = command("hkp_lab.cli", "down", "--dir", str(directory))
        shutil.rmtree(directory, ignore_errors=True)
        assert down.returncode == 0, down.stderr


def load(lab_dir: Path, *args: str) -> tuple[dict[str, object], str]:
    done = command(
        "mn_client.cli", "load", "--lab", "--lab-dir", str(lab_dir), "--json",
        "--progress", "2", *args,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    assert (done.returncode == 0) == (result["failed"] == 0), done.stdout
    print(json.dumps(result))  # the figures, for whoever reads the CI log
    return result, done.stderr


def test_5000_exchanges_at_50_in_flight_no_failure_no_retransmission(lab_dir: Path) -> None:
    """The MN's timer is 3 s here (--timeout, HKEY_REQ_TOUT; the AR keeps answers that
    long): a retransmission then means a lost datagram or a stuck exchange, not a busy
    shared CI machine whose queue tail crossed the default 1 s (seen once: 1.04 s).
    Kept after issue 14's third run (docs/benchmarks.md): the path is ~10 % cheaper in
    hkp-ar but still CPU-bound at a few hundred keys/s on a loaded 2-core machine, where
    this run's tail was p99 576 ms, max 840 ms: within reach of 1 s, not of 3 s."""
    result, _ = load(lab_dir, "-n", "5000", "-c", "50", "--timeout", "3")
    assert result["succeeded"] == 5000 and result["failed"] == 0, result
    assert result["retransmissions"] == 0 and result["corrections"] == 0, result
    assert result["errors_received"] == {} and result["failures"] == {}, result
    assert result["hkreqs_sent"] == 5000 and result["max_in_flight_per_identity"] == 1, result
    latency = result["latency_ms"]
    assert isinstance(latency, dict) and set(latency) >= {"p50", "p99", "max"}


def test_one_identity_one_in_flight_goes_past_256_exchanges(lab_dir: Path) -> None:
    """(b) on the real path: one identity, 300 exchanges, one at a time: whenever its 256
    Message IDs are inside the reuse guard it waits (message_id_waits), never stops. Not
    a load identity: those were used by the run above within the guard, and a new
    process cannot know which of their IDs the AR still caches (docs/mn.md)."""
    result, _ = load(lab_dir, "--nai", "bob@lab.example", "-n", "300", "-c", "1")
    assert result["succeeded"] == 300 and result["retransmissions"] == 0, result
    assert result["identities"] == 1


def test_more_in_flight_than_identities_is_a_usage_error(lab_dir: Path) -> None:
    done = command(
        "mn_client.cli", "load", "--lab", "--lab-dir", str(lab_dir), "--nai",
        "load-00@lab.example", "-n", "10", "-c", "2",
    )  # fmt: skip
    assert done.returncode == 2 and not done.stdout.strip().endswith("}"), done.stdout
    assert "-c 2: 2 in flight at 1 per identity needs 2 identities; there are 1" in done.stderr
