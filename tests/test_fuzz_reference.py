"""The radius reference judges a request as the server reads it (issue 9, the long run
of 2026-12-03): a value over 253 octets goes out with its length octet modulo 256, so
a server reads a short attribute and the rest as the attributes after it. The 13
`wrong-accept`s of that run (seed 9) were such cases whose tail framed as attributes:
FreeRADIUS (`radiusd -X`) read a well-formed HKReq request and accepted it rightly,
while the reference said "an attribute over 253 octets: must be refused".
tests/integration/test_fuzz_lab.py sends the same 13 cases to the real HKS.
"""

from __future__ import annotations

import ipaddress
import struct

from hkp_fuzz.cases import Setup, generate, radius_expectation
from hkp_fuzz.radius import (
    USER_NAME,
    VENDOR_SPECIFIC,
    Attributes,
    as_received,
    framing_ok,
    load_dictionary,
)
from tests.ar_helpers import HMK, NAI

CLASS = 25
# seed 9, the lab's MN, HMK and AR-ID: the indices of the 13 false wrong-accepts
LONG_RUN_INDICES = [
    130463, 415192, 436401, 466599, 502964, 510160, 553823,
    562931, 766918, 817247, 840209, 944985, 975510,
]  # fmt: skip
AR_ID = ipaddress.IPv6Address("2001:db8::1").packed


def lab_setup() -> Setup:
    return Setup("radius", 9, NAI, HMK, AR_ID, dictionary=load_dictionary())


def with_long_class(attrs: Attributes, tail: bytes, at: int = 1) -> Attributes:
    """A Class of 6 octets followed by a 256-octet `tail`, sent as one attribute of
    262 octets: its length octet is 264 mod 256 = 8, so a server reads 6 octets of
    Class and then `tail` as attributes."""
    assert len(tail) == 256
    return [*attrs[:at], (CLASS, bytes(range(6)) + tail), *attrs[at:]]


def padding(size: int) -> bytes:
    """Reply-Message (18) attributes of `size` octets in all, well framed."""
    out = b""
    while size:
        part = size if size <= 200 else (150 if size - 200 < 2 else 200)
        out += bytes((18, part)) + b"p" * (part - 2)
        size -= part
    return out


def test_the_long_runs_thirteen_are_judged_as_the_server_reads_them() -> None:
    setup = lab_setup()
    for index in LONG_RUN_INDICES:
        case = generate(setup, index)
        assert any(":octets-len" in link or ":string-len" in link for link in case.chain)
        assert not framing_ok(case.attributes), index  # an over-long value as sent
        received = as_received(case.attributes)
        assert received is not None and len(received) > len(case.attributes), index
        assert case.expect == "any", (index, case.reason)  # was "reject" in that run


def test_an_over_long_value_is_read_short_and_its_tail_as_attributes() -> None:
    zero = generate(lab_setup(), 0)
    assert zero.expect == "any"
    tail = padding(256)
    attrs = with_long_class(zero.attributes, tail)
    received = as_received(attrs)
    assert received is not None
    assert received[1] == (CLASS, bytes(range(6)))  # the Class as read: 6 octets
    assert received[2:4] == [(18, b"p" * 198), (18, b"p" * 54)]  # its tail
    assert received[:1] + received[4:] == zero.attributes
    assert radius_expectation(attrs, lab_setup(), "valid")[0] == "any"


def test_a_tail_that_does_not_frame_is_a_dropped_packet() -> None:
    zero = generate(lab_setup(), 0)
    tail = padding(255) + b"\x12"  # the last attribute has no length octet
    attrs = with_long_class(zero.attributes, tail, at=len(zero.attributes))
    assert as_received(attrs) is None
    expect, reason = radius_expectation(attrs, lab_setup(), "valid")
    assert expect == "reject" and "framing" in reason


def test_a_tail_with_a_second_message_authenticator_must_be_refused() -> None:
    zero = generate(lab_setup(), 0)
    tail = bytes((80, 18)) + bytes(16) + padding(238)
    attrs = with_long_class(zero.attributes, tail)
    assert as_received(attrs) is not None
    expect, reason = radius_expectation(attrs, lab_setup(), "valid")
    assert expect == "reject" and "Message-Authenticator" in reason


def test_a_tail_with_another_user_name_first_must_be_refused() -> None:
    zero = generate(lab_setup(), 0)
    other = b"bob@example.net"
    tail = bytes((USER_NAME, len(other) + 2)) + other + padding(256 - len(other) - 2)
    attrs = with_long_class(zero.attributes, tail, at=0)  # read before the real one
    received = as_received(attrs)
    assert received is not None and (USER_NAME, other) in received
    assert received.index((USER_NAME, other)) < received.index((USER_NAME, NAI))
    assert radius_expectation(attrs, lab_setup(), "valid")[0] == "reject"
    # and the HKP attributes themselves are untouched by the re-reading
    assert [v for t, v in received if t == VENDOR_SPECIFIC] == [
        v for t, v in zero.attributes if t == VENDOR_SPECIFIC
    ]
    assert struct.unpack("!I", received[-1][1][:4])[0] == 32473
