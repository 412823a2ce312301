"""Issue 11 must-show 5 (smoke): benchmarks/radsec_compare.py runs tiny from the
checkout and prints, for RadSec and UDP in one run, keys/s and p99 and their ratio.
Figures are checked for presence and sanity (every exchange a key), never for speed."""

from __future__ import annotations

import re

from .conftest import requires_freeradius
from .test_benchmarks import NUMBER, run

pytestmark = requires_freeradius


def test_radsec_compare_prints_both_transports_and_the_ratios() -> None:
    out = run("radsec_compare.py", "-n", "150", "-c", "4", "--rounds", "1", "--users", "30")
    for transport in ("udp", "radsec"):
        rows = re.findall(
            rf"{transport} +4 in flight: +({NUMBER}) keys/s, p50 {NUMBER} ms, p99 ({NUMBER}) ms, "
            r"failed (\d+), retransmissions (\d+)",
            out,
        )
        assert len(rows) == 1, out
        assert rows[0][2] == "0" and rows[0][3] == "0", out
        assert float(rows[0][0].replace(",", "")) > 0, out
    assert re.search(
        rf"ratio radsec/udp \(medians of 1 rounds\): keys/s {NUMBER}, p99 {NUMBER}, "
        rf"hkp-ar CPU per exchange {NUMBER}",
        out,
    ), out
