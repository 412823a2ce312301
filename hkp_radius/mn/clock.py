"""The MN's timestamps (draft §5.2.3, PROFILE P5), sans-I/O: `now` and randomness come in.

A timestamp is NTP time (with the offset INVALID_TIMESTAMP answers taught us) whose low
fraction bits come from the random source, raised above two floors so that it is greater
than every timestamp that may have been accepted before (docs/decisions.md, "## MN"):
- `floor`: the greatest timestamp of a successful HKReq (§5.2.3 "MUST be greater than
  that used in any previous successful HKReq"); it never goes down;
- `last_sent`: the greatest timestamp sent since the last backward correction (a request
  whose answer was lost may have been accepted); a backward correction drops it to
  `floor`, because stamps made with a clock that ran ahead were refused by the HKS.
"""

from __future__ import annotations

from collections.abc import Callable

from hkp_radius.wire import ntp

# Draft §5.2.3: fraction bits a clock cannot supply SHOULD be random; time.time() is good
# to about a microsecond (2^-20 s), so the low 12 of the 32 fraction bits are random.
TIMESTAMP_RANDOM_BITS = 12

RandomSource = Callable[[int], bytes]


def seconds_correction(sent: int, echoed: int) -> int:
    """P5: INVALID_TIMESTAMP echoes the HKS's high 32 bits; the signed difference of the
    seconds, modulo 2^32 so that an NTP era wrap between the two clocks is harmless."""
    return ((echoed >> 32) - (sent >> 32) + (1 << 31)) % (1 << 32) - (1 << 31)


def echoes_low_bits(sent: int, echoed: int) -> bool:
    """P5: an INVALID_TIMESTAMP answer carries the MN's own low 32 bits."""
    return (sent ^ echoed) & 0xFFFFFFFF == 0


class TimestampClock:
    """The timestamps of one MN identity. `offset` is seconds added to `now`."""

    def __init__(
        self, random: RandomSource, offset: float = 0.0, floor: int = 0, last_sent: int = 0
    ) -> None:
        self.offset = offset
        self.floor = floor
        self.last_sent = last_sent
        self._random = random

    def stamp(self, now: float) -> int:
        """A new timestamp: strictly greater than both floors, even if `now` went back."""
        low = int.from_bytes(self._random(4), "big")
        stamp = ntp.to_ntp(now + self.offset, low, TIMESTAMP_RANDOM_BITS)
        stamp = max(stamp, self.floor + 1, self.last_sent + 1)
        self.last_sent = stamp
        return stamp

    def succeeded(self, timestamp: int) -> None:
        """An HKReq carrying `timestamp` was answered with success."""
        self.floor = max(self.floor, timestamp)

    def corrected(self, offset_used: float, delta: int) -> None:
        """A signed INVALID_TIMESTAMP: the stamp made with `offset_used` was `delta` seconds
        off the HKS clock. Setting (not adding) the offset keeps two exchanges refused for
        the same skew from correcting twice; only a move back drops `last_sent`."""
        offset = offset_used + delta
        if offset < self.offset:
            self.last_sent = self.floor
        self.offset = offset
