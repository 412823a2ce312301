"""The time source of hkp-ar's RADIUS client: the monotonic clock in production, a
manual one in tests (tests/ar_clock.py), so that retransmission and fail-over timing is
shown by moving time rather than by waiting for it (issue 8).

Timers (issue 14): `call_at` runs a callback once the clock reaches a time. The RADIUS
client arms one per transmission (its response window) and cancels it when the reply
comes, so a request in flight costs no task, future or `wait_for`; the monotonic clock
keeps them in one heap under a single event-loop timer (cancelled entries are dropped
when they reach the top), the manual clock fires them when a test advances it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")
log = logging.getLogger("hkp-ar.radius")

# A timer fires when it is due within this much: the event loop's timers have about a
# millisecond of resolution (uvloop's are whole milliseconds), so one that wakes a little
# early is served then rather than by a burst of zero-delay re-arms.
TIMER_SLACK = 0.001


class Timer:
    """One armed callback; cancel() makes sure it never runs."""

    __slots__ = ("callback", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback: Callable[[], object] | None = callback

    def cancel(self) -> None:
        self.callback = None

    @property
    def cancelled(self) -> bool:
        return self.callback is None

    def fire(self) -> None:
        callback, self.callback = self.callback, None
        if callback is not None:
            try:
                callback()
            except Exception:  # one callback's bug must not stop the others
                log.exception("timer callback failed")


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Run `callback` once this clock reaches `when` (from the event loop)."""
        ...

    async def wait(self, future: asyncio.Future[T], timeout: float) -> T:
        """The future's result, or TimeoutError once `timeout` seconds have passed on
        this clock; the future itself is left running (it may still be answered)."""
        ...


class MonotonicClock:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()  # ties fire in the order they were armed
        self._armed: asyncio.TimerHandle | None = None
        self._armed_at = 0.0

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, future: asyncio.Future[T], timeout: float) -> T:
        return await asyncio.wait_for(asyncio.shield(future), timeout)

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        if self._armed is None or when < self._armed_at:
            self._arm(when)
        return timer

    def _arm(self, when: float) -> None:
        if self._armed is not None:
            self._armed.cancel()
        delay = max(0.0, when - time.monotonic())
        self._armed = asyncio.get_running_loop().call_later(delay, self._fire)
        self._armed_at = when

    def _fire(self) -> None:
        self._armed = None
        heap = self._heap
        due = time.monotonic() + TIMER_SLACK
        while heap and (heap[0][0] <= due or heap[0][2].callback is None):
            heapq.heappop(heap)[2].fire()
        if heap and self._armed is None:  # a callback may have armed an earlier one
            self._arm(heap[0][0])
