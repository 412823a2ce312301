"""Issue 9 (speed): benchmarks/fuzz_rate.py runs tiny from the checkout and prints its
figures: generation only, and a full run against a responder that keeps up, in one
process and with --workers 2, for both targets. Figures are checked for presence and
sanity (every case answered, no anomaly), never against a speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,.]+"


def test_fuzz_rate_prints_cases_per_second_and_cpu_per_case(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "fuzz_rate.py"), "-n", "300",
         "--profile", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for target, answer in (("radius", "reject"), ("mh", "status130")):
        for phase in ("generation", "generation\\+expectation"):
            assert re.search(
                rf"^{target} +{phase} *: *{NUMBER} cases/s, *{NUMBER} us CPU per case$", out, re.M
            ), out
        line = re.search(rf"^{target} +full run *:.*$", out, re.M)
        assert line, out
        text = line.group(0)
        assert re.search(
            rf"{NUMBER} cases/s, *{NUMBER} us CPU per case \(own rate {NUMBER} cases/s\), "
            rf"responder {NUMBER} us CPU per case",
            text,
        ), text
        assert f"outcomes {{'{answer}': 300}}, anomalies 0, late 0" in text, text
        assert (tmp_path / f"{target}-full-run.prof").stat().st_size > 0
        workers = re.search(rf"^{target} +full run, 2 workers *:.*$", out, re.M)
        assert workers, out
        assert re.search(
            rf"{NUMBER} cases/s, *{NUMBER} us CPU per case in the workers \(own rate "
            rf"{NUMBER} cases/s on 2 free cores\)",
            workers.group(0),
        ), workers.group(0)
        assert f"outcomes {{'{answer}': 300}}, anomalies 0" in workers.group(0)
