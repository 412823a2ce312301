"""Running one MN exchange over real sockets (CLI, lab); many at once: mn_client.load."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hkp_radius.mn import (
    COA_RETRY_JITTER,
    Event,
    GaveUp,
    KeyEstablished,
    Kind,
    MNConfig,
    MobileNode,
    Output,
    exchange_started,
)

from .driver import Driver
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
