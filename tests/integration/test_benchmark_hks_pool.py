"""Issue 10, Must show 6 (smoke): benchmarks/hks_pool.py runs tiny from the checkout and
prints keys/s of the whole path for one and two HKS processes in one run, and their
ratio. Figures are checked for presence and sanity (every exchange a key, both HKS
used), never against a speed."""

from __future__ import annotations

import re

from .test_benchmarks import NUMBER, run


def test_hks_pool_prints_keys_per_second_for_one_and_two_hks() -> None:
    out = run("hks_pool.py", "-n", "100", "-c", "8", "--rounds", "1", "--users", "20")
    for setup in ("sqlite x1", "postgresql x1", "postgresql x2"):
        line = re.search(rf"^round 1 {setup} *: .*$", out, re.M)
        assert line, out
        text = line.group(0)
        assert re.search(rf"{NUMBER} keys/s, p50 {NUMBER} ms, p99 {NUMBER} ms", text), text
        assert "failed 0" in text and "'SUCCESS': 100" in text, text
    two = re.search(r"^round 1 postgresql x2 *:.*accepts per HKS \[(\d+), (\d+)\]$", out, re.M)
    assert two and int(two.group(1)) > 0 and int(two.group(2)) > 0, out  # both HKS worked
    assert re.search(rf"ratio postgresql x2 / x1 keys/s: {NUMBER}", out), out
