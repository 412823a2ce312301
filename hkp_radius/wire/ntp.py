"""NTP 64-bit timestamps (RFC 5905 §6), PROFILE P5.

Seconds since 1900-01-01 UTC in the high 32 bits, the fraction in the low 32.
"""

from __future__ import annotations

# RFC 5905 §6: seconds from the NTP era 0 origin (1900) to the Unix epoch (1970).
NTP_UNIX_OFFSET = 2_208_988_800
FRACTION_SCALE = 1 << 32


def to_ntp(unix_time: float, low_bits_random: int = 0, random_bits: int = 0) -> int:
    """NTP timestamp for `unix_time`. Draft §5.2.3: fraction bits the time source cannot
    supply SHOULD be random; pass `random_bits` (how many low bits) and their value."""
    seconds = int(unix_time // 1)
    fraction = int((unix_time - seconds) * FRACTION_SCALE) & 0xFFFFFFFF
    if random_bits:
        mask = (1 << random_bits) - 1
        fraction = (fraction & ~mask) | (low_bits_random & mask)
    return (((seconds + NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32) | fraction


# RFC 4330 §3: seconds with the top bit clear are read as era 1 (from 2036-02-07 on),
# so the ±7 s window keeps working across the 32-bit rollover.
ERA_PIVOT = 1 << 31
ERA_SECONDS = 1 << 32


def from_ntp(timestamp: int) -> float:
    """Unix time of an NTP timestamp, 1968-2104 (RFC 4330 §3 era rule)."""
    seconds = timestamp >> 32
    if seconds < ERA_PIVOT:
        seconds += ERA_SECONDS
    return seconds - NTP_UNIX_OFFSET + (timestamp & 0xFFFFFFFF) / FRACTION_SCALE


def ntp_seconds(timestamp: int) -> int:
    return timestamp >> 32


def replace_seconds(timestamp: int, seconds_from: int) -> int:
    """P5: an INVALID_TIMESTAMP answer carries the HKS's high 32 bits and the MN's low 32."""
    return (seconds_from & 0xFFFFFFFF_00000000) | (timestamp & 0xFFFFFFFF)


def within_window(timestamp: int, now: float, window: float) -> bool:
    """P5: accepted when within ±window seconds of the HKS clock."""
    return abs(from_ntp(timestamp) - now) <= window
