"""A manual clock for hkp-ar's RADIUS client (ar_proxy.clock.Clock): time moves only
when a test calls advance(), so retransmission and fail-over timing is asserted exactly
and no test waits for a response window to pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from ar_proxy.clock import Timer

T = TypeVar("T")


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._timers: list[Timer] = []
        self.waits_started = 0  # waits and timers: each a window that started running
        self._changed = asyncio.Event()

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(when, callback)
        self._timers.append(timer)
        self.waits_started += 1
        self._changed.set()
        return timer

    async def wait(self, future: asyncio.Future[T], timeout: float) -> T:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self._now + timeout, wake)
        self._sleepers.append(entry)
        self.waits_started += 1
        self._changed.set()
        try:
            await asyncio.wait({future, wake}, return_when=asyncio.FIRST_COMPLETED)
            if future.done():
                return future.result()
            raise TimeoutError
        finally:
            self._sleepers.remove(entry)
            if not wake.done():
                wake.cancel()

    def advance(self, seconds: float) -> None:
        """Move time on: every timer now due fires, in the order of its time (those a
        callback arms that are due too, as well), and every wait now over ends."""
        self._now += seconds
        while True:
            self._timers = [timer for timer in self._timers if not timer.cancelled]
            due = [timer for timer in self._timers if timer.when <= self._now + 1e-9]
            if not due:
                break
            min(due, key=lambda timer: timer.when).fire()
        for deadline, wake in self._sleepers:
            if deadline <= self._now + 1e-9 and not wake.done():
                wake.set_result(None)

    async def until_waits(self, count: int) -> None:
        """Return once `count` waits or timers have started in all (a request sent and
        its response window running): the point at which advancing time means something."""
        while self.waits_started < count:
            self._changed.clear()
            await self._changed.wait()
