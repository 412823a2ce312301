"""The load generator (`hkp-mn load`, benchmarks/mn_load.py): `total` full requests over
many identities, `concurrency` in flight, figures for every outcome.

`LoadRun` decides, sans I/O (`now` comes in): which identity starts the next exchange,
when, and what the run counts. `run_load` drives it over real sockets (mn_client.driver).
The decisions (docs/mn.md, "Load generator"):

- A slot that frees goes to the identity idle longest (first in, first out), never
  straight back to the one that just finished: use spreads evenly, so every identity
  spends its 256 Message IDs as slowly as the rate allows.
- At most `per_identity` exchanges of one identity in flight (default 1): two could reach
  the HKS in the other order, and accepting the later timestamp makes the earlier one
  stale (INVALID_TIMESTAMP, §5.2.3). More in flight than identities x per_identity is
  refused up front, with what to change.
- An identity with no Message ID free (256 sent to this AR within MESSAGE_ID_REUSE_GUARD)
  waits until the role says one is free; its slot goes to another identity meanwhile and
  is never lost. One that cannot start at all (the AR prohibited it, §6.2.2.1) leaves
  the pool; with none left the rest count as not started.
- Every exchange ends by the role's own timers (exchange_deadline); a run where nothing
  starts or ends for `stall_timeout` (longer than any exchange) stops and reports what
  was in flight as stalled, so a run never hangs.
"""

from __future__ import annotations

import heapq
import math
import re
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hkp_radius.errors import LocalProtocolError
from hkp_radius.mn import (
    Discarded,
    ErrorReceived,
    Event,
    GaveUp,
    KeyEstablished,
    MNConfig,
    MobileNode,
    Output,
    RequestSent,
    exchange_started,
)

from .describe import status_name
from .driver import Clock, Driver, system_random
from .session import exchange_deadline
from .transport import Transport

PROGRESS_INTERVAL = 5.0  # seconds between progress reports of a long run
Started = list[tuple[MobileNode, list[Output]]]
ProgressSink = Callable[[dict[str, Any]], None]


@dataclass
class LoadResult:
    """Every figure of a run; `as_json()` is what `hkp-mn load --json` prints."""

    requested: int
    concurrency: int
    identities: int
    per_identity: int
    started: int = 0
    succeeded: int = 0
    not_started: int = 0
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    transmissions: int = 0  # HKReq datagrams sent
    retransmissions: int = 0  # copies of an HKReq already sent (§6.2.1 timer)
    corrections: int = 0  # new HKReqs of an exchange after an error answer (§6.2.2)
    failures: Counter[str] = field(default_factory=Counter)  # cause -> exchanges
    errors_received: Counter[str] = field(default_factory=Counter)  # status -> HKResps
    discarded: Counter[str] = field(default_factory=Counter)  # reason -> HKResps
    message_id_waits: int = 0  # an identity waited for a Message ID to leave the guard
    max_in_flight_per_identity: int = 0
    generator_cpu: float = 0.0  # seconds of this process

    @property
    def failed(self) -> int:
        """Exchanges asked for that gave no key: gave up, stalled or never started."""
        return self.requested - self.succeeded

    @property
    def keys_per_s(self) -> float:
        return self.succeeded / self.wall if self.wall > 0 else 0.0

    def latency_ms(self) -> dict[str, float]:
        ordered = sorted(self.latencies)

        def rank(p: float) -> float:  # nearest rank
            if not ordered:
                return 0.0
            return ordered[max(0, min(len(ordered), math.ceil(p * len(ordered))) - 1)] * 1e3

        return {
            "p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "p999": rank(0.999),
            "max": rank(1.0), "mean": statistics.fmean(ordered) * 1e3 if ordered else 0.0,
        }  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        exchanges = max(1, self.started)
        return {
            "requested": self.requested,
            "concurrency": self.concurrency,
            "identities": self.identities,
            "per_identity": self.per_identity,
            "started": self.started,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "not_started": self.not_started,
            "wall_s": round(self.wall, 6),
            "keys_per_s": round(self.keys_per_s, 1),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms().items()},
            "hkreqs_sent": self.transmissions,
            "retransmissions": self.retransmissions,
            "corrections": self.corrections,
            "failures": dict(self.failures),
            "errors_received": dict(self.errors_received),
            "discarded": dict(self.discarded),
            "message_id_waits": self.message_id_waits,
            "max_in_flight_per_identity": self.max_in_flight_per_identity,
            "generator_cpu_us_per_exchange": round(self.generator_cpu / exchanges * 1e6, 1),
        }

    def lines(self) -> list[str]:
        lat = self.latency_ms()
        causes = ", ".join(f"{n} {cause}" for cause, n in self.failures.most_common())
        return [
            f"exchanges: {self.requested} ({self.succeeded} ok, {self.failed} failed"
            + (f": {causes}" if causes else "") + ")",
            f"wall time: {self.wall:.3f} s, throughput: {self.keys_per_s:.1f} keys/s",
            f"latency ms: p50 {lat['p50']:.2f}, p90 {lat['p90']:.2f}, p99 {lat['p99']:.2f}, "
            f"max {lat['max']:.2f}, mean {lat['mean']:.2f}",
            f"HKReqs sent: {self.transmissions} ({self.retransmissions} retransmissions, "
            f"{self.corrections} corrections)",
            "error answers: " + (", ".join(f"{n} {s}" for s, n in self.errors_received.items())
                                 or "none"),
            f"generator CPU: {self.generator_cpu / max(1, self.started) * 1e6:.0f} us per "
            f"exchange; Message-ID waits {self.message_id_waits}",
        ]  # fmt: skip


