"""Issue 9, Must show 2: hkp-fuzz against the real lab, a real FreeRADIUS with the HKS
module (radius target) and a real hkp-ar in front of it (mh target). A bounded run of
each finds zero anomalies, and the same seed gives the same cases twice (the report's
cases_digest, from a real run and from a second, generate-only run).

Case counts fit CI's budget (about a minute in all); docs/fuzzing.md says what a long
run is and records one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hkp_fuzz.cases import Setup, generate
from hkp_fuzz.radius import load_dictionary
from hkp_fuzz.runner import Options, Run
from hkp_support.freeradius import FreeRadiusInstance
from tests.ar_helpers import HMK, NAI
from tests.test_fuzz_reference import AR_ID as AR_PACKED
from tests.test_fuzz_reference import LONG_RUN_INDICES

from .ar_fixtures import REPO, ArProcess
from .conftest import requires_freeradius

pytestmark = requires_freeradius
# A long run (docs/fuzzing.md) is this test with larger counts from the environment.
RADIUS_CASES = int(os.environ.get("HKP_FUZZ_RADIUS_CASES", "12000"))
MH_CASES = int(os.environ.get("HKP_FUZZ_MH_CASES", "3000"))
# The AR drops most mutants silently, so the mh rate is about window / timeout.
MH_WINDOW = os.environ.get("HKP_FUZZ_MH_WINDOW", "128")
# A long run of the mh target goes in pieces against fresh ARs (docs/fuzzing.md).
MH_START = os.environ.get("HKP_FUZZ_MH_START", "0")
AR_ID = "2001:db8::1"  # ar_fixtures.config_text's [ar] address


def fuzz(*args: str) -> tuple[int, dict[str, object]]:
    report = os.environ.get("HKP_FUZZ_REPORT_DIR")  # keep the long run's JSON
    done = subprocess.run(
        [sys.executable, "-m", "hkp_fuzz", *args, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=max(300, (RADIUS_CASES + MH_CASES) // 50),
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    if report and "--dry-run" not in args:
        (Path(report) / f"{args[0]}.json").write_text(done.stdout)
    return done.returncode, json.loads(done.stdout)


def hmk_file(tmp_path: Path) -> str:
    path = tmp_path / "mn.hmk"
    path.write_text("0x" + HMK.hex() + "\n")
    return str(path)


def same_seed_twice(target: str, server: str, report: dict[str, object], *extra: str) -> None:
    _, again = fuzz(target, server, *extra, "--dry-run")
    assert again["cases"] == report["cases"]
    assert again["cases_digest"] == report["cases_digest"]


def test_the_long_runs_over_long_attributes_against_the_hks(
    ar_hks: FreeRadiusInstance,
) -> None:
    """The 13 false wrong-accepts of the 2026-12-03 long run (seed 9): an over-long
    value whose tail FreeRADIUS reads as well-formed attributes. The real HKS accepts
    them (with the right key: the wrong-key oracle runs), and the reference, judging
    the packet as the server reads it, no longer calls that wrong. (Before the radius
    run: a long run's cases include these, which the HKS would then refuse as replays.)"""
    setup = Setup("radius", 9, NAI, HMK, AR_PACKED, dictionary=load_dictionary())
    options = Options(ar_hks.address, ar_hks.port, secret=ar_hks.secret, window=13)
    run = Run(setup, options).run([generate(setup, i) for i in LONG_RUN_INDICES])
    report = run.report(None)
    assert report["anomalies"] == [], report["anomalies"]
    assert report["outcomes"] == {"accept": 13}, report["outcomes"]


def test_radius_target_against_the_hks(ar_hks: FreeRadiusInstance, tmp_path: Path) -> None:
    server = f"{ar_hks.address}:{ar_hks.port}"
    common = ["--secret", ar_hks.secret.decode(), "--nai", NAI.decode()]
    common += ["--hmk-file", hmk_file(tmp_path), "--ar-id", AR_ID, "--seed", "9"]
    common += ["--cases", str(RADIUS_CASES)]
    code, report = fuzz("radius", server, *common, "--out", str(tmp_path / "out"))
    assert report["anomalies"] == [], report["anomalies"]
    assert code == 0
    assert report["cases"] == RADIUS_CASES and report["stopped"] == "done"
    outcomes = report["outcomes"]
    assert isinstance(outcomes, dict)
    # the run reached the logic behind authentication, and past it
    assert outcomes.get("accept", 0) > RADIUS_CASES // 10
    assert outcomes.get("reject", 0) > RADIUS_CASES // 3
    assert ar_hks.running, ar_hks.log_tail()
    assert "internal error" not in ar_hks.log_text()
    same_seed_twice("radius", server, report, *common)


def test_mh_target_against_hkp_ar(start_ar: Callable[..., ArProcess], tmp_path: Path) -> None:
    # Every case must reach the decoder: admission control (issue 15) off.
    hkp_ar = start_ar(sections={"admission": {"enabled": "no"}})
    server = f"[::1]:{hkp_ar.udp_port}"
    common = ["--nai", NAI.decode(), "--hmk-file", hmk_file(tmp_path), "--seed", "9"]
    common += ["--cases", str(MH_CASES), "--start", MH_START, "--timeout", "0.5"]
    # the probe is a valid HKReq: the AR asks the HKS, which a shared machine may delay
    common += ["--probe-timeout", "2"]
    code, report = fuzz("mh", server, *common, "--window", MH_WINDOW)
    assert report["anomalies"] == [], (report["anomalies"], hkp_ar.log_text()[-3000:])
    assert code == 0
    assert report["cases"] == MH_CASES and report["stopped"] == "done"
    outcomes = report["outcomes"]
    assert isinstance(outcomes, dict)
    assert outcomes.get("success", 0) > MH_CASES // 20, outcomes
    assert hkp_ar.running, hkp_ar.log_text()[-2000:]
    same_seed_twice("mh", server, report, *common)
