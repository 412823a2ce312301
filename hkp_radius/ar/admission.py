"""Admission control at the AR (issue 15): who may cost the HKS an Access-Request.

The AR cannot check an MN-HKS MAC, so without limits every well-formed HKReq becomes an
Access-Request. Four limits, cheapest first (docs/ar.md, ## Admission control):

1. per source (`admit_datagram`, before the HKReq is decoded): a token bucket per /64
   for IPv6 senders (an address inside one /64 costs an attacker nothing), per address
   for IPv4 senders (IPv4-mapped, ::ffff:0:0/96). A datagram over its source's rate is
   dropped unless the NAI it names (found by a scan of the options, no decode) recently
   completed an exchange: under pressure, known NAIs come first.
2. per NAI (`admit_nai`, a new request once decoded): a token bucket per NAI, so that a
   known NAI (anyone can spell one) or a greedy client is bounded too.
3. per home server group (`may_ask_hks`): at most `max_in_flight` Access-Requests in
   flight; the last `reserved_for_known` of them only for known NAIs.
4. drops are counted by reason (`dropped`) and summarised (`summary`) at most once per
   `summary_interval`: never one log line per datagram.

Sans-I/O: every call takes a monotonic `now`. Tables are bounded (`max_tracked`); when
one is full, idle (refilled) entries go first, then the oldest.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from hkp_radius.constants import (
    DEFAULT_CODE_POINTS,
    HKREQ_FIXED_LENGTH,
    IPV6_ADDRESS_LENGTH,
    MN_ID_SUBTYPE_NAI,
    CodePoints,
)
from hkp_radius.errors import ConfigError

# Defaults (docs/ar.md): an MN asks for a key at a handover, a few times a minute at
# most; 20 HKReqs/s per /64 and 10/s per NAI leave room for retransmissions and the
# lab's and tests' bursts while a flood from one /64 costs the HKS at most 20 requests/s.
SOURCE_RATE = 20.0
SOURCE_BURST = 40.0
NAI_RATE = 10.0
NAI_BURST = 20.0
# FreeRADIUS with rlm_python3 serialises the module: 32 requests queued there are about
# 30 ms of its work on this kind of machine; more only lengthens every MN's wait.
MAX_IN_FLIGHT = 32
RESERVED_FOR_KNOWN = 8  # of MAX_IN_FLIGHT, kept for NAIs with a recent exchange
KNOWN_TIME = 3600.0  # s a completed exchange makes a NAI known (HK_DEFAULT_LIFETIME)
MAX_TRACKED = 65536  # buckets (and known NAIs) per table: ~10 MB at worst
SUMMARY_INTERVAL = 10.0  # s: at most one summary line per interval
IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # RFC 4291 §2.5.5.2
PREFIX_OCTETS = 8  # /64


class Drop(enum.Enum):
    """Why admission refused a datagram (the counters' keys)."""

    SOURCE_RATE = "source rate"
    NAI_RATE = "NAI rate"
    IN_FLIGHT = "Access-Requests in flight at the cap"
    RESERVED = "in-flight slots reserved for known NAIs"


@dataclass(frozen=True)
class AdmissionConfig:
    source_rate: float = SOURCE_RATE  # tokens per second per source (/64 or IPv4 address)
    source_burst: float = SOURCE_BURST
    nai_rate: float = NAI_RATE
    nai_burst: float = NAI_BURST
    max_in_flight: int = MAX_IN_FLIGHT  # per home server group (realm)
    reserved_for_known: int = RESERVED_FOR_KNOWN
    known_time: float = KNOWN_TIME
    max_tracked: int = MAX_TRACKED
    summary_interval: float = SUMMARY_INTERVAL

    def __post_init__(self) -> None:
        for name in ("source_rate", "source_burst", "nai_rate", "nai_burst", "known_time",
                     "summary_interval"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be a positive number")
        if self.source_burst < 1 or self.nai_burst < 1:
            raise ConfigError("a burst must be at least 1 (one request)")
        if self.max_in_flight < 1:
            raise ConfigError("max_in_flight must be at least 1")
        if not 0 <= self.reserved_for_known < self.max_in_flight:
            raise ConfigError("reserved_for_known must be from 0 to max_in_flight - 1")
        if self.max_tracked < 16:
            raise ConfigError("max_tracked must be at least 16")


def source_key(source: bytes) -> bytes:
    """The bucket of a sender: its /64, or the whole IPv4-mapped address."""
    if len(source) != IPV6_ADDRESS_LENGTH or source.startswith(IPV4_MAPPED_PREFIX):
        return source
    return source[:PREFIX_OCTETS]


def peek_nai(
    wire: bytes | memoryview, code_points: CodePoints = DEFAULT_CODE_POINTS
) -> bytes | None:
    """The NAI of an HKReq's first MN-ID option, by a scan of the option TLVs (no decode,
    no objects); None for anything that does not look right. Never raises."""
    end = min(len(wire), (wire[1] + 1) * 8) if len(wire) > 1 else 0
    offset = HKREQ_FIXED_LENGTH
    while offset + 1 < end:
        kind = wire[offset]
        if kind == code_points.pad1_option:
            offset += 1
            continue
        length = wire[offset + 1]
        body = offset + 2
        if body + length > end:
            return None
        if kind == code_points.mn_id_option:
            if length < 2 or wire[body] != MN_ID_SUBTYPE_NAI:
                return None
            return bytes(wire[body + 1 : body + length])
        offset = body + length
    return None


class _Buckets:
    """Token buckets by key: [tokens, last refill] each, bounded to `limit` keys."""

    def __init__(self, rate: float, burst: float, limit: int) -> None:
        self.rate = rate
        self.burst = burst
        self.limit = limit
        self._buckets: dict[Hashable, list[float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable, now: float) -> bool:
        """One token from `key`'s bucket, if it has one (the hot path of a flood: plain
        arithmetic, no calls)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.limit:
                self._make_room(now)
            self._buckets[key] = [self.burst - 1.0, now]
            return True
        elapsed = now - bucket[1]
        tokens = bucket[0] + elapsed * self.rate if elapsed > 0 else bucket[0]
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def tokens(self, key: Hashable, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return self.burst
        return min(self.burst, bucket[0] + max(0.0, now - bucket[1]) * self.rate)

    def _make_room(self, now: float) -> None:
        """Forget full buckets (forgetting one changes nothing); if none is, the oldest
        eighth (dicts keep insertion order)."""
        full = [
            k
            for k, (t, last) in self._buckets.items()
            if t + (now - last) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.limit:
            for key in list(self._buckets)[: max(1, self.limit // 8)]:
                del self._buckets[key]


class Admission:
    """The AR's admission decisions; see the module docstring."""

    def __init__(
        self,
        config: AdmissionConfig | None = None,
        group_of: Callable[[bytes], Hashable] = lambda nai: None,
        code_points: CodePoints = DEFAULT_CODE_POINTS,
    ) -> None:
        self.config = cfg = config or AdmissionConfig()
        self._group_of = group_of  # NAI -> its home server group (the adapter's realms)
        self._code_points = code_points
        self._sources = _Buckets(cfg.source_rate, cfg.source_burst, cfg.max_tracked)
        self._nais = _Buckets(cfg.nai_rate, cfg.nai_burst, cfg.max_tracked)
        self._known: OrderedDict[bytes, float] = OrderedDict()  # NAI -> last completion
        self._in_flight: dict[int, Hashable] = {}  # ref -> group
        self.in_flight: Counter[Hashable] = Counter()  # group -> Access-Requests out
        self.peak_in_flight: Counter[Hashable] = Counter()
        # Drops by reason, since start and since the last summary. Source-rate drops (the
        # bulk of a flood) are plain integers: hashing an Enum costs more than the rest.
        self._dropped: Counter[Drop] = Counter()
        self._pending: Counter[Drop] = Counter()
        self._source_dropped = 0
        self._source_pending = 0
        self._since: float | None = None
        self._last_summary: float | None = None

    # ---- the four limits ------------------------------------------------------------

    def admit_datagram(self, source: bytes, wire: bytes | memoryview, now: float) -> Drop | None:
        """Before decoding: None to go on, or why the datagram is dropped."""
        key = source if source[:12] == IPV4_MAPPED_PREFIX else source[:PREFIX_OCTETS]
        sources = self._sources
        bucket = sources._buckets.get(key)  # _Buckets.take inlined: the flood's hot path
        if bucket is None:
            if sources.take(key, now):
                return None
        else:
            elapsed = now - bucket[1]
            tokens = bucket[0] + elapsed * sources.rate if elapsed > 0 else bucket[0]
            if tokens > sources.burst:
                tokens = sources.burst
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return None
            bucket[0] = tokens
        if self._known:
            nai = peek_nai(wire, self._code_points)
            if nai is not None and self.is_known(nai, now):
                return None  # under pressure, known NAIs first (their bucket still applies)
        self._source_dropped += 1
        self._source_pending += 1
        if self._since is None:
            self._since = now
        return Drop.SOURCE_RATE

    def admit_nai(self, nai: bytes, now: float) -> Drop | None:
        """A new request of `nai` (not a copy of one held)."""
        if self._nais.take(nai, now):
            return None
        return self._drop(Drop.NAI_RATE, now)

    def may_ask_hks(self, nai: bytes, now: float) -> Drop | None:
        """Before an Access-Request goes out for `nai`: is a slot free for it?"""
        group = self._group_of(nai)
        used = self.in_flight[group]
        cfg = self.config
        if used >= cfg.max_in_flight:
            return self._drop(Drop.IN_FLIGHT, now)
        if used >= cfg.max_in_flight - cfg.reserved_for_known and not self.is_known(nai, now):
            return self._drop(Drop.RESERVED, now)
        return None

    def asking(self, ref: int, nai: bytes) -> None:
        """An Access-Request for request `ref` went out."""
        if ref in self._in_flight:
            return
        group = self._group_of(nai)
        self._in_flight[ref] = group
        self.in_flight[group] += 1
        self.peak_in_flight[group] = max(self.peak_in_flight[group], self.in_flight[group])

    def answered(self, ref: int) -> None:
        """Request `ref` no longer waits for the HKS (answer, timeout, cancel)."""
        group = self._in_flight.pop(ref, _NONE)
        if group is not _NONE:
            self.in_flight[group] -= 1
            if self.in_flight[group] <= 0:
                del self.in_flight[group]

    def completed(self, nai: bytes, now: float) -> None:
        """`nai` completed an exchange (a key issued or verified): it is known."""
        known = self._known
        known[nai] = now
        known.move_to_end(nai)
        while known and (
            len(known) > self.config.max_tracked
            or next(iter(known.values())) + self.config.known_time <= now
        ):
            known.popitem(last=False)

    def is_known(self, nai: bytes, now: float) -> bool:
        last = self._known.get(nai)
        return last is not None and now - last < self.config.known_time

    # ---- counting and summaries ------------------------------------------------------

    @property
    def dropped(self) -> Counter[Drop]:
        """Drops by reason since start."""
        found = Counter(self._dropped)
        if self._source_dropped:
            found[Drop.SOURCE_RATE] = self._source_dropped
        return found

    def _drop(self, reason: Drop, now: float) -> Drop:
        self._dropped[reason] += 1
        self._pending[reason] += 1
        if self._since is None:
            self._since = now
        return reason

    def summary(self, now: float, force: bool = False) -> dict[str, object] | None:
        """Drops since the last summary, by reason, if any and at most once per interval
        (`force`: whatever the time, at shutdown). The first one after a quiet interval
        comes at once, so a lone drop shows up at the next call."""
        if self._source_pending:
            self._pending[Drop.SOURCE_RATE] += self._source_pending
            self._source_pending = 0
        if not self._pending:
            return None
        last = self._last_summary
        if not force and last is not None and now - last < self.config.summary_interval:
            return None
        since = self._since if self._since is not None else now
        counts = {reason.value: count for reason, count in sorted(
            self._pending.items(), key=lambda item: item[0].value)}  # fmt: skip
        self._pending = Counter()
        self._since = None
        self._last_summary = now
        return {"seconds": round(max(0.0, now - since), 3), "dropped": counts,
                "sources": len(self._sources), "nais": len(self._nais)}  # fmt: skip

    def counters(self) -> dict[str, object]:
        """For the control socket: drops by reason since start, in flight, peaks."""
        return {
            "dropped": {reason.value: count for reason, count in self.dropped.items()},
            "in_flight": {str(g): n for g, n in self.in_flight.items()},
            "peak_in_flight": {str(g): n for g, n in self.peak_in_flight.items()},
            "known_nais": len(self._known),
        }


_NONE = object()
