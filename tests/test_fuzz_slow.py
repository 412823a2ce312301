"""The `slow` oracle confirms a slow answer by re-sending its case alone after the run
(hkp_fuzz/confirm.py, docs/fuzzing.md "A slow answer is confirmed alone"): a case the
server handles slowly is an anomaly, and replays from its file; a stall that hit a few
cases in a row is listed as not reproduced and is no anomaly; for `mh` the re-send
waits until an AR's response cache can no longer answer it.

The AR is a small UDP server in a thread (tests/fuzz_fake_ar.py) that answers late on
purpose (a timer, the server's behaviour under test), from seeded cases only.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hkp_fuzz import confirm
from hkp_fuzz.cases import Setup, cases_for
from hkp_fuzz.cli import main
from hkp_fuzz.runner import Options, Run
from hkp_radius.wire import HKResp

from .fuzz_fake_ar import Answer, FakeAr

NAI = b"mn@example.net"
HMK = bytes(range(64))
REFUSED = HKResp(0, False, 2, 130).encode()
SEED, CASES = 12, 40
DELAY = 0.6  # how late the server answers a slow case; the slow floor is 0.2 s
OPTIONS = {"window": 1, "timeout": 1.2, "probe_timeout": 0.3, "slow_after": 0.2}


def slow_shape(wire: bytes) -> bool:
    """The shape the server handles slowly: a whole HKReq whose MH Type is 249, 251 or
    252 (m_header's "type"; cases 30 and 38 of the seed)."""
    return len(wire) >= 24 and wire[2] in (249, 251, 252)


def answer_late(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
    threading.Timer(DELAY, sock.sendto, (REFUSED, peer)).start()


def run(port: int, out: Path | None = None) -> Run:
    setup = Setup("mh", SEED, NAI, HMK)
    options = Options("127.0.0.1", port, out=out, **OPTIONS)  # type: ignore[arg-type]
    return Run(setup, options).run(cases_for(setup, CASES))


def test_a_case_the_server_handles_slowly_is_reported_and_replays(
    fake_ar: Callable[[Answer], FakeAr], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shaped = [c.index for c in cases_for(Setup("mh", SEED, NAI, HMK), CASES) if slow_shape(c.mh)]
    # after the oracle's 20-answer baseline; a shape the seed has
    assert shaped and min(shaped) >= 20

    def answer(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        if slow_shape(data):
            answer_late(sock, data, peer)
        else:
            sock.sendto(REFUSED, peer)

    server = fake_ar(answer)
    found = run(server.port, tmp_path / "out")
    assert sorted(a.case.index for a in found.anomalies) == shaped
    assert {a.oracle for a in found.anomalies} == {"slow"}
    assert all("re-sent alone: answered after" in a.detail for a in found.anomalies)
    assert found.slow_not_reproduced == []
    assert found.outcomes == {"status130": CASES}  # each case counted once

    kept = json.loads(Path(str(found.anomalies[0].file)).read_text())
    assert kept["oracle"] == "slow" and kept["baseline_s"] < 0.2
    capsys.readouterr()
    code = main(["replay", str(found.anomalies[0].file), "--json", "--timeout", "1.2",
                 "--slow-after", "0.2", "--probe-timeout", "0.3"])  # fmt: skip
    replayed: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 1 and replayed["reproduced"] is True


def test_a_stall_over_a_few_cases_is_not_reproduced_and_no_anomaly(
    fake_ar: Callable[[Answer], FakeAr],
) -> None:
    stalled = range(30, 33)  # the 31st to 33rd datagrams: a stall, whatever the case
    received: list[bytes] = []

    def answer(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        received.append(data)
        if len(received) - 1 in stalled:
            answer_late(sock, data, peer)
        else:
            sock.sendto(REFUSED, peer)

    server = fake_ar(answer)
    found = run(server.port)
    assert [a.to_json() for a in found.anomalies] == []
    listed = found.slow_not_reproduced
    assert [s["index"] for s in listed] == list(stalled)  # window 1: datagram n is case n
    assert all(s["latency_s"] >= DELAY and s["alone_s"] < DELAY for s in listed)
    report = found.report(None)
    assert report["slow_not_reproduced"] == listed and report["anomaly_counts"]["slow"] == 0
    # each re-sent alone, once, after the run: the same bytes as the case's
    assert received[CASES:] == [received[i] for i in stalled]


def test_over_the_confirmation_limit_slow_answers_are_anomalies_unconfirmed(
    fake_ar: Callable[[Answer], FakeAr], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(confirm, "CONFIRM_LIMIT", 1)
    received: list[bytes] = []

    def answer(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        received.append(data)
        if 30 <= len(received) - 1 < 33:
            answer_late(sock, data, peer)
        else:
            sock.sendto(REFUSED, peer)

    found = run(fake_ar(answer).port)
    assert [s["index"] for s in found.slow_not_reproduced] == [30]
    assert [(a.oracle, a.case.index) for a in found.anomalies] == [("slow", 31), ("slow", 32)]
    assert all("not re-sent" in a.detail for a in found.anomalies)
    assert len(received) == CASES + 1


def test_the_mh_re_send_waits_out_the_ar_response_cache(
    fake_ar: Callable[[Answer], FakeAr],
) -> None:
    """P10: an AR answers a repeated Message ID from its cache for 3 s after the
    answer, fast; the re-sent case must reach the AR after that, counted from the last
    datagram with its Message ID."""
    arrivals: list[tuple[float, bytes]] = []

    def answer(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        arrivals.append((time.monotonic(), data))
        if len(arrivals) - 1 == 30:
            answer_late(sock, data, peer)
        else:
            sock.sendto(REFUSED, peer)

    found = run(fake_ar(answer).port)
    assert [s["index"] for s in found.slow_not_reproduced] == [30]
    resent_at, resent = arrivals[CASES]
    earlier = [at for at, data in arrivals[:CASES] if data[6] == resent[6]]
    assert resent_at - max(earlier) >= confirm.MH_RESPONSE_CACHE_S
