"""Property tests (issue 2 point 2): garbage in, only a DecodeError out; anything that
decodes re-encodes to a message that decodes to the same value."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hkp_radius import crypto
from hkp_radius.constants import CodePoints, MacSubtype
from hkp_radius.errors import DecodeError
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import (
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
    UnknownOption,
)

CP = CodePoints()
KNOWN = {CP.nonce_option, CP.mac_option, CP.timestamp_option, CP.mn_id_option, 0, 1}

nonces = st.builds(HandoverNonce, st.sampled_from([1, 2]), st.binary(min_size=16, max_size=64))
mn_ids = st.builds(MobileNodeIdentifier, st.binary(min_size=1, max_size=253))
stamps = st.builds(Timestamp, st.integers(0, 2**64 - 1))
unknowns = st.builds(
    UnknownOption,
    st.integers(2, 255).filter(lambda t: t not in KNOWN),
    st.binary(max_size=40),
)


@st.composite
def option_lists(draw: st.DrawFn) -> tuple[Option, ...]:
    chosen: list[Option] = []
    if draw(st.booleans()):
        chosen.append(draw(mn_ids))
    for subtype in (1, 2):
        if draw(st.booleans()):
            chosen.append(HandoverNonce(subtype, draw(st.binary(min_size=16, max_size=64))))
    if draw(st.booleans()):
        chosen.append(draw(stamps))
    chosen.extend(draw(st.lists(unknowns, max_size=3)))
    chosen = draw(st.permutations(chosen))
    for subtype in (1, 2):
        if draw(st.booleans()):
            chosen.append(MacOption(subtype, draw(st.sampled_from([1, 2]))))
    return tuple(chosen)


messages = st.one_of(
    st.builds(
        HKReq,
        st.integers(0, 255),
        st.booleans(),
        st.integers(0, 7),
        st.binary(min_size=16, max_size=16),
        option_lists(),
    ),
    st.builds(
        HKResp,
        st.integers(0, 255),
        st.booleans(),
        st.integers(0, 7),
        st.integers(0, 255),
        st.integers(0, 65535),
        st.integers(0, 2**32 - 1),
        option_lists(),
    ),
)


def _keys() -> dict[MacSubtype, bytes]:
    return {MacSubtype.MN_HKS: bytes(range(32)), MacSubtype.MN_AR: bytes(range(32, 64))}


@given(messages)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_every_message_round_trips_exactly(message: HKReq | HKResp) -> None:
    wire = crypto.sign_message(message, _keys())
    decoded = decode_message(wire)
    assert decoded.encode() == wire
    for subtype in (MacSubtype.MN_HKS, MacSubtype.MN_AR):
        if decoded.mac(subtype) is not None:
            assert crypto.verify_mac(wire, decoded, subtype, _keys()[subtype])


@given(st.binary(max_size=600))
@settings(max_examples=2000)
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    try:
        decode_message(data)
    except DecodeError as exc:
        assert str(exc)


@given(st.binary(max_size=600))
@settings(max_examples=1000)
def test_random_bodies_with_a_valid_frame_raise_only_decode_errors(body: bytes) -> None:
    body += bytes(-(6 + len(body)) % 8)
    for mh_type in (250, 251):
        data = bytes((59, (6 + len(body)) // 8 - 1, mh_type, 0, 0, 0)) + body
        try:
            message = decode_message(data)
        except DecodeError:
            continue
        assert decode_message(message.encode()) == message


@given(messages, st.data())
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_messages_raise_only_decode_errors(
    message: HKReq | HKResp, data: st.DataObject
) -> None:
    wire = bytearray(crypto.sign_message(message, _keys()))
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        index = data.draw(st.integers(0, max(len(wire) - 1, 0)))
        if action == "flip" and wire:
            wire[index] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "set" and wire:
            wire[index] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del wire[index:]
        else:
            wire[index:index] = data.draw(st.binary(min_size=1, max_size=9))
    try:
        decoded = decode_message(bytes(wire))
    except DecodeError:
        return
    assert decode_message(decoded.encode()) == decoded
