"""hkp-ar's side of admission control and bounded logging (issue 15, docs/ar.md).

The decisions are the sans-I/O hkp_radius.ar.admission; this module feeds it the
sender of each datagram (cheaply: inet_pton, before any decoding), names each home
server group, and keeps the log bounded: one "admission-dropped" line and one
"exchanges-not-logged" line at most per summary interval, and at most
`[admission] exchange_lines` exchange lines without a key in between (every issued or
verified key keeps its line).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter

from hkp_radius.ar.admission import IPV4_MAPPED_PREFIX, Admission
from hkp_radius.ar.events import Outcome

from .config import DaemonConfig
from .logs import emit, log

# Outcomes that keep a log line each (a key was issued or verified: an operator wants
# every one); the others, which junk can cause, are bounded.
KEYED_OUTCOMES = frozenset({Outcome.ISSUED, Outcome.VERIFIED})
DEFAULT_SUMMARY_INTERVAL = 10.0  # with admission control off
HOST_CACHE = 65536  # source texts remembered as octets; cleared when full


def source_bytes(host: str) -> bytes:
    """A socket address's host as 16 octets (IPv4 as ::ffff:a.b.c.d), without ipaddress."""
    if ":" in host:
        return socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    return IPV4_MAPPED_PREFIX + socket.inet_pton(socket.AF_INET, host)


class AdmissionFront:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.admission = (
            None
            if config.admission is None
            else Admission(config.admission, self.server_group, config.role.code_points)
        )
        self.interval = (
            DEFAULT_SUMMARY_INTERVAL
            if config.admission is None
            else config.admission.summary_interval
        )
        self.refused = 0
        self._hosts: dict[str, bytes] = {}
        self._groups: dict[str, str] = {}  # realm name -> its home servers' names
        self._lines_left = config.exchange_lines
        self._unlogged: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def server_group(self, nai: bytes) -> str:
        """The home servers an Access-Request for `nai` goes to (its realm's)."""
        realm = self.config.realm_for(nai)
        if realm is None:
            return ""
        group = self._groups.get(realm.name)
        if group is None:  # once per realm, not per HKReq
            group = self._groups[realm.name] = " ".join(server.name for server in realm.servers)
        return group

    def gate(self, host: str, data: memoryview) -> bool:
        """The UDP transport's gate: the per-source limit, before anything is copied or
        decoded. Hosts are converted once and remembered (a bounded cache)."""
        admission = self.admission
        if admission is None:
            return True
        source = self._hosts.get(host)
        if source is None:
            try:
                source = source_bytes(host)
            except (OSError, ValueError):
                return True  # not an IP address: nothing to count it under
            if len(self._hosts) >= HOST_CACHE:
                self._hosts.clear()
            self._hosts[host] = source
        if admission.admit_datagram(source, data, time.monotonic()) is None:
            return True
        self.refused += 1
        return False

    def admit_raw(self, source: bytes, data: bytes) -> bool:
        """The same limit for a raw IPv6 packet (its source as 16 octets)."""
        if self.admission is None:
            return True
        if self.admission.admit_datagram(source, data, time.monotonic()) is None:
            return True
        self.refused += 1
        return False

    def log_line_for(self, outcome: Outcome) -> bool:
        """Whether an exchange with `outcome` gets its own line (else it is counted)."""
        if outcome in KEYED_OUTCOMES:
            return True
        if self._lines_left > 0:
            self._lines_left -= 1
            return True
        self._unlogged[outcome.value] += 1
        return False

    def dropped_by_reason(self) -> dict[str, int]:
        """Drops since start by reason (metrics; a copy, safe to read from another
        thread: Counter() of a dict is one C-level copy under the GIL)."""
        if self.admission is None:
            return {}
        return {reason.value: count for reason, count in self.admission.dropped.items()}

    def counters(self) -> dict[str, object] | None:
        return None if self.admission is None else self.admission.counters()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer = loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        """Cancel the timer and write what is pending."""
        self._loop = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.summarise(time.monotonic(), force=True)

    def _tick(self) -> None:
        self._timer = None
        try:
            self.summarise(time.monotonic())
        except Exception:
            log.exception("internal error writing the summaries")
        if self._loop is not None:
            self._timer = self._loop.call_later(self.interval, self._tick)

    def summarise(self, now: float, force: bool = False) -> None:
        """At most one line each per interval: admission drops, exchanges not logged."""
        self._lines_left = self.config.exchange_lines
        if self._unlogged:
            emit(logging.INFO, "exchanges-not-logged", outcomes=dict(self._unlogged))
            self._unlogged = Counter()
        summary = None if self.admission is None else self.admission.summary(now, force)
        if summary is not None:
            emit(logging.INFO, "admission-dropped", **summary)
