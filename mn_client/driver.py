"""A plain-socket driver for hkp_radius.mn.MobileNode: one selector, many (node,
transport) pairs, the monotonic clock for timers and the wall clock for timestamps, the
role's timers armed as select timeouts."""

from __future__ import annotations

import secrets
import selectors
import time
from collections.abc import Callable

from hkp_radius.mn import Datagram, Event, MobileNode, Output

from .transport import Transport

Clock = Callable[[], float]
EventSink = Callable[[MobileNode, Event], None]


def system_random(count: int) -> bytes:
    """The random source handed to the role: the OS CSPRNG (P2: nonces from one)."""
    return secrets.token_bytes(count)


class Driver:
    def __init__(
        self, on_event: EventSink, clock: Clock = time.monotonic, wall: Clock = time.time
    ) -> None:
        self._selector = selectors.DefaultSelector()
        self._pairs: list[tuple[MobileNode, Transport]] = []
        self._transports: dict[int, Transport] = {}
        self._on_event = on_event
        self.clock = clock
        self.wall = wall

    def add(self, node: MobileNode, transport: Transport) -> None:
        self._pairs.append((node, transport))
        self._transports[id(node)] = transport
        self._selector.register(transport.fileno(), selectors.EVENT_READ, (node, transport))

    def dispatch(self, node: MobileNode, outputs: list[Output]) -> None:
        """Carry out what the role returned, in order: datagrams go out on the node's
        transport, events go to the sink (which may start an exchange and dispatch its
        outputs in turn: its HKReq goes out now, not when the next timer fires)."""
        transport = self._transports[id(node)]
        for output in outputs:
            if isinstance(output, Datagram):
                transport.send(output.ar_id, output.data)
            else:
                self._on_event(node, output)

    def run(self, done: Callable[[], bool], deadline: float | None = None) -> bool:
        """Serve sockets and timers until `done()` or the monotonic clock passes
        `deadline`. Returns done()."""
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
                    self.dispatch(
                        node, node.receive_datagram(data, ar_id, self.clock(), self.wall())
                    )
            now = self.clock()
            for node, _ in self._pairs:
                timer = node.next_timer()
                if timer is not None and timer <= now:
                    self.dispatch(node, node.on_timer(now, self.wall()))
        return True

    def close(self, close_transports: bool = True) -> None:
        for _, transport in self._pairs:
            self._selector.unregister(transport.fileno())
            if close_transports:
                transport.close()
        self._pairs.clear()
        self._transports.clear()
        self._selector.close()
