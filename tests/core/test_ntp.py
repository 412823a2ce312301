"""NTP 64-bit timestamps, RFC 5905 §6 (draft §5.2.3, PROFILE P5; conformance R06).

Expected values come from outside hkp_radius.ntp: the calendar (datetime) for the
1900-to-1970 offset and the well-known NTP second of 2000-01-01 (3155673600)."""

from __future__ import annotations

import datetime

from hkp_radius.wire import ntp

UNIX_2000 = 946_684_800  # 2000-01-01 00:00:00 UTC in Unix seconds
NTP_2000 = 3_155_673_600  # the same instant in NTP era-0 seconds (0xBC17C200)
NOW = 1_700_000_000.0


def test_unix_epoch_is_ntp_second_2208988800() -> None:
    era0 = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    assert (epoch - era0).total_seconds() == 2_208_988_800
    assert ntp.to_ntp(0) == 2_208_988_800 << 32
    assert ntp.to_ntp(UNIX_2000) == NTP_2000 << 32 == 0xBC17C200_00000000
    assert ntp.ntp_seconds(ntp.to_ntp(UNIX_2000 + 0.75)) == NTP_2000


def test_fraction_is_the_low_32_bits() -> None:
    assert ntp.to_ntp(0.5) == (2_208_988_800 << 32) | 0x80000000
    assert ntp.to_ntp(0.25) & 0xFFFFFFFF == 0x40000000
    assert ntp.to_ntp(NOW + 0.5) & 0xFFFFFFFF == 0x80000000
    assert ntp.to_ntp(-0.5) == (2_208_988_799 << 32) | 0x80000000  # before 1970


def test_random_bits_replace_only_the_low_bits() -> None:
    assert ntp.to_ntp(0.5, 0xFFF, 12) == ntp.to_ntp(0.5) | 0xFFF
    assert ntp.to_ntp(0.5, 0x12345, 12) == ntp.to_ntp(0.5) | 0x345
    assert ntp.to_ntp(0.5, 0xFFFFFFFF, 0) == ntp.to_ntp(0.5)


def test_round_trip() -> None:
    for exact in (0.0, 0.5, NOW, NOW + 0.25, UNIX_2000 + 0.125):
        assert ntp.from_ntp(ntp.to_ntp(exact)) == exact
    for value in (NOW + 0.123456, 12.3456789):
        # 2^-32 s of NTP resolution, and the float's own at 1.7e9 (2^-22 s)
        assert abs(ntp.from_ntp(ntp.to_ntp(value)) - value) < 1e-6
    stamp = (NTP_2000 << 32) | 0x80000000
    assert ntp.to_ntp(ntp.from_ntp(stamp)) == stamp


def test_replace_seconds_keeps_the_low_32_bits() -> None:
    # P5: INVALID_TIMESTAMP carries the HKS's high 32 bits and the MN's low 32 bits.
    assert ntp.replace_seconds(0x11111111_22222222, 0x33333333_44444444) == 0x33333333_22222222
    mine = ntp.to_ntp(NOW - 100, 0xABC, 12)
    theirs = ntp.to_ntp(NOW + 0.9)
    replaced = ntp.replace_seconds(mine, theirs)
    assert replaced >> 32 == theirs >> 32 and replaced & 0xFFFFFFFF == mine & 0xFFFFFFFF


def test_within_window_at_the_7_second_edges() -> None:
    for inside in (0.0, 7.0, -7.0, 6.999, -6.999):
        assert ntp.within_window(ntp.to_ntp(NOW + inside), NOW, 7.0), inside
    for outside in (7.001, -7.001, 8.0, -3600.0):
        assert not ntp.within_window(ntp.to_ntp(NOW + outside), NOW, 7.0), outside


def test_window_holds_across_the_2036_rollover() -> None:
    """RFC 4330 §3: after 2036-02-07 the seconds field wraps; timestamps just after the
    rollover are still read as close to a clock just after it (and before it)."""
    rollover = (1 << 32) - ntp.NTP_UNIX_OFFSET  # Unix time of NTP second 2**32
    for now in (rollover - 3.0, rollover + 0.5, rollover + 3.0):
        stamp = ntp.to_ntp(now)
        assert abs(ntp.from_ntp(stamp) - now) < 1e-6
        assert ntp.within_window(stamp, now + 6.9, 7.0)
        assert not ntp.within_window(stamp, now + 7.5, 7.0)
