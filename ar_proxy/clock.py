"""The time source of hkp-ar's RADIUS client: the monotonic clock in production, a
manual one in tests (tests/ar_clock.py), so that retransmission and fail-over timing is
shown by moving time rather than by waiting for it (issue 8)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def wait(self, future: asyncio.Future[T], timeout: float) -> T:
        """The future's result, or TimeoutError once `timeout` seconds have passed on
        this clock; the future itself is left running (it may still be answered)."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def wait(self, future: asyncio.Future[T], timeout: float) -> T:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
