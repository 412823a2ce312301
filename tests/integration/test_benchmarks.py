"""Issue 14, must-show 1 (smoke): each benchmark script runs tiny from the checkout and
prints the figures of the Goal. Figures are checked for presence and sanity (every
exchange answered), never against a speed: speed is not asserted in tests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .ar_fixtures import require_root_and_freeradius
from .conftest import requires_freeradius

pytestmark = requires_freeradius
REPO = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,.]+"


def run(script: str, *args: str) -> str:
    require_root_and_freeradius()
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_hks_compare_prints_rates_cpu_and_the_goal_ratios() -> None:
    out = run("hks_compare.py", "-n", "200", "-c", "8", "--rounds", "2", "--users", "20")
    for kind in ("files", "echo", "hks", "inline"):
        rows = re.findall(
            rf"round \d {kind} *: *({NUMBER}) Access-Requests/s, *({NUMBER}) us server CPU "
            rf"per request.*accepts (\d+)/200, failed (\d+), .*RSS {NUMBER} KiB$",
            out,
            re.M,
        )
        assert len(rows) == 2, out
        assert all(int(accepts) == 200 and failed == "0" for _, _, accepts, failed in rows), out
    assert re.search(rf"ratio hks/echo server CPU per Access-Request: {NUMBER} \(Goal", out)
    assert re.search(rf"ratio hks/echo Access-Requests/s: {NUMBER} \(Goal", out)
    # each HKS server prints its upserts per commit; inline commits every accept alone
    growth = re.search(r"^RSS growth after round 1: (.*)$", out, re.M)
    assert growth and all(f"{kind} " in growth.group(1) for kind in ("files", "hks")), out
    assert re.search(rf"hks *: {NUMBER} upserts per commit", out), out
    assert re.search(r"inline *: 1\.0 upserts per commit", out), out


def test_whole_path_prints_keys_per_second_latency_and_cpu_per_process() -> None:
    out = run("whole_path.py", "-n", "200", "-c", "4,16", "--users", "50")
    for concurrency in (4, 16):
        line = re.search(rf"^ *{concurrency} in flight: .*$", out, re.M)
        assert line, out
        text = line.group(0)
        assert re.search(rf"{NUMBER} keys/s, p50 {NUMBER} ms, p99 {NUMBER} ms", text), text
        assert "failed 0" in text and "'SUCCESS': 200" in text, text
        assert re.search(
            rf"hkp-ar {NUMBER} us, FreeRADIUS {NUMBER} us, generator {NUMBER} us", text
        ), text


def test_memory_prints_rss_start_up_and_scaled_cost() -> None:
    out = run(
        "memory.py", "--exchanges", "300", "--chunk", "100", "-c", "8", "--scale", "500",
        "--small-users", "50",
    )  # fmt: skip
    assert re.search(r"small: 50 users, 0 stored keys", out), out
    assert re.search(r"scaled: 500 users, 500 stored keys \(500 loaded\)", out), out
    assert len(re.findall(r"small +after", out)) == 3, out
    assert re.search(rf"RSS growth over the long run .*hkp-ar [+-]{NUMBER} KiB", out), out
    assert re.search(rf"CPU per exchange scaled/small: hkp-ar {NUMBER}", out), out
