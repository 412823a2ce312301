"""Bounded logging of the HKS's decisions (issue 15): what the FreeRADIUS adapter logs.

Every Accept keeps its own line (an HK was issued: an operator wants each one). A
discard or a reject costs an attacker one datagram, so one line each would let anyone
fill the disk (56 MB after 170,000 junk requests): they are counted by reason instead,
and summarised in at most one line per `interval` seconds. The first one after a quiet
interval is logged at once, so a lone misconfigured MN still shows up immediately.

Sans-I/O: the caller passes a monotonic `now` and writes the lines it gets back. No
line carries key material; identities (attacker-chosen text) are escaped and cut.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hkp_radius.hks.role import Accept, Decision, Discard, DiscardReason, Reject

DEFAULT_SUMMARY_INTERVAL = 10.0  # seconds: at most six summary lines a minute
MAX_IDENTITY_LENGTH = 64  # characters of a User-Name shown: NAIs are up to 253 octets
# Discards that mean the operator's data is wrong, not the request: logged as errors.
ERROR_REASONS = frozenset({DiscardReason.HMK_TOO_SHORT})


class Severity(enum.Enum):
    INFO = "info"
    ERROR = "error"


@dataclass(frozen=True)
class LogLine:
    severity: Severity
    text: str


@dataclass
class _Tally:
    count: int
    last: str  # who and why, of the last one counted


def identity(user_name: bytes | None) -> str:
    """A User-Name for a log line: escaped (repr) and at most MAX_IDENTITY_LENGTH."""
    if not user_name:
        return "-"
    text = user_name.decode("utf-8", "replace")
    if len(text) > MAX_IDENTITY_LENGTH:
        text = text[:MAX_IDENTITY_LENGTH] + "..."
    return repr(text)


class DecisionLog:
    """Turns decisions into log lines: one per Accept, a bounded summary for the rest."""

    def __init__(self, interval: float = DEFAULT_SUMMARY_INTERVAL) -> None:
        self.interval = interval
        self._tallies: dict[str, _Tally] = {}
        self._errors = False
        self._since: float | None = None  # start of the counting interval
        self._last_summary: float | None = None
        self.totals: dict[str, int] = {}  # every count since start, by outcome key

    def record(self, decision: Decision, user_name: bytes | None, now: float) -> list[LogLine]:
        """The lines to write now for `decision` (about the request of `user_name`)."""
        who = identity(user_name)
        if isinstance(decision, Accept):
            self._count("Accept")
            line = LogLine(Severity.INFO, f"Accept {who}: HK issued, PRF {decision.prf}")
            return [line, *self._due(now)]
        if isinstance(decision, Reject):
            key = f"Reject {decision.status.name}"
            last = f"{who} ({decision.detail})"
        else:
            key = _discard_key(decision)
            last = f"{who} ({decision.detail})" if decision.detail else who
            self._errors |= decision.reason in ERROR_REASONS
        self._count(key)
        tally = self._tallies.get(key)
        if tally is None:
            self._tallies[key] = _Tally(1, last)
        else:
            tally.count += 1
            tally.last = last
        if self._since is None:
            self._since = now
        return self._due(now)

    def flush(self, now: float) -> list[LogLine]:
        """The pending summary, whatever the time (at shutdown)."""
        return self._summary(now)

    def _count(self, key: str) -> None:
        self.totals[key] = self.totals.get(key, 0) + 1

    def _due(self, now: float) -> list[LogLine]:
        if not self._tallies:
            return []
        if self._last_summary is not None and now - self._last_summary < self.interval:
            return []
        return self._summary(now)

    def _summary(self, now: float) -> list[LogLine]:
        if not self._tallies:
            return []
        since = self._since if self._since is not None else now
        total = sum(t.count for t in self._tallies.values())
        parts = "; ".join(
            f"{key}: {t.count} (last {t.last})" for key, t in sorted(self._tallies.items())
        )
        severity = Severity.ERROR if self._errors else Severity.INFO
        text = f"{total} request(s) without a key in {max(now - since, 0.0):.1f} s: {parts}"
        self._tallies = {}
        self._errors = False
        self._since = None
        self._last_summary = now
        return [LogLine(severity, text)]


def _discard_key(decision: Discard) -> str:
    return f"Discard {decision.reason.name} ({decision.reason.value})"
