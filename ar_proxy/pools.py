"""Home server pools (docs/ar.md "Pools"): which HKS gets a request, which are dead,
when a dead one is probed and when it is alive again. Sans-I/O: every method takes
`now` (monotonic seconds) and returns what to do or log; radius_client.py sends the
packets and arms the one timer (`next_timer`).

Shaped like FreeRADIUS's home_server_pool (a [realm] is a pool and its realm):

- `fail-over`: the servers in their configured order;
- `load-balance`: the live server with the fewest requests outstanding first (ties in
  turn), the other live servers after it;
- `keyed-balance`: keyed on the NAI, so one MN's requests go to one server while it is
  alive: rendezvous hashing (the live server with the highest SHA-256 of its name and
  the NAI), which moves only the NAIs of a server that dies, and moves them back when it
  returns.

A server that leaves a request unanswered through all its retransmissions is marked
dead. With `status_check = status-server` a dead server gets no requests while another
server of the pool is alive: it is sent a Status-Server every `check_interval`, and is
alive again after `num_answers_to_alive` answers in a row. Without status checks
(`status_check = none`, FreeRADIUS's default) it is tried after the live ones until
`revive_interval` has passed. When every server of a pool is dead, requests still go to
all of them, in pool order: a server that came back answers at once.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .config import HomeServer

COUNTERS = (
    "requests",  # requests handed to this server (each counts once, with retransmissions)
    "answered",
    "unanswered",  # every transmission of a request left unanswered
    "marked_dead",
    "probes",  # Status-Server probes sent
    "probe_answers",
    "revived",
)


@dataclass(frozen=True)
class StateChange:
    """A server marked dead or alive again, with its counters: one log line."""

    server: str
    state: str  # "dead" | "alive"
    why: str
    counters: dict[str, int]
    summary: str

    @property
    def text(self) -> str:
        verb = "marked dead" if self.state == "dead" else "alive again"
        return f"home server {self.server} {verb} ({self.why}); {self.summary}"


class PoolType(enum.Enum):
    FAIL_OVER = "fail-over"
    LOAD_BALANCE = "load-balance"
    KEYED_BALANCE = "keyed-balance"


@dataclass
class ServerHealth:
    """One home server's state, shared by every pool that names it."""

    server: HomeServer
    dead_since: float | None = None
    dead_until: float = 0.0  # status_check none: tried after the live ones until then
    next_probe: float = 0.0
    probing: bool = False  # a Status-Server is in flight
    answers_in_a_row: int = 0
    outstanding: int = 0
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    @property
    def probed(self) -> bool:
        return self.server.status_check == "status-server"

    def alive(self, now: float) -> bool:
        if self.dead_since is None:
            return True
        return not self.probed and now >= self.dead_until

    def summary(self) -> str:
        state = "alive" if self.dead_since is None else "dead"
        counts = " ".join(f"{name}={self.counters[name]}" for name in COUNTERS)
        return f"home server {self.server.name}: {state} {counts}"


def _weight(server: HomeServer, key: bytes) -> bytes:
    return hashlib.sha256(server.name.encode("utf-8") + b"\0" + key).digest()


