"""A plain-socket driver for hkp_radius.mn.MobileNode: one selector, many (node,
transport) pairs, the monotonic clock for timers and the wall clock for timestamps, the
role's timers armed as select timeouts.

Timers are kept in a heap (one entry per node, re-armed after every call into it), so a
wake-up costs O(log nodes), not a scan of every node: the load generator drives
hundreds of identities (mn_client.load)."""

from __future__ import annotations

import heapq
import secrets
import selectors
import time
from collections.abc import Callable
from typing import Protocol

from hkp_radius.mn import Datagram, Event, MobileNode, Output

from .transport import Transport

Clock = Callable[[], float]
EventSink = Callable[[MobileNode, Event], None]
IDLE_WAKE = 1.0  # seconds: select's timeout when no timer is armed (done() is re-read)


def system_random(count: int) -> bytes:
    """The random source handed to the role: the OS CSPRNG (P2: nonces from one)."""
    return secrets.token_bytes(count)


class TimerSource(Protocol):
    """Something beside the nodes with a timer of its own (the load generator's wait for
    a free Message ID): `on_timer(now)` does what is due."""

    def next_timer(self) -> float | None: ...

    def on_timer(self, now: float) -> None: ...


class Driver:
    def __init__(
        self, on_event: EventSink, clock: Clock = time.monotonic, wall: Clock = time.time
    ) -> None:
        self._selector = selectors.DefaultSelector()
        self._pairs: list[tuple[MobileNode, Transport]] = []
        self._transports: dict[int, Transport] = {}
        self._heap: list[tuple[float, int, int, MobileNode]] = []
        self._pushes = 0  # tie-breaker: equal times never compare nodes
        self._armed: dict[int, float] = {}  # id(node) -> its earliest entry in _heap
        self._on_event = on_event
        self.clock = clock
        self.wall = wall

    def add(self, node: MobileNode, transport: Transport) -> None:
        self._pairs.append((node, transport))
        self._transports[id(node)] = transport
        self._selector.register(transport.fileno(), selectors.EVENT_READ, (node, transport))
        self._arm(node)

    def dispatch(self, node: MobileNode, outputs: list[Output]) -> None:
        """Carry out what the role returned, in order: datagrams go out on the node's
        transport, events go to the sink (which may start an exchange and dispatch its
        outputs in turn: its HKReq goes out now, not when the next timer fires). Every
        call into a node ends here, so this is where its timer is re-armed."""
        transport = self._transports[id(node)]
        for output in outputs:
            if isinstance(output, Datagram):
                transport.send(output.ar_id, output.data)
            else:
                self._on_event(node, output)
        self._arm(node)

    def _arm(self, node: MobileNode) -> None:
        timer = node.next_timer()
        armed = self._armed.get(id(node))
        if timer is not None and (armed is None or timer < armed):
            self._armed[id(node)] = timer
            self._pushes += 1
            heapq.heappush(self._heap, (timer, self._pushes, id(node), node))

    def _fire_due(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            at, _, key, node = heapq.heappop(self._heap)
            if self._armed.get(key) != at:
                continue  # superseded by a sooner entry, already served
            del self._armed[key]
            timer = node.next_timer()
            if timer is not None and timer <= now:
                self.dispatch(node, node.on_timer(now, self.wall()))
            else:
                self._arm(node)  # the node's timer moved later (or went away)

    def run(
        self,
        done: Callable[[], bool],
        deadline: float | None = None,
        extra: TimerSource | None = None,
    ) -> bool:
        """Serve sockets and timers (the nodes' and `extra`'s) until `done()` or the
        monotonic clock passes `deadline`. Returns done()."""
        while not done():
            now = self.clock()
            if deadline is not None and now >= deadline:
                return False
            wake = self._heap[0][0] if self._heap else now + IDLE_WAKE
            if extra is not None and (own := extra.next_timer()) is not None:
                wake = min(wake, own)
            if deadline is not None:
                wake = min(wake, deadline)
            for key, _ in self._selector.select(max(0.0, wake - now)):
                node, transport = key.data
                for data, ar_id in transport.receive():
                    self.dispatch(
                        node, node.receive_datagram(data, ar_id, self.clock(), self.wall())
                    )
            now = self.clock()
            self._fire_due(now)
            if extra is not None and (own := extra.next_timer()) is not None and own <= now:
                extra.on_timer(now)
        return True

    def close(self, close_transports: bool = True) -> None:
        for _, transport in self._pairs:
            self._selector.unregister(transport.fileno())
            if close_transports:
                transport.close()
        self._pairs.clear()
        self._transports.clear()
        self._heap.clear()
        self._armed.clear()
        self._selector.close()
