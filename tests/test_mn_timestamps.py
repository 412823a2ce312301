"""MN timestamps (draft §5.2.3, PROFILE P5): NTP time, random low bits, and a floor that
keeps every timestamp above the last successful one, even when the clock moves back."""

from __future__ import annotations

import pytest

from hkp_radius.constants import Status
from hkp_radius.mn import ErrorReceived, GaveUp, KeyEstablished, MobileNode
from hkp_radius.mn.clock import TIMESTAMP_RANDOM_BITS, RandomSource
from hkp_radius.wire import ntp
from hkp_radius.wire.messages import HKReq, decode_message

from .mn_peers import AR_ID, CountingRandom, FakeAR, Node, config

T0 = 1_700_000_000.0


def node(**changes: object) -> Node:
    return Node(MobileNode(config(**changes), CountingRandom()))


def timestamp_sent(mn: Node) -> int:
    (datagram,) = mn.datagrams_to_send()
    request = decode_message(datagram.data)
    assert isinstance(request, HKReq) and request.timestamp is not None
    return request.timestamp


def pump(mn: Node, ar: FakeAR, now: float) -> list[object]:
    """Deliver the MN's datagrams to `ar` and its answers back until quiet."""
    for _ in range(20):
        out = mn.datagrams_to_send()
        if not out:
            break
        for datagram in out:
            answer = ar.answer(datagram.data, now)
            if answer is not None:
                mn.receive_datagram(answer, datagram.ar_id, now)
    return list(mn.events())


def constant(fill: int) -> RandomSource:
    return lambda n: bytes([fill]) * n


def test_timestamp_low_bits_come_from_the_random_source() -> None:
    now = T0 + 0.25  # fraction 0x40000000: the clock's low 12 bits are zero
    stamps = []
    for fill in (0xA5, 0x3C):
        mn = Node(MobileNode(config(), constant(fill)))
        mn.request_key(AR_ID, now)
        stamps.append(timestamp_sent(mn))
    mask = (1 << TIMESTAMP_RANDOM_BITS) - 1
    assert [s & mask for s in stamps] == [0xA5A5A5A5 & mask, 0x3C3C3C3C & mask]
    assert stamps[0] != stamps[1]
    assert stamps[0] & ~mask == stamps[1] & ~mask == ntp.to_ntp(now)  # the clock's bits


def test_timestamps_increase_even_when_the_clock_steps_back() -> None:
    mn = node()
    mn.request_key(AR_ID, T0)
    first = timestamp_sent(mn)
    mn.request_key(AR_ID, T0 - 5.0)  # the wall clock went back 5 s
    assert timestamp_sent(mn) > first

    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0 + 2.0)
    assert [type(e) for e in pump(mn, ar, T0 + 2.0)].count(KeyEstablished) == 1
    mn.request_key(AR_ID, T0 + 1.0)  # after a success, one second earlier
    events = pump(mn, ar, T0 + 1.0)
    assert not [e for e in events if isinstance(e, ErrorReceived)]  # no replay refusal
    assert [e for e in events if isinstance(e, KeyEstablished)]
    successful, second = ar.seen
    assert (second.timestamp or 0) > (successful.timestamp or 0)
    assert mn.clock.floor == second.timestamp


def test_backward_correction_keeps_the_last_successful_timestamp_as_the_floor() -> None:
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0 + 0.9)
    pump(mn, ar, T0 + 0.9)
    successful = ar.seen[0].timestamp or 0
    assert mn.clock.floor == successful
    # The clock jumps 3599.5 s ahead: the HKS refuses and its whole seconds say -3600, so
    # the corrected clock runs 0.5 s behind, under the timestamp it already accepted.
    mn.clock_offset = 3599.5
    mn.request_key(AR_ID, T0 + 0.95)
    events = pump(mn, ar, T0 + 0.95)
    (error,) = [e for e in events if isinstance(e, ErrorReceived)]
    assert error.status == Status.INVALID_TIMESTAMP and "-3600 s" in error.reaction
    assert mn.clock_offset == pytest.approx(-0.5)
    assert not [e for e in events if isinstance(e, GaveUp)]
    (established,) = [e for e in events if isinstance(e, KeyEstablished)]
    assert not established.verified
    corrected = ar.seen[-1].timestamp or 0
    assert ntp.from_ntp(corrected) < T0 + 0.95 and corrected == successful + 1
    assert len(ar.seen) == 3 and mn.clock.floor == corrected


def test_two_refusals_of_one_skew_correct_the_clock_once() -> None:
    mn, ar = Node(MobileNode(config(), CountingRandom(), clock_offset=100.0)), FakeAR()
    mn.request_key(AR_ID, T0)
    mn.request_key(AR_ID, T0)
    events = pump(mn, ar, T0)
    errors = [e for e in events if isinstance(e, ErrorReceived)]
    assert [e.status for e in errors] == [Status.INVALID_TIMESTAMP] * 2
    assert len([e for e in events if isinstance(e, KeyEstablished)]) == 2
    assert mn.clock_offset == pytest.approx(0.0)  # not -100: each refusal set the offset
    stamps = [r.timestamp or 0 for r in ar.seen]
    assert stamps[2] < stamps[3]  # the corrected pair still increases
