"""A plain-socket driver for hkp_radius.mn.MobileNode: one selector, many (node,
transport) pairs, the wall clock as `now`, the role's timers armed as select timeouts."""

from __future__ import annotations

import secrets
import selectors
import time
from collections.abc import Callable

from hkp_radius.mn.role import Event, MobileNode

from .transport import Transport

Clock = Callable[[], float]
EventSink = Callable[[MobileNode, Event], None]


def system_random(count: int) -> bytes:
    """The random source handed to the role: the OS CSPRNG (P2: nonces from one)."""
    return secrets.token_bytes(count)


class Driver:
    def __init__(self, on_event: EventSink, clock: Clock = time.time) -> None:
        self._selector = selectors.DefaultSelector()
        self._pairs: list[tuple[MobileNode, Transport]] = []
        self._on_event = on_event
        self.clock = clock

    def add(self, node: MobileNode, transport: Transport) -> None:
        self._pairs.append((node, transport))
        self._selector.register(transport.fileno(), selectors.EVENT_READ, (node, transport))

    def flush(self, node: MobileNode, transport: Transport) -> None:
        """Send what the role wants sent and hand its events on, until neither is left:
        an event handler may start a new exchange, whose HKReq must go out now, not
        when the next timer happens to fire."""
        while True:
            datagrams, events = node.datagrams_to_send(), node.events()
            if not datagrams and not events:
                return
            for datagram in datagrams:
                transport.send(datagram.ar_id, datagram.data)
            for event in events:
                self._on_event(node, event)

    def flush_all(self) -> None:
        for node, transport in self._pairs:
            self.flush(node, transport)

    def run(self, done: Callable[[], bool], deadline: float | None = None) -> bool:
        """Serve sockets and timers until `done()` or the wall clock passes `deadline`.
        Returns done()."""
        self.flush_all()
        while not done():
            now = self.clock()
            if deadline is not None and now >= deadline:
                return False
            timers = [t for node, _ in self._pairs if (t := node.next_timer()) is not None]
            wake = min(timers, default=now + 1.0)
            if deadline is not None:
                wake = min(wake, deadline)
            for key, _ in self._selector.select(max(0.0, wake - now)):
                node, transport = key.data
                for data, ar_id in transport.receive():
                    node.receive_datagram(data, ar_id, self.clock())
                self.flush(node, transport)
            now = self.clock()
            for node, transport in self._pairs:
                timer = node.next_timer()
                if timer is not None and timer <= now:
                    node.on_timer(now)
                    self.flush(node, transport)
        return True

    def close(self, close_transports: bool = True) -> None:
        for _, transport in self._pairs:
            self._selector.unregister(transport.fileno())
            if close_transports:
                transport.close()
        self._pairs.clear()
        self._selector.close()
