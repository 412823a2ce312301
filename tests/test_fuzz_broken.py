"""Issue 9, Must show 1: against a deliberately broken RADIUS server
(tests/fuzz_broken_server.py) hkp-fuzz finds each planted bug within a bounded number
of cases, under the right oracle, and `replay` and `minimize` reproduce it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hkp_fuzz.cases import load_case
from hkp_fuzz.cli import main
from hkp_fuzz.radius import hkp_vsas
from hkp_radius.wire import decode_message

from .fuzz_broken_server import HANG_LENGTH, BrokenServer

SECRET = "broken-secret"
NAI = b"mn@example.net"
HMK = bytes(range(10, 74))
BOUND = 400  # the planted bugs must all show within this many cases
SEED = 3


@pytest.fixture
def broken() -> Iterator[BrokenServer]:
    with BrokenServer(SECRET.encode(), {NAI: HMK}) as server:
        yield server


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def credentials(tmp_path: Path, server: BrokenServer) -> list[str]:
    hmk = tmp_path / "mn.hmk"
    hmk.write_text(HMK.hex() + "\n")
    return [
        "--secret", SECRET, "--nai", NAI.decode(), "--hmk-file", str(hmk),
        "--timeout", "0.3", "--probe-timeout", "0.2",
        "--restart-command", server.restart_command,
    ]  # fmt: skip


def mac_algorithm(attrs: list[tuple[int, bytes]]) -> int | None:
    message = decode_message(b"".join(hkp_vsas(attrs, 1)))
    mac = message.mac(1)  # type: ignore[arg-type]
    return None if mac is None else mac.algorithm


def test_each_planted_bug_is_found_replayed_and_minimized(
    broken: BrokenServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    common = credentials(tmp_path, broken)
    code, report = run_cli(
        capsys, "radius", broken.address, *common, "--seed", str(SEED),
        "--cases", str(BOUND), "--out", str(out),
    )  # fmt: skip
    assert code == 1
    assert report["cases"] == BOUND and report["stopped"] == "done"
    first: dict[str, dict[str, Any]] = {}
    for anomaly in report["anomalies"]:
        first.setdefault(anomaly["oracle"], anomaly)
    assert set(first) == {"hang", "wrong-accept", "wrong-key"}, report["anomaly_counts"]
    assert broken.hangs >= 1

    # each under the right oracle: the case has the planted bug's shape
    hang, _ = load_case(Path(first["hang"]["file"]))
    assert any(len(value) == HANG_LENGTH for _, value in hang.attributes)
    accept, _ = load_case(Path(first["wrong-accept"]["file"]))
    assert mac_algorithm(accept.attributes) not in (1, 2)
    wrong_key, _ = load_case(Path(first["wrong-key"]["file"]))
    assert decode_message(b"".join(hkp_vsas(wrong_key.attributes, 1))).prf == 2
    # every anomaly of the run is one of the three bugs, none is a false alarm
    for anomaly in report["anomalies"]:
        case, _ = load_case(Path(anomaly["file"]))
        if anomaly["oracle"] == "hang":
            assert any(len(v) == HANG_LENGTH for _, v in case.attributes), anomaly
        elif anomaly["oracle"] == "wrong-accept":
            assert mac_algorithm(case.attributes) not in (1, 2), anomaly
        else:
            assert decode_message(b"".join(hkp_vsas(case.attributes, 1))).prf == 2, anomaly

    for oracle, anomaly in first.items():
        code, replayed = run_cli(capsys, "replay", anomaly["file"], *common)
        assert code == 1 and replayed["reproduced"], (oracle, replayed)
        assert [a["oracle"] for a in replayed["anomalies"]] == [oracle]

        minimized_path = tmp_path / f"{oracle}.min.json"
        code, minimized = run_cli(
            capsys, "minimize", anomaly["file"], *common,
            "--output", str(minimized_path), "--budget", "25",
        )  # fmt: skip
        assert code == 1 and minimized["reproduced"], (oracle, minimized)
        assert minimized["size_after"] <= minimized["size_before"]
        code, again = run_cli(capsys, "replay", str(minimized_path), *common)
        assert code == 1 and [a["oracle"] for a in again["anomalies"]] == [oracle]
    # the hang's minimal case keeps just what wedges the server
    small, _ = load_case(tmp_path / "hang.min.json")
    assert len(small.attributes) == 1 and len(small.attributes[0][1]) == HANG_LENGTH


def test_a_fixed_server_gives_no_anomaly(
    broken: BrokenServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The oracles do not fire on a correct answer: the template (case 0) alone."""
    code, report = run_cli(
        capsys, "radius", broken.address, *credentials(tmp_path, broken), "--cases", "1"
    )
    assert code == 0 and report["anomalies"] == [] and report["outcomes"] == {"accept": 1}
