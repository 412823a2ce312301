"""`hkp-fuzz --workers N` (docs/fuzzing.md "Speed"): N processes over adjacent index
ranges give the report one process gives, the same cases (cases_digest), outcomes and
anomalies in index order, against the broken server of tests/fuzz_broken_server.py
(its wrong-accept and wrong-key bugs on; the hang off, since a wedged server would
stop each worker at a different case)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hkp_fuzz.cases import DIGEST_BLOCK, Digest, Setup, digest, generate, merge_digests
from hkp_fuzz.cli import main
from hkp_fuzz.radius import load_dictionary
from hkp_fuzz.workers import split

from .fuzz_broken_server import BrokenServer

SECRET = "broken-secret"
NAI = b"mn@example.net"
HMK = bytes(range(10, 74))


@pytest.fixture
def server() -> Iterator[BrokenServer]:
    with BrokenServer(SECRET.encode(), {NAI: HMK}) as broken:
        broken.hang_length = None
        yield broken


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_ranges_are_cut_at_digest_blocks_and_merge_into_the_whole_digest() -> None:
    for start, count, workers in [(0, 5000, 2), (700, 9000, 3), (5, 100, 4), (0, 1, 2)]:
        ranges = split(start, count, workers)
        assert ranges[0][0] == start and sum(n for _, n in ranges) == count
        for (first, size), (following, _) in itertools.pairwise(ranges):
            assert first + size == following and following % DIGEST_BLOCK == 0
    setup = Setup("mh", 4, NAI, HMK, dictionary=load_dictionary())
    parts = []
    for first, size in split(300, 3000, 3):
        part = Digest()
        for index in range(first, first + size):
            part.update(generate(setup, index))
        parts.append(part.finished())
    whole = digest(generate(setup, index) for index in range(300, 3300))
    assert len(parts) == 3 and merge_digests(parts) == whole


def test_two_workers_report_what_one_process_reports(
    server: BrokenServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hmk = tmp_path / "mn.hmk"
    hmk.write_text("0x" + HMK.hex() + "\n")
    common = ["radius", server.address, "--secret", SECRET, "--nai", NAI.decode()]
    common += ["--hmk-file", str(hmk), "--seed", "3", "--cases", "2500", "--start", "100"]
    one_code, one = run_cli(capsys, *common)
    two_code, two = run_cli(capsys, *common, "--workers", "2")
    assert (one["workers"], two["workers"]) == (1, 2)
    assert one_code == two_code == 1  # the planted wrong-accept and wrong-key
    for field in ("cases", "cases_digest", "outcomes", "mutators", "anomaly_counts"):
        assert one[field] == two[field], field
    assert {"wrong-accept", "wrong-key"} <= {a["oracle"] for a in two["anomalies"]}
    assert [(a["index"], a["oracle"], a["chain"]) for a in one["anomalies"]] == [
        (a["index"], a["oracle"], a["chain"]) for a in two["anomalies"]
    ]
    _, dry = run_cli(capsys, *common, "--dry-run")
    assert dry["cases_digest"] == two["cases_digest"]


def test_workers_usage_errors(server: BrokenServer, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["radius", server.address, "--secret", SECRET]
    assert main([*common, "--workers", "0"]) == 2
    assert main([*common, "--workers", "2", "--duration", "1"]) == 2
    assert main([*common, "--workers", "2", "--restart-command", "true"]) == 2
