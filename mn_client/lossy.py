"""A lost datagram without waiting for it: a transport that drops the MN's first sends
(loss on the MN's own link) and a monotonic clock that can be skipped forward, so that
the MN's retransmission timer fires as soon as the loss is known (hkp-lab's lossy step,
the tests) instead of after HKEY_REQ_TOUT of real time. The skip is added to the
monotonic clock only: timestamps on the wire still come from the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from .transport import Transport


class SkippingClock:
    """time.monotonic() plus the total skipped; never goes backwards."""

    def __init__(self, base: Callable[[], float] = time.monotonic) -> None:
        self._base = base
        self.skipped = 0.0

    def __call__(self) -> float:
        return self._base() + self.skipped

    def skip_to(self, when: float | None) -> None:
        if when is not None:
            self.skipped += max(0.0, when - self())


class LossyTransport:
    """Wraps a transport: the first `drop` datagrams sent are discarded, and `on_drop()`
    runs after each (with the role's retransmission timer already armed)."""

    def __init__(self, inner: Transport, drop: int, on_drop: Callable[[], None]) -> None:
        self.inner = inner
        self.drop = drop
        self.dropped = 0
        self.sent = 0
        self._on_drop = on_drop

    def fileno(self) -> int:
        return self.inner.fileno()

    def send(self, ar_id: bytes, data: bytes) -> None:
        if self.dropped < self.drop:
            self.dropped += 1
            self._on_drop()
            return
        self.sent += 1
        self.inner.send(ar_id, data)

    def receive(self) -> list[tuple[bytes, bytes]]:
        return self.inner.receive()

    def local_address(self, ar_id: bytes) -> bytes:
        return self.inner.local_address(ar_id)

    def close(self) -> None:
        self.inner.close()
