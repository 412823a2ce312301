"""hkp-fuzz's own rate (prints figures; never asserts timings).

    python3 benchmarks/fuzz_rate.py [-n 20000] [--window 64] [--profile DIR]

In one run, for each target (radius, mh):
- generation only: the cases as a run draws them (the CLI's digest included), cases/s
  and CPU per case; and with every case's expectation computed (what a run pays when
  every answer is an Accept, the worst case for the fuzzer);
- a full run against a responder that keeps up, in its own process: for `radius` a UDP
  server answering every Access-Request with an Access-Reject carrying a correct
  Response Authenticator and Message-Authenticator; for `mh` one answering every
  datagram with an HKResp (status 130, encoded by the core). Figures: cases/s (wall),
  the fuzzer's CPU per case (its own process only, getrusage) and the rate that CPU
  allows ("own rate" = 1 / CPU per case), and the responder's CPU per case.
With --profile DIR, cProfile output of each phase goes to DIR (see docs/fuzzing.md).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import multiprocessing
import os
import resource
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hkp_fuzz.cases import Case, Setup, cases_for, generate
from hkp_fuzz.radius import load_dictionary
from hkp_fuzz.runner import Options, Run
from hkp_fuzz.workers import Digesting, run_workers
from hkp_radius.wire import HKResp

SECRET = b"fuzz-rate-secret"
NAI = b"mn@example.net"
HMK = bytes(range(64))
SEED = 1


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _digesting(cases: Iterator[Case]) -> Iterator[Case]:
    """As the CLI does: every case hashed into cases_digest on the way."""
    yield from Digesting(cases)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reject(data: bytes, keyed: Any) -> bytes:
    """Access-Reject with Message-Authenticator (RFC 3579 §3.2) and Response
    Authenticator (RFC 2865 §3) for one Access-Request."""
    head = bytes((3, data[1], 0, 38))
    ma = keyed.copy()
    ma.update(head + data[4:20] + b"\x50\x12" + bytes(16))
    attrs = b"\x50\x12" + ma.digest()
    response = hashlib.md5(head + data[4:20] + attrs + SECRET).digest()  # noqa: S324
    return head + response + attrs


def responder(target: str, ready: Any, stop: Any) -> None:
    """The server that keeps up: answers every datagram until told to stop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    keyed = hmac.new(SECRET, digestmod=hashlib.md5)
    failure = HKResp(0, False, 2, 130).encode()
    answered = 0
    ready.send(sock.getsockname()[1])
    start = _cpu()
    while not stop.poll():
        try:
            data, peer = sock.recvfrom(65535)
        except TimeoutError:
            continue
        sock.setblocking(False)
        while True:  # everything queued, then wait again
            if target == "radius":
                if len(data) >= 20:
                    sock.sendto(_reject(data, keyed), peer)
                    answered += 1
            else:
                sock.sendto(failure, peer)
                answered += 1
            try:
                data, peer = sock.recvfrom(65535)
            except BlockingIOError:
                break
        sock.settimeout(0.2)
    ready.send((answered, _cpu() - start))
    sock.close()


def _profiled(profile: Path | None, name: str, work: Callable[[], Any]) -> Any:
    if profile is None:
        return work()
    profiler = cProfile.Profile()
    result = profiler.runcall(work)
    profiler.dump_stats(str(profile / f"{name}.prof"))
    return result


def generation(setup: Setup, count: int, profile: Path | None) -> None:
    def drawn() -> None:
        for _ in _digesting(cases_for(setup, count)):
            pass

    def judged() -> None:
        for index in range(count):
            generate(setup, index).expect  # noqa: B018 (the expectation, computed)

    for label, work in (("generation", drawn), ("generation+expectation", judged)):
        cpu, wall = _cpu(), time.monotonic()
        _profiled(profile, f"{setup.target}-{label}", work)
        cpu, wall = _cpu() - cpu, time.monotonic() - wall
        print(
            f"{setup.target:6} {label:23}: {count / wall:10,.0f} cases/s, "
            f"{cpu / count * 1e6:6.1f} us CPU per case"
        )


class Responder:
    """The responder in its own process: `options` reach it; `stop()` says how many cases
    it answered and its CPU."""

    def __init__(self, target: str, window: int) -> None:
        self._parent, child = multiprocessing.Pipe()
        self._stop, stop_child = multiprocessing.Pipe()
        self._process = multiprocessing.Process(target=responder, args=(target, child, stop_child))
        self._process.start()
        port = self._parent.recv()
        self.options = Options("127.0.0.1", port, SECRET, window=window, timeout=2.0)

    def stop(self) -> tuple[int, float]:
        self._stop.send(True)
        answered, cpu = self._parent.recv()
        self._process.join()
        return answered, cpu


def full_run(setup: Setup, count: int, window: int, profile: Path | None) -> None:
    server = Responder(setup.target, window)
    options = server.options
    run = Run(setup, options)
    cpu, wall = _cpu(), time.monotonic()
    _profiled(
        profile, f"{setup.target}-full-run", lambda: run.run(_digesting(cases_for(setup, count)))
    )
    cpu, wall = _cpu() - cpu, time.monotonic() - wall
    answered, server_cpu = server.stop()
    per_case = cpu / count * 1e6
    print(
        f"{setup.target:6} {'full run':23}: {count / wall:10,.0f} cases/s, "
        f"{per_case:6.1f} us CPU per case (own rate {1e6 / per_case:,.0f} cases/s), "
        f"responder {server_cpu / max(answered, 1) * 1e6:.1f} us CPU per case; "
        f"window {window}, outcomes {dict(sorted(run.outcomes.items()))}, "
        f"anomalies {len(run.anomalies)}, late {run.late}"
    )


def workers_run(setup: Setup, count: int, window: int, workers: int) -> None:
    """`--workers N` against the same responder: wall rate and the workers' CPU."""
    server = Responder(setup.target, window)
    options = server.options
    cpu, children, wall = _cpu(), _children_cpu(), time.monotonic()
    report = run_workers(setup, options, 0, count, workers)
    wall = time.monotonic() - wall
    cpu, children = _cpu() - cpu, _children_cpu() - children
    server.stop()
    per_case = children / count * 1e6
    print(
        f"{setup.target:6} {f'full run, {workers} workers':23}: {count / wall:10,.0f} cases/s, "
        f"{per_case:6.1f} us CPU per case in the workers (own rate {workers * 1e6 / per_case:,.0f}"
        f" cases/s on {workers} free cores), parent {cpu / count * 1e6:.1f} us; "
        f"outcomes {report['outcomes']}, anomalies {len(report['anomalies'])}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--cases", type=int, default=20000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--targets", default="radius,mh")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here")
    parser.add_argument("--workers", type=int, default=2, help="the --workers phase's N")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    dictionary = load_dictionary()
    print(f"hkp-fuzz rate, {args.cases} cases per phase, seed {SEED}, pid {os.getpid()}")
    for target in args.targets.split(","):
        setup = Setup(target, SEED, NAI, HMK, dictionary=dictionary)
        generation(setup, args.cases, args.profile)
        full_run(setup, args.cases, args.window, args.profile)
        if args.workers > 1:
            workers_run(setup, args.cases, args.window, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
