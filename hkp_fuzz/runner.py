"""The engine: send cases with a bounded window, match replies, run the oracles, keep
anomalies and a corpus, and count outcomes per mutator.

Oracles (docs/fuzzing.md): crash / hang (no answer, then no answer to the liveness
probe, or the watched process gone), wrong-accept, wrong-key, malformed-reply, slow,
memory.
"""

from __future__ import annotations

import math
import select
import shlex
import socket
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hkp_radius import crypto
from hkp_radius.errors import DecodeError, HKPError
from hkp_support.freeradius import status_server

from . import mh as mh_level
from .cases import Case, Setup, mutator_names, rng_for, save_case
from .confirm import Suspect, confirm_slow
from .radius import (
    ACCESS_ACCEPT,
    ACCESS_REQUEST,
    CODE_NAMES,
    USER_NAME,
    VT_AR_ADDRESS,
    VT_MOBILITY_HEADER,
    Reply,
    ReplyChecker,
    RequestEncoder,
    as_received,
    check_reply,
    handover_key,
    hkp_vsas,
    hks_nonce,
    radclient_text,
)
from .system import allow_files, arrival, drain, enable_stamps, pid_alive, rss_kib

SLOW_BASELINE = 200  # the slow oracle's baseline: the median of the last 200 answers
ORACLES = ("crash", "hang", "wrong-accept", "wrong-key", "malformed-reply", "slow", "memory")
PROBE_TRIES = 3
_TEMPLATE = ("template",)
RETIRED_FOR = 4  # mh: an unanswered case's socket stays open 4 timeouts for late answers
RESTART_TIMEOUT = 30.0


@dataclass
class Options:
    host: str
    port: int
    secret: bytes = b""
    window: int = 64
    timeout: float = 2.0
    probe_timeout: float = 0.5
    slow_after: float = 1.0  # an answer later than max(this, 20 x median) is slow
    # the median to use before a run has 20 answers of its own (replay of a kept slow case)
    slow_baseline: float | None = None
    confirm_slow: bool = True  # re-send a slow case alone after the run (confirm.py)
    rate: float | None = None
    duration: float | None = None
    watch_pid: int | None = None
    watch_rss_mib: float | None = None
    restart_command: str | None = None
    out: Path | None = None
    progress: bool = False


@dataclass
class Anomaly:
    oracle: str
    case: Case
    detail: str
    file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # kept in the anomaly file only

    def to_json(self) -> dict[str, Any]:
        return {
            "oracle": self.oracle,
            "seed": self.case.seed,
            "index": self.case.index,
            "chain": self.case.chain,
            "detail": self.detail,
            "file": self.file,
        }


@dataclass(slots=True)
class _Flight:
    case: Case
    sent: float
    slot: int
    authenticator: bytes = b""