class Pools:
    """The health of every home server and the choice of servers for a request."""

    def __init__(self, servers: Iterable[HomeServer]) -> None:
        self.health: dict[str, ServerHealth] = {}
        for server in servers:
            self.health.setdefault(server.name, ServerHealth(server))
        self._turn: dict[str, int] = {}  # load-balance tie-breaking, per pool

    def _get(self, server: HomeServer) -> ServerHealth:
        health = self.health.get(server.name)
        if health is None:
            health = self.health[server.name] = ServerHealth(server)
        return health

    # ---- choosing -----------------------------------------------------------------------

    def order(
        self, pool: str, kind: PoolType, servers: Sequence[HomeServer], key: bytes, now: float
    ) -> list[HomeServer]:
        """The servers to try for one request, in order (the first gets it)."""
        live = [s for s in servers if self._get(s).alive(now)]
        if kind is PoolType.LOAD_BALANCE and live:
            turn = self._turn.get(pool, 0)
            self._turn[pool] = turn + 1
            rotated = live[turn % len(live) :] + live[: turn % len(live)]
            live = sorted(rotated, key=lambda s: self._get(s).outstanding)  # stable
        elif kind is PoolType.KEYED_BALANCE and live:
            live = sorted(live, key=lambda s: _weight(s, key), reverse=True)
        dead = [s for s in servers if s not in live]
        if live:
            # Probed dead servers get nothing until they answer their probes.
            dead = [s for s in dead if not self._get(s).probed]
        dead.sort(key=lambda s: self._get(s).dead_until)
        return live + dead

    def may_use(self, server: HomeServer, servers: Sequence[HomeServer], now: float) -> bool:
        """Whether a request whose order was made earlier may still go to `server`: not
        if it has been marked dead meanwhile, is probed, and another server lives."""
        health = self._get(server)
        if health.alive(now) or not health.probed:
            return True
        return not any(self._get(s).alive(now) for s in servers if s is not server)

    # ---- what happened to a request -----------------------------------------------------

    def started(self, server: HomeServer) -> None:
        health = self._get(server)
        health.outstanding += 1
        health.counters["requests"] += 1

    def answered(self, server: HomeServer, now: float) -> list[StateChange]:
        health = self._get(server)
        health.outstanding -= 1
        health.counters["answered"] += 1
        if health.dead_since is not None and not health.probed:
            return self._revive(health, "it answered a request")
        return []

    def unanswered(self, server: HomeServer, now: float) -> list[StateChange]:
        """Every transmission of a request went unanswered: the server is dead."""
        health = self._get(server)
        health.outstanding -= 1
        health.counters["unanswered"] += 1
        health.answers_in_a_row = 0
        health.dead_until = now + server.revive_interval
        if health.dead_since is not None:
            return []
        health.dead_since = now
        health.counters["marked_dead"] += 1
        health.next_probe = now + server.check_interval
        then = (
            f"probed with Status-Server every {server.check_interval:g} s, no requests "
            f"until {server.num_answers_to_alive} answer(s)"
            if health.probed
            else f"tried after the live servers for {server.revive_interval:g} s"
        )
        return [self._change(health, "dead", then)]

    def abandoned(self, server: HomeServer) -> None:
        """The request ended otherwise (cancelled, unreachable socket)."""
        self._get(server).outstanding -= 1

    # ---- Status-Server probes ----------------------------------------------------------

    def probes_due(self, now: float) -> list[HomeServer]:
        due = []
        for health in self.health.values():
            if (
                health.probed
                and health.dead_since is not None
                and not health.probing
                and now >= health.next_probe
            ):
                health.probing = True
                health.counters["probes"] += 1
                due.append(health.server)
        return due

    def probe_result(self, server: HomeServer, answered: bool, now: float) -> list[StateChange]:
        health = self._get(server)
        health.probing = False
        health.next_probe = now + server.check_interval
        if not answered:
            health.answers_in_a_row = 0
            return []
        health.counters["probe_answers"] += 1
        health.answers_in_a_row += 1
        if health.dead_since is not None and (
            health.answers_in_a_row >= server.num_answers_to_alive
        ):
            return self._revive(health, f"{health.answers_in_a_row} Status-Server answer(s)")
        return []

    def next_timer(self) -> float | None:
        times = [
            h.next_probe
            for h in self.health.values()
            if h.probed and h.dead_since is not None and not h.probing
        ]
        return min(times) if times else None

    def _revive(self, health: ServerHealth, why: str) -> list[StateChange]:
        health.dead_since = None
        health.answers_in_a_row = 0
        health.counters["revived"] += 1
        return [self._change(health, "alive", why)]

    @staticmethod
    def _change(health: ServerHealth, state: str, why: str) -> StateChange:
        return StateChange(health.server.name, state, why, dict(health.counters), health.summary())

    def summaries(self) -> list[str]:
        return [health.summary() for health in self.health.values()]
