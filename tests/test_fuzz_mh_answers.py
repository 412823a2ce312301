"""hkp-fuzz's mh target against an AR's answering rules, as the long run met them
(docs/fuzzing.md, "What the lab runs taught"): an answer that comes after its case's
timeout is a late answer, never the answer to the next case; and the liveness probe
gets through an AR that drops a datagram reusing a recent Message ID (its P10 response
cache), so a busy AR is not taken for a hung one.

The AR here is a small UDP server in a thread; cases come from seeds only.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from hkp_fuzz.cases import Setup, cases_for, generate
from hkp_fuzz.runner import Options, Run
from hkp_radius.wire import HKResp

from .fuzz_fake_ar import Answer, FakeAr

NAI = b"mn@example.net"
HMK = bytes(range(64))
SUCCESS = HKResp(0, False, 2, 0).encode()
REFUSED = HKResp(0, False, 2, 130).encode()


def run_mh(port: int, seed: int, cases: int, timeout: float) -> Run:
    setup = Setup("mh", seed, NAI, HMK)
    options = Options("127.0.0.1", port, window=1, timeout=timeout, probe_timeout=0.3)
    return Run(setup, options).run(cases_for(setup, cases))


def test_an_answer_after_the_timeout_is_late_not_the_next_cases(
    fake_ar: Callable[[Answer], FakeAr],
) -> None:
    # case 1 must be refused: a Success for it would be a wrong accept
    seed = next(
        s for s in range(1, 200) if generate(Setup("mh", s, NAI, HMK), 1).expect == "reject"
    )
    held: list[tuple[str, int]] = []  # case 0's source, once it came
    seen: list[bytes] = []

    def answer(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        seen.append(data)
        if len(seen) == 1:
            held.append(peer)  # case 0: answered once the fuzzer has given up on it
            return
        if held:  # the late Success goes to case 0's source port, then the answer
            sock.sendto(SUCCESS, held.pop())
        sock.sendto(REFUSED, peer)

    server = fake_ar(answer)
    run = run_mh(server.port, seed, 2, timeout=0.2)
    assert [a.to_json() for a in run.anomalies] == []
    assert run.outcomes == {"no-answer": 1, "status130": 1}
    assert run.late == 1
    assert run.stopped == "done"


def test_the_probe_gets_through_an_ar_that_drops_recent_message_ids(
    fake_ar: Callable[[Answer], FakeAr],
) -> None:
    recent: deque[int | None] = deque(maxlen=240)  # fewer than the 256 Message IDs
    dropped: list[int] = []

    def answer(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        message_id = data[6] if len(data) > 6 else None
        if message_id is None or message_id in recent:
            dropped.append(1)  # like hkp-ar: "another datagram with the Message ID ..."
        else:
            sock.sendto(REFUSED, peer)
        recent.append(message_id)

    server = fake_ar(answer)
    run = run_mh(server.port, 4, 200, timeout=0.05)
    assert len(dropped) > 20  # the probe was needed, many times
    assert [a.to_json() for a in run.anomalies] == []
    assert run.stopped == "done" and run.sent == 200
    assert run.outcomes["no-answer"] > 20


def test_answers_that_came_while_the_probe_blocked_are_read_before_more_probes(
    fake_ar: Callable[[Answer], FakeAr],
) -> None:
    held: list[tuple[str, int]] = []
    seen: list[bytes] = []
    probes: list[bytes] = []

    def answer(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        seen.append(data)
        if len(seen) == 1:
            return  # case 0: never answered, so the fuzzer probes
        if len(seen) == 2:
            held.append(peer)  # case 1: answered while the probe is out
            return
        probes.append(data)
        if held:
            sock.sendto(REFUSED, held.pop())
        sock.sendto(REFUSED, peer)

    server = fake_ar(answer)
    setup = Setup("mh", 6, NAI, HMK)
    options = Options("127.0.0.1", server.port, window=2, timeout=0.2, probe_timeout=0.3)
    run = Run(setup, options).run(cases_for(setup, 2))
    assert [a.to_json() for a in run.anomalies] == []
    # case 1's answer was read after the probe, not left for a second probe and "late"
    assert run.outcomes == {"no-answer": 1, "status130": 1}
    assert run.late == 0 and len(probes) == 1


def test_an_answer_read_late_is_judged_by_when_it_arrived(
    fake_ar: Callable[[Answer], FakeAr],
) -> None:
    """The 2 `slow` anomalies of the second mh long run (answers "after 1.1 s" with a
    0.5 s timeout, machine at load 8): the answers had come in time, the fuzzer (nice 19)
    read them late. The latency is now to the kernel's arrival stamp. Here the fuzzer is
    kept off its loop for 0.6 s (the condition under test, begun once the AR has sent
    the answer), against a slow floor of 0.3 s."""
    stalled_index = 30  # after the slow oracle's 20-answer baseline
    answered = threading.Event()
    count: list[int] = []

    def answer(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        sock.sendto(REFUSED, peer)
        count.append(1)
        if len(count) == stalled_index + 1:
            answered.set()

    class DescheduledRun(Run):
        stalled = False

        def _read(self, flights: dict[int, Any], wait: float) -> None:
            if not self.stalled and any(f.case.index == stalled_index for f in flights.values()):
                self.stalled = True
                assert answered.wait(10)  # the answer is in the fuzzer's socket
                threading.Event().wait(0.6)  # the fuzzer off the CPU
            super()._read(flights, wait)

    server = fake_ar(answer)
    setup = Setup("mh", 8, NAI, HMK)
    options = Options("127.0.0.1", server.port, window=1, timeout=2.0, slow_after=0.3)
    run = DescheduledRun(setup, options).run(cases_for(setup, 40))
    assert run.stalled
    assert [a.to_json() for a in run.anomalies] == []
    assert run.outcomes == {"status130": 40}


def test_every_malformed_answer_is_reported_though_decoding_is_kept(
    fake_ar: Callable[[Answer], FakeAr],
) -> None:
    """mh.answer_status keeps the decoding of the answers it has seen: an answer that
    repeats byte for byte is judged as the first one was, every time."""
    garbage = b"\x3b\x00\xfb" + bytes(5)  # an MH of the wrong type, truncated

    def answer(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        sock.sendto(garbage if len(data) > 6 and data[6] % 2 else REFUSED, peer)

    setup = Setup("mh", 5, NAI, HMK)
    cases = list(cases_for(setup, 30))
    run = Run(setup, Options("127.0.0.1", fake_ar(answer).port, window=1)).run(cases)
    odd = [c.index for c in cases if len(c.mh) > 6 and c.mh[6] % 2]
    assert odd and [a.case.index for a in run.anomalies] == odd
    assert {a.oracle for a in run.anomalies} == {"malformed-reply"}
    assert run.outcomes == {"anomaly": len(odd), "status130": 30 - len(odd)}