@dataclass
class Run:
    setup: Setup
    options: Options
    sent: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    mutators: dict[str, dict[str, int]] = field(default_factory=dict)
    anomalies: list[Anomaly] = field(default_factory=list)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=SLOW_BASELINE))
    stopped: str = "done"
    seen: set[tuple[str, str]] = field(default_factory=set)
    late: int = 0
    answered_sent: float = 0.0  # send time of the latest-sent case that was answered
    # mh: when each Message ID was last sent (a sequence number), for the probe
    id_last: list[int] = field(default_factory=lambda: [0] * 256)
    id_sequence: int = 0
    probed_at: float = 0.0  # when the latest liveness probe in the run ended
    id_sent_at: list[float] = field(default_factory=lambda: [-math.inf] * 256)  # mh
    suspects: list[Suspect] = field(default_factory=list)  # slow, to confirm (confirm.py)
    slow_not_reproduced: list[dict[str, Any]] = field(default_factory=list)

    # --- sockets ---

    def _open(self) -> None:
        family = socket.AF_INET6 if ":" in self.options.host else socket.AF_INET
        count = 1 if self.setup.target == "radius" else self.options.window
        allow_files(count + 64)
        self.family = family
        self.poller = select.epoll()
        self.slot_of: dict[int, int] = {}  # file descriptor -> slot (mh: a socket a slot)
        self.socks = [self._socket(slot) for slot in range(count)]
        # mh: the socket of a case that went unanswered, kept a while so that a late
        # answer is counted as late, never taken for the answer to the slot's next case
        self.retired: deque[tuple[float, socket.socket]] = deque()
        self.retired_fds: dict[int, socket.socket] = {}
        self.free = deque(range(256 if self.setup.target == "radius" else count))
        self.previous: dict[int, list[bytes]] = {}  # identifier -> older authenticators
        self.encoder = RequestEncoder(self.options.secret)
        self.checker = ReplyChecker(self.options.secret, self.setup.dictionary)

    def _socket(self, slot: int) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect((self.options.host, self.options.port))
        enable_stamps(sock)  # the slow oracle's latency: to the answer's arrival
        self.poller.register(sock.fileno(), select.EPOLLIN)
        self.slot_of[sock.fileno()] = slot
        return sock

    def _retire(self, slot: int) -> None:
        """mh: the slot's next case gets a fresh socket (a fresh source port)."""
        old = self.socks[slot]
        del self.slot_of[old.fileno()]
        self.retired_fds[old.fileno()] = old
        self.retired.append((time.monotonic() + RETIRED_FOR * self.options.timeout, old))
        self.socks[slot] = self._socket(slot)

    def _late(self, fd: int) -> None:
        for _ in drain(self.retired_fds[fd]):
            self.late += 1

    def _forget_retired(self, now: float) -> None:
        while self.retired and (now is math.inf or self.retired[0][0] < now):
            _, sock = self.retired.popleft()
            if now is math.inf:
                self._late(sock.fileno())  # queued before the run ended
            del self.retired_fds[sock.fileno()]
            self.poller.unregister(sock.fileno())
            sock.close()

    def _close(self) -> None:
        self._forget_retired(math.inf)
        self.poller.close()
        for sock in self.socks:
            sock.close()

    def _wire(self, case: Case, slot: int) -> tuple[bytes, bytes]:
        if case.target == "mh":
            return case.mh, b""
        try:
            encoder = self.encoder
        except AttributeError:  # a case written out before the run opened its sockets
            encoder = self.encoder = RequestEncoder(self.options.secret)
        packet = encoder.encode(
            ACCESS_REQUEST, slot, case.authenticator, case.attributes, case.message_authenticator
        )
        return packet, case.authenticator

    # --- liveness ---

    def alive(self) -> bool:
        if self.options.watch_pid is not None and not pid_alive(self.options.watch_pid):
            return False
        for attempt in range(PROBE_TRIES):
            if self.setup.target == "radius":
                if status_server(
                    self.options.host,
                    self.options.port,
                    self.options.secret,
                    self.options.probe_timeout,
                ):
                    return True
            elif self._mh_probe(attempt):
                return True
        return False

    def _mh_probe(self, attempt: int) -> bool:
        """A valid HKReq with the Message ID sent least recently: an AR keeps a request's
        Message ID for a while after answering (P10 response cache) and drops another
        datagram with it unanswered; a random ID would often be one of those."""
        rng = rng_for(self.setup.seed, -1 - attempt - 3 * self.sent)
        unsigned = bytearray(mh_level.template(self.setup.nai, rng))
        last = self.id_last
        unsigned[6] = message_id = min(range(256), key=last.__getitem__)
        self.id_sequence += 1
        last[message_id] = self.id_sequence
        wire = mh_level.sign(bytes(unsigned), mh_level.valid_hmk(self.setup.hmk))
        family = self.socks[0].family
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(self.options.probe_timeout)
            try:
                sock.connect((self.options.host, self.options.port))  # refused: at once
                sock.send(wire)
                return bool(sock.recv(4096))
            except OSError:
                return False

    def _restart(self) -> bool:
        command = self.options.restart_command
        if not command:
            return False
        subprocess.run(shlex.split(command), check=False, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + RESTART_TIMEOUT
        while time.monotonic() < deadline:
            if self.alive():
                return True
        return False

    # --- the loop ---

    def run(self, cases: Iterable[Case]) -> Run:
        self._open()
        rss_start = rss_kib(self.options.watch_pid)
        started = self.started = time.monotonic()
        pending = iter(cases)
        retry: deque[Case] = deque()  # in flight when the target died: sent again
        # in flight by slot; a dict keeps insertion order, so the first is the oldest
        flights: dict[int, _Flight] = {}
        exhausted = False
        options, free, monotonic = self.options, self.free, time.monotonic
        window, timeout, rate = options.window, options.timeout, options.rate
        radius = self.setup.target == "radius"
        try:
            while flights or retry or not exhausted:
                now = monotonic()
                if options.duration is not None and now - started > options.duration:
                    exhausted = True
                    retry.clear()
                # the free window's cases, then their datagrams back to back (one wake-up)
                burst: list[tuple[_Flight, bytes]] = []
                while (retry or not exhausted) and len(flights) + len(burst) < window and free:
                    if rate and self.sent + len(burst) >= (now - started) * rate:
                        break
                    case = retry.popleft() if retry else next(pending, None)
                    if case is None:
                        exhausted = True
                        break
                    slot = free.popleft()
                    wire, authenticator = self._wire(case, slot)
                    burst.append((_Flight(case, 0.0, slot, authenticator), wire))
                for flight, wire in burst:
                    try:
                        self.socks[0 if radius else flight.slot].send(wire)
                    except OSError:
                        pass  # refused: counts as no answer, the probe decides
                    flight.sent = monotonic()
                    flights[flight.slot] = flight
                    if not radius and len(wire) > 6:
                        self.id_sequence += 1
                        self.id_last[wire[6]] = self.id_sequence
                        self.id_sent_at[wire[6]] = flight.sent
                self.sent += len(burst)
                if flights:
                    oldest = next(iter(flights.values())).sent
                    wait = max(0.0, oldest + timeout - monotonic())
                else:
                    wait = 0.05
                if rate and not exhausted:
                    wait = min(wait, 1.0 / rate)
                self._read(flights, min(wait, 0.05))
                now = monotonic()
                if self.retired:
                    self._forget_retired(now)
                expired = []
                for flight in flights.values():  # oldest first: stop at the first in time
                    if now - flight.sent <= timeout:
                        break
                    expired.append(flight)
                for flight in expired:
                    if flight.slot not in flights:
                        continue
                    del flights[flight.slot]
                    self._release(flight)
                    if self.answered_sent > flight.sent:
                        self._count(flight.case, "no-answer")
                        continue
                    alive = self.alive()
                    # the answers that came while the probe blocked, before judging more
                    self.probed_at = monotonic()
                    self._read(flights, 0.0)
                    if alive or self.answered_sent > flight.sent:
                        self._count(flight.case, "no-answer")
                        continue
                    gone = options.watch_pid is not None and not pid_alive(options.watch_pid)
                    self._anomaly(
                        "crash" if gone else "hang",
                        flight.case,
                        "no answer, and no answer to the liveness probe",
                    )
                    self._count(flight.case, "anomaly")  # every case sent has one outcome
                    survivors = sorted(flights.values(), key=lambda f: f.sent)
                    for other in survivors:
                        self._release(other)
                    flights.clear()
                    if not self._restart():
                        for other in survivors:
                            self._count(other.case, "no-answer")
                        self.stopped = "target-dead"
                        exhausted = True
                        break
                    self.sent -= len(survivors)
                    retry.extend(other.case for other in survivors)
                if options.progress:
                    self._progress()
        finally:
            self._close()
        self.elapsed = time.monotonic() - started
        if self.options.confirm_slow:
            confirm_slow(self)
        rss_end = rss_kib(self.options.watch_pid)
        limit = self.options.watch_rss_mib
        if limit is not None and rss_start and rss_end and (rss_end - rss_start) / 1024 > limit:
            last = Case(self.setup.target, self.setup.seed, self.sent - 1, ["run"], "any", "")
            self._anomaly("memory", last, f"RSS grew from {rss_start} KiB to {rss_end} KiB")
        return self

    def _read(self, flights: dict[int, _Flight], wait: float) -> None:
        for fd, _ in self.poller.poll(wait):
            ready = self.slot_of.get(fd)
            if ready is None:
                self._late(fd)
                continue
            sock = self.socks[ready]
            for data in drain(sock):
                self._reply(ready, data, flights, sock)

    def _release(self, flight: _Flight, answered: bool = False) -> None:
        if flight.authenticator:
            self.previous.setdefault(flight.slot, []).append(flight.authenticator)
            del self.previous[flight.slot][:-4]
        elif not answered and self.setup.target == "mh":
            self._retire(flight.slot)
        self.free.append(flight.slot)

    def _reply(
        self, slot: int, data: bytes, flights: dict[int, _Flight], sock: socket.socket
    ) -> None:
        radius = self.setup.target == "radius"
        if radius:
            slot = data[1] if len(data) > 1 else -1
        flight = flights.get(slot)
        if flight is None:
            self.late += 1  # an answer after its timeout
            return
        reply = None
        if radius:
            reply = self.checker.check(data, flight.authenticator)
            if reply.problem is not None and self._stale(data, slot):
                self.late += 1
                return
        del flights[slot]
        self._release(flight, answered=True)
        if flight.sent > self.answered_sent:
            self.answered_sent = flight.sent
        latency = time.monotonic() - flight.sent
        if latency > self.options.slow_after:  # read late: when did it arrive?
            latency = min(latency, arrival(sock) - flight.sent)
        outcome = self._judge(flight.case, data, reply)
        # sent before a probe ended: it may have waited unread, its latency is unknown
        if flight.sent >= self.probed_at:
            baseline = self._slow(latency) if outcome is not None else None
            if baseline is not None and self.options.confirm_slow:
                self.suspects.append(Suspect(flight.case, latency, baseline))
            elif baseline is not None:
                self._anomaly(
                    "slow", flight.case, f"answered after {latency:.3f} s", baseline_s=baseline
                )
            self.latencies.append(latency)
        self._count(flight.case, outcome or "anomaly")

    def _stale(self, data: bytes, slot: int) -> bool:
        """A late answer to an earlier case that had this identifier (one that does not
        check against the case in flight, asked only then)."""
        for older in self.previous.get(slot, []):
            if self.checker.check(data, older).problem is None:
                return True
        return False

    def _slow(self, latency: float) -> float | None:
        """The baseline (median) that makes `latency` slow, or None: slow is over
        max(slow_after, 20 x median); nothing under slow_after is, so the median is only
        computed for an answer later than that."""
        if latency <= self.options.slow_after:
            return None
        if len(self.latencies) >= 20:
            baseline = statistics.median(self.latencies)
        elif self.options.slow_baseline is not None:
            baseline = self.options.slow_baseline
        else:
            return None
        return baseline if latency > max(self.options.slow_after, 20 * baseline) else None

    def _judge(self, case: Case, data: bytes, reply: Reply | None = None) -> str | None:
        """The outcome of a reply, or None after recording an anomaly."""
        if case.target == "mh":
            return self._judge_mh(case, data)
        secret = self.options.secret
        if reply is None:
            reply = check_reply(data, case.authenticator, secret, self.setup.dictionary)
        if reply.problem is not None:
            self._anomaly("malformed-reply", case, reply.problem)
            return None
        outcome = CODE_NAMES.get(reply.code, f"code{reply.code}")
        if reply.code != ACCESS_ACCEPT:
            return outcome
        if case.expect == "reject":
            self._anomaly(
                "wrong-accept",
                case,
                f"Access-Accept for a case that must be refused ({case.reason})",
            )
            return None
        try:
            key = handover_key(reply, secret, case.authenticator)
        except DecodeError as exc:
            self._anomaly("malformed-reply", case, f"HKP-Handover-Key does not decrypt: {exc}")
            return None
        hmk = mh_level.valid_hmk(self.setup.hmk)
        if hmk is not None:
            problem = _key_problem(case, key, hks_nonce(reply), hmk)
            if problem:
                self._anomaly("wrong-key", case, problem)
                return None
        return outcome

    def _judge_mh(self, case: Case, data: bytes) -> str | None:
        status, problem = mh_level.answer_status(data)
        if status is None:
            self._anomaly("malformed-reply", case, str(problem))
            return None
        if status == 0 and case.expect == "reject":
            self._anomaly(
                "wrong-accept",
                case,
                f"HKResp Success for a case that must be refused ({case.reason})",
            )
            return None
        return "success" if status == 0 else f"status{status}"

    def _count(self, case: Case, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        out = self.options.out
        for name in mutator_names(case) if case.chain else _TEMPLATE:
            per = self.mutators.get(name)
            if per is None:
                per = self.mutators[name] = {}
            per[outcome] = per.get(outcome, 0) + 1
            if out is not None and (name, outcome) not in self.seen:
                self.seen.add((name, outcome))
                corpus = out / "corpus"
                corpus.mkdir(parents=True, exist_ok=True)
                save_case(
                    corpus / f"{name}-{outcome}-{case.index}.json", case, {"outcome": outcome}
                )

    def _anomaly(self, oracle: str, case: Case, detail: str, **extra: Any) -> None:
        anomaly = Anomaly(oracle, case, detail, extra=extra)
        if self.options.out is not None:
            anomaly.file = str(self.write_anomaly(anomaly))
        self.anomalies.append(anomaly)

    def write_anomaly(self, anomaly: Anomaly) -> Path:
        assert self.options.out is not None
        where = self.options.out / "anomalies"
        where.mkdir(parents=True, exist_ok=True)
        stem = where / f"{anomaly.oracle}-s{anomaly.case.seed}-i{anomaly.case.index}"
        extra = {
            "oracle": anomaly.oracle,
            "detail": anomaly.detail,
            "server": f"{self.options.host}:{self.options.port}",
            "nai": self.setup.nai.decode("utf-8", "replace"),
            "ar_id": self.setup.ar_id.hex(),
            **anomaly.extra,
        }
        save_case(stem.with_suffix(".json"), anomaly.case, extra)
        wire, _ = self._wire(anomaly.case, 0)
        stem.with_suffix(".bin").write_bytes(wire)
        if anomaly.case.target == "radius":
            text = radclient_text(anomaly.case.attributes, self.setup.dictionary)
            stem.with_suffix(".radclient").write_text(text)
        return stem.with_suffix(".json")

    def _progress(self) -> None:
        if not self.options.progress:
            return
        now = time.monotonic()
        if now - getattr(self, "_shown", 0.0) < 1.0:
            return
        self._shown = now
        rate = self.sent / max(now - self.started, 1e-9)
        classes: dict[str, int] = {}
        for a in self.anomalies:
            classes[a.oracle] = classes.get(a.oracle, 0) + 1
        print(
            f"\rcases {self.sent}  {rate:,.0f}/s  anomalies {classes or 0}   ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def report(self, digest: str | None) -> dict[str, Any]:
        counts = {oracle: 0 for oracle in ORACLES}
        for anomaly in self.anomalies:
            counts[anomaly.oracle] += 1
        return {
            "tool": "hkp-fuzz",
            "target": self.setup.target,
            "server": f"{self.options.host}:{self.options.port}",
            "seed": self.setup.seed,
            "cases": self.sent,
            "elapsed_s": round(getattr(self, "elapsed", 0.0), 3),
            "rate": round(self.sent / max(getattr(self, "elapsed", 0.0), 1e-9), 1),
            "cases_digest": digest,
            "stopped": self.stopped,
            "outcomes": dict(sorted(self.outcomes.items())),
            "mutators": {k: dict(sorted(v.items())) for k, v in sorted(self.mutators.items())},
            "late_answers": self.late,
            "anomaly_counts": counts,
            "anomalies": [a.to_json() for a in self.anomalies],
            "slow_not_reproduced": self.slow_not_reproduced,
        }


def _key_problem(case: Case, key: bytes | None, nonce: bytes | None, hmk: bytes) -> str | None:
    """The wrong-key oracle: the HK must be gprf+ over this case's nonces, NAI, AR-ID."""
    if key is None or nonce is None:
        return "Access-Accept without HKP-Handover-Key or HKP-HKS-Nonce"
    attrs = as_received(case.attributes) or []  # as the server read them
    names = [v for t, v in attrs if t == USER_NAME and v]
    ars = [v for v in hkp_vsas(attrs, VT_AR_ADDRESS) if len(v) == 16]
    ref = case.reference  # the one the case's expectation was judged by, if it was
    if ref is None:
        joined = b"".join(hkp_vsas(attrs, VT_MOBILITY_HEADER))
        ref = mh_level.reference(joined, hmk, names[0])
    if not ref.valid or ref.mn_nonce is None or ref.prf is None or ref.nai is None:
        return f"an HK for a request the fuzzer cannot derive one for ({ref.reason})"
    try:
        expected = crypto.derive_hk(hmk, ref.prf, ref.mn_nonce, nonce, ref.nai, ars[0], len(key))
    except HKPError as exc:
        return f"an HK that cannot be derived: {exc}"
    if expected != key:
        return "the decrypted HK differs from the HK derived from the HMK"
    return None
