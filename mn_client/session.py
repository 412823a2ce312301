"""Running MN exchanges over real sockets: one at a time (CLI, lab) or many (load)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hkp_radius.errors import LocalProtocolError
from hkp_radius.mn import (
    COA_RETRY_JITTER,
    Event,
    GaveUp,
    KeyEstablished,
    Kind,
    MNConfig,
    MobileNode,
    Output,
    RequestSent,
    exchange_started,
)

from .driver import Driver, system_random
from .transport import Transport

DEADLINE_SLACK = 5.0  # seconds beyond the timers, for the AR and the HKS to answer


def exchange_deadline(config: MNConfig) -> float:
    """Longest an exchange can take with `config`'s timers (P10): every transmission
    times out (twice when an unanswered verify falls back to a full request, §6.2.3),
    plus the CoA_AUTH_FAILED waits (< HK_RETRY_INTERVAL x (1 + COA_RETRY_JITTER) each),
    plus slack. With the P10 defaults: 35.5 s."""
    transmissions = 1 + max(0, config.max_retransmissions)
    return (
        2 * transmissions * config.request_timeout
        + max(0, config.max_retransmissions) * config.retry_interval * (1 + COA_RETRY_JITTER)
        + DEADLINE_SLACK
    )


Start = Callable[[float, float], list[Output]]


def starter(node: MobileNode, kind: Kind, ar_id: bytes, care_of_address: bytes) -> Start:
    """The `start(now, wall)` of run_exchange for one kind of exchange (the CLI's and the
    lab's). `care_of_address`: the MN's own address for a direct request (the default of
    hkp-mn and the lab); a refresh always sends NULL (§6.5)."""
    if kind is Kind.VERIFY:
        return lambda now, wall: node.verify_key(ar_id, care_of_address, now, wall)
    if kind is Kind.REFRESH:
        return lambda now, wall: node.refresh_key(ar_id, now, wall)
    return lambda now, wall: node.request_key(ar_id, care_of_address, now, wall)


@dataclass
class ExchangeResult:
    events: list[Event] = field(default_factory=list)

    @property
    def final(self) -> KeyEstablished | GaveUp | None:
        for event in reversed(self.events):
            if isinstance(event, (KeyEstablished, GaveUp)):
                return event
        return None

    @property
    def ok(self) -> bool:
        return isinstance(self.final, KeyEstablished)


def run_exchange(
    node: MobileNode,
    transport: Transport,
    start: Start,
    on_event: Callable[[Event], None] | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ExchangeResult:
    """Start one exchange with `start(now, wall)` and drive it to its end, or for `deadline`
    seconds (default: exchange_deadline of the node's config); then `final` is None.
    `clock` is the monotonic time the role's timers run on (a SkippingClock skips them)."""
    if deadline is None:
        deadline = exchange_deadline(node.config)
    result = ExchangeResult()

    def sink(_: MobileNode, event: Event) -> None:
        result.events.append(event)
        if on_event is not None:
            on_event(event)

    driver = Driver(sink, clock)
    driver.add(node, transport)
    try:
        outputs = start(driver.clock(), driver.wall())
        number = exchange_started(outputs)
        driver.dispatch(node, outputs)
        driver.run(lambda: node.finished(number), driver.clock() + deadline)
    finally:
        driver.close(close_transports=False)
    return result


@dataclass
class LoadFigures:
    total: int
    succeeded: int
    failed: int
    wall: float
    latencies: list[float]
    transmissions: int

    def lines(self) -> list[str]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0.0

        rate = self.succeeded / self.wall if self.wall > 0 else 0.0
        return [
            f"exchanges: {self.total} ({self.succeeded} ok, {self.failed} failed)",
            f"wall time: {self.wall:.3f} s, throughput: {rate:.1f} keys/s",
            f"latency ms: p50 {pct(0.5):.2f}, p90 {pct(0.9):.2f}, p99 {pct(0.99):.2f}, "
            f"max {pct(1.0):.2f}, mean "
            f"{(statistics.fmean(lat) * 1000) if lat else 0.0:.2f}",
            f"HKReq transmissions: {self.transmissions} "
            f"({self.transmissions - self.total} beyond one per exchange)",
        ]


def run_load(
    configs: Sequence[MNConfig],
    make_transport: Callable[[], Transport],
    ar_id: bytes,
    total: int,
    concurrency: int,
    care_of_addresses: Sequence[bytes],
    clock: Callable[[], float] = time.monotonic,
) -> LoadFigures:
    """`total` full requests, at most `concurrency` in flight, spread over the
    identities (one MobileNode and one socket each; Message IDs stay unique per node).
    Identity i asks for keys bound to `care_of_addresses[i]`: each MN its own CoA, since
    an AR refuses a CoA bound to another MN (§7.4)."""
    if len(care_of_addresses) != len(configs):
        raise ValueError("one Key CoA per identity")
    nodes = [MobileNode(config, system_random) for config in configs]
    coas = {id(node): coa for node, coa in zip(nodes, care_of_addresses, strict=True)}
    per_node_limit = 255  # Message IDs per (node, AR) in flight (one octet, §5.1.1)
    concurrency = max(1, min(concurrency, total, per_node_limit * len(nodes)))
    started = 0
    finished = 0
    succeeded = 0
    transmissions = 0
    latencies: list[float] = []

    def launch(node: MobileNode) -> None:
        nonlocal started, finished
        started += 1
        try:
            outputs = node.request_key(ar_id, coas[id(node)], clock(), time.time())
            driver.dispatch(node, outputs)
        except LocalProtocolError:  # e.g. this AR prohibited the identity (§6.2.2.1)
            finished += 1

    def sink(node: MobileNode, event: Event) -> None:
        nonlocal finished, succeeded, transmissions
        if isinstance(event, RequestSent):
            transmissions += 1
        elif isinstance(event, (KeyEstablished, GaveUp)):
            finished += 1
            if isinstance(event, KeyEstablished):
                succeeded += 1
                latencies.append(event.elapsed)
            if started < total:
                launch(node)

    longest = max(exchange_deadline(config) for config in configs)
    driver = Driver(sink, clock)
    try:
        for node in nodes:  # inside `try`: a failing make_transport closes the earlier ones
            driver.add(node, make_transport())
        begin = clock()
        for i in range(concurrency):
            launch(nodes[i % len(nodes)])
        driver.run(lambda: finished >= total, begin + longest + total)
    finally:
        driver.close()
    return LoadFigures(
        total, succeeded, total - succeeded, clock() - begin, latencies, transmissions
    )