def _cause(event: GaveUp) -> str:
    return f"{status_name(event.last_status)}: {event.reason}"


class LoadRun:
    """The load generator's decisions, sans I/O. Call `start(now, wall)` to begin (and
    after each ended exchange), `on_event` with every event of the nodes, `on_timer` at
    `next_timer()`; `start` and `on_timer` return the (node, outputs) to dispatch."""

    def __init__(
        self,
        nodes: Sequence[MobileNode],
        ar_id: bytes,
        care_of_addresses: Sequence[bytes],
        total: int,
        concurrency: int,
        *,
        per_identity: int = 1,
        stall_timeout: float | None = None,
        progress: ProgressSink | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        if len(care_of_addresses) != len(nodes):
            raise ValueError("one Key CoA per identity")
        if not nodes or total < 1 or concurrency < 1 or not 1 <= per_identity <= 128:
            raise ValueError("give identities, total >= 1, concurrency >= 1, per_identity 1-128")
        if concurrency > len(nodes) * per_identity:
            need = math.ceil(concurrency / per_identity)
            raise ValueError(
                f"{concurrency} in flight at {per_identity} per identity needs {need} "
                f"identities; there are {len(nodes)}: use fewer in flight, more identities, "
                "or allow more per identity (their timestamps may then reach the HKS out "
                "of order: INVALID_TIMESTAMP)"
            )
        self.ar_id = ar_id
        self._coas = {id(n): coa for n, coa in zip(nodes, care_of_addresses, strict=True)}
        self.result = LoadResult(total, min(concurrency, total), len(nodes), per_identity)
        # One entry per free seat (an identity may hold per_identity), oldest first.
        self._idle: deque[MobileNode] = deque(n for _ in range(per_identity) for n in nodes)
        self._waiting: list[tuple[float, int, MobileNode]] = []  # seats awaiting an ID
        self._seq = 0
        self._active: set[tuple[int, int]] = set()  # (id(node), exchange number)
        self._sent: set[tuple[int, int]] = set()  # of those, the ones whose HKReq went out
        self._dropped: str | None = None  # why a seat left the pool
        self._per_node: Counter[int] = Counter()
        self._stall_timeout = stall_timeout or max(
            exchange_deadline(n.config) for n in nodes
        )  # fmt: skip
        self._progress = progress
        self._progress_interval = progress_interval
        self._begin: float | None = None
        self._last_change = 0.0
        self._next_progress = math.inf
        self._over = False

    @property
    def in_flight(self) -> int:
        return len(self._active)

    def done(self) -> bool:
        return self._over or (
            self.result.started + self.result.not_started >= self.result.requested
            and not self._active
        )

    def start(self, now: float, wall: float) -> Started:
        """Start exchanges while a slot and an identity are free."""
        r = self.result
        if self._begin is None:
            self._begin = self._last_change = now
            if self._progress is not None:
                self._next_progress = now + self._progress_interval
        while self._waiting and self._waiting[0][0] <= now:
            self._idle.append(heapq.heappop(self._waiting)[2])
        out: Started = []
        while self._idle and self.in_flight < r.concurrency and r.started < r.requested:
            node = self._idle.popleft()
            try:
                outputs = node.request_key(self.ar_id, self._coas[id(node)], now, wall)
            except LocalProtocolError as exc:
                free_at = node.message_id_free_at(self.ar_id, now)
                if free_at is not None and free_at > now:
                    r.message_id_waits += 1
                    self._seq += 1
                    heapq.heappush(self._waiting, (free_at, self._seq, node))
                else:  # this seat cannot start anything (e.g. prohibited, §6.2.2.1)
                    self._dropped = str(exc)
                continue
            self._active.add((id(node), exchange_started(outputs)))
            self._per_node[id(node)] += 1
            r.max_in_flight_per_identity = max(
                r.max_in_flight_per_identity, self._per_node[id(node)]
            )
            r.started += 1
            self._last_change = now
            out.append((node, outputs))
        if not self._idle and not self._waiting and not self._active:
            self._give_up_the_rest(self._dropped or "no identity left")
        return out

    def _give_up_the_rest(self, reason: str) -> None:
        r = self.result
        rest = r.requested - r.started - r.not_started
        if rest > 0:
            r.not_started += rest
            r.failures[f"not started: {reason}"] += rest

    def on_event(self, node: MobileNode, event: Event, now: float) -> bool:
        """Count `event`; True when it ended an exchange (call `start` again)."""
        r = self.result
        if isinstance(event, RequestSent):
            r.transmissions += 1
            key = (id(node), event.exchange)
            if event.attempt > 1:
                r.retransmissions += 1
            elif key in self._sent:  # a new HKReq of an exchange that sent one already
                r.corrections += 1
            self._sent.add(key)
            return False
        if isinstance(event, ErrorReceived):
            r.errors_received[status_name(event.status)] += 1
            return False
        if isinstance(event, Discarded):
            r.discarded[re.sub(r"\d+", "N", event.reason)] += 1
            return False
        if not isinstance(event, (KeyEstablished, GaveUp)):
            return False
        key = (id(node), event.exchange)
        if key not in self._active:
            return False
        self._active.remove(key)
        self._sent.discard(key)
        self._per_node[id(node)] -= 1
        self._idle.append(node)
        self._last_change = now
        r.wall = now - (self._begin or now)
        if isinstance(event, KeyEstablished):
            r.succeeded += 1
            r.latencies.append(event.elapsed)
        else:
            r.failures[_cause(event)] += 1
        return True

    def next_timer(self) -> float | None:
        if self.done():
            return None
        times = [self._last_change + self._stall_timeout, self._next_progress]
        if self._waiting and self.in_flight < self.result.concurrency:
            times.append(self._waiting[0][0])
        return min(times)

    def on_timer(self, now: float, wall: float) -> Started:
        if now >= self._next_progress and self._progress is not None:
            self._next_progress = now + self._progress_interval
            self._progress(self.snapshot(now))
        if now >= self._last_change + self._stall_timeout and not self.done():
            self._stall(now)
            return []
        return self.start(now, wall)

    def _stall(self, now: float) -> None:
        """Nothing started or ended for longer than any exchange takes: a bug somewhere
        (or a clock that jumped). Stop, and say so in the figures."""
        r = self.result
        if self._active:
            r.failures[f"stalled: no outcome within {self._stall_timeout:g} s"] += len(self._active)
        self._active.clear()
        self._give_up_the_rest("the run stalled")
        r.wall = now - (self._begin or now)
        self._over = True

    def snapshot(self, now: float) -> dict[str, Any]:
        r = self.result
        elapsed = now - (self._begin or now)
        ended = r.succeeded + sum(r.failures.values())
        return {
            "elapsed_s": round(elapsed, 3),
            "ended": ended,
            "requested": r.requested,
            "in_flight": self.in_flight,
            "keys_per_s": round(r.succeeded / elapsed, 1) if elapsed > 0 else 0.0,
            "failed": sum(r.failures.values()),
            "retransmissions": r.retransmissions,
        }


def progress_line(snapshot: dict[str, Any]) -> str:
    s = snapshot
    return (
        f"load: {s['ended']}/{s['requested']} ended after {s['elapsed_s']:.1f} s, "
        f"{s['keys_per_s']:,.0f} keys/s, {s['in_flight']} in flight, {s['failed']} failed, "
        f"{s['retransmissions']} retransmissions"
    )


class _Feeder:
    """The Driver's view of a LoadRun's timer: what it starts is dispatched at once."""

    def __init__(self, load: LoadRun, driver: Driver) -> None:
        self.load = load
        self.driver = driver

    def next_timer(self) -> float | None:
        return self.load.next_timer()

    def on_timer(self, now: float) -> None:
        for node, outputs in self.load.on_timer(now, self.driver.wall()):
            self.driver.dispatch(node, outputs)


def run_load(
    configs: Sequence[MNConfig],
    make_transport: Callable[[], Transport],
    ar_id: bytes,
    total: int,
    concurrency: int,
    care_of_addresses: Sequence[bytes],
    clock: Clock = time.monotonic,
    *,
    per_identity: int = 1,
    progress: ProgressSink | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
) -> LoadResult:
    """`total` full requests, `concurrency` in flight, over the identities of `configs`
    (one MobileNode and one socket each). Identity i asks for keys bound to
    `care_of_addresses[i]`: each MN its own CoA, since an AR refuses a CoA bound to
    another MN (§7.4). Raises ValueError when the identities cannot carry `concurrency`."""
    nodes = [MobileNode(config, system_random) for config in configs]
    load = LoadRun(
        nodes, ar_id, care_of_addresses, total, concurrency, per_identity=per_identity,
        progress=progress, progress_interval=progress_interval,
    )  # fmt: skip

    def sink(node: MobileNode, event: Event) -> None:
        if load.on_event(node, event, driver.clock()):
            for started, outputs in load.start(driver.clock(), driver.wall()):
                driver.dispatch(started, outputs)

    driver = Driver(sink, clock)
    cpu = time.process_time()
    try:
        for node in nodes:  # inside `try`: a failing make_transport closes the earlier ones
            driver.add(node, make_transport())
        for node, outputs in load.start(clock(), driver.wall()):
            driver.dispatch(node, outputs)
        driver.run(load.done, extra=_Feeder(load, driver))
    finally:
        driver.close()
    load.result.generator_cpu = time.process_time() - cpu
    return load.result
