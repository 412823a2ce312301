"""HKReq/HKResp codec: PROFILE P2 framing, options, and every malformed case (issue 2
points 1 and 2). Vectors written by hand live in tests/vectors (test_vectors.py)."""

from __future__ import annotations

from hkp_radius.constants import PRF, CodePoints, MacAlgorithm, MacSubtype, NonceSubtype, Status
from hkp_radius.errors import (
    DecodeError,
    DuplicateOptionError,
    FieldValueError,
    LengthMismatchError,
    LocalProtocolError,
    OptionLengthError,
    OptionOrderError,
    TruncatedError,
    UnknownMessageTypeError,
)
from hkp_radius.wire.messages import HKReq, HKResp, decode_message, message_type
from hkp_radius.wire.options import (
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Timestamp,
    UnknownOption,
)

from .check import raises

COA = bytes.fromhex("20010db8000000000000000000000100")
NAI = b"alice@example.net"
NONCE = bytes(range(16))
MN_HKS = MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1, bytes(range(20)))
MN_AR = MacOption(MacSubtype.MN_AR, MacAlgorithm.HMAC_SHA1, bytes(range(20, 40)))


def _req(*options: object, verify: bool = False, coa: bytes = COA) -> HKReq:
    return HKReq(7, verify, PRF.HMAC_SHA1, coa, tuple(options))  # type: ignore[arg-type]


def _valid() -> list[bytes]:
    return [
        _req(MobileNodeIdentifier(NAI), HandoverNonce(2, NONCE), Timestamp(1), MN_HKS).encode(),
        _req(
            MobileNodeIdentifier(b"bob@example.org"),
            HandoverNonce(2, NONCE),
            MN_HKS,
            MN_AR,
            verify=True,
        ).encode(),
        HKResp(7, False, 1, 0, 3600, 256, (HandoverNonce(1, NONCE), Timestamp(5), MN_AR)).encode(),
        HKResp(9, False, 1, Status.COA_AUTH_FAILED).encode(),
    ]


def test_round_trip_is_exact_both_ways() -> None:
    for wire in _valid():
        message = decode_message(wire)
        assert message.encode() == wire
        assert decode_message(message.encode()) == message
        assert len(wire) % 8 == 0 and wire[1] == len(wire) // 8 - 1


def test_hkreq_fixed_fields_and_accessors() -> None:
    wire = _req(
        MobileNodeIdentifier(NAI),
        HandoverNonce(NonceSubtype.MN_NONCE, NONCE),
        Timestamp(42),
        MN_HKS,
        verify=True,
    ).encode()
    assert wire[:8] == bytes((59, len(wire) // 8 - 1, 250, 0, 0, 0, 7, 0x80 | 0x10))
    assert wire[8:24] == COA
    message = decode_message(wire)
    assert isinstance(message, HKReq) and message.verify and message.prf == 1
    assert (message.mn_id, message.mn_nonce, message.timestamp) == (NAI, NONCE, 42)
    assert message.hks_nonce is None and message.mac(MacSubtype.MN_AR) is None
    assert message_type(wire) is not None


def test_hkresp_status_in_octet_8_and_octet_9_zero() -> None:
    wire = HKResp(3, True, PRF.HMAC_SHA256, Status.INVALID_TIMESTAMP, 0x1234, 0xDEADBEEF).encode()
    assert wire[6:16] == bytes((3, 0x80 | 0x20, 138, 0, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF))
    assert len(wire) == 16 and wire[1] == 1
    assert decode_message(wire) == HKResp(3, True, 2, 138, 0x1234, 0xDEADBEEF)


def test_padding_goes_right_before_the_first_mac_and_nothing_follows_the_last() -> None:
    for nai_length in range(1, 17):
        wire = _req(MobileNodeIdentifier(b"n" * nai_length), MN_HKS, MN_AR).encode()
        assert len(wire) % 8 == 0
        mac_at = wire.index(bytes((251, 22, 1, 1)))
        assert wire[mac_at + 24 : mac_at + 28] == bytes((251, 22, 2, 1))
        assert mac_at + 48 == len(wire)
        options_end = 24 + 3 + nai_length
        pad = wire[options_end:mac_at]
        assert pad in (b"", b"\x00") or (pad[0] == 1 and pad[1] == len(pad) - 2)
        assert not any(pad[2:])
    # No MAC option: padding at the end.
    wire = HKResp(1, False, 1, Status.COA_AUTH_FAILED, options=(Timestamp(1),)).encode()
    assert wire[16:26] == bytes((252, 8)) + (1).to_bytes(8, "big") and wire[
        26:
    ] == b"\x01\x04" + bytes(4)


def test_pad_options_are_framing_and_unknown_options_are_kept() -> None:
    unknown = UnknownOption(200, b"\x01\x02\x03")
    wire = _req(MobileNodeIdentifier(NAI), unknown, UnknownOption(201, b""), MN_HKS).encode()
    message = decode_message(wire)
    assert message.options == (MobileNodeIdentifier(NAI), unknown, UnknownOption(201, b""), MN_HKS)
    # Explicit Pad1 and PadN in the middle are accepted and dropped.
    body = bytes((0,)) + bytes((1, 1, 0)) + MobileNodeIdentifier(b"abcd").encode(CodePoints())
    wire = _frame_raw(250, bytes((7, 0x10)) + COA + body)
    assert decode_message(wire).options == (MobileNodeIdentifier(b"abcd"),)


def test_code_points_are_configurable() -> None:
    cp = CodePoints(hkreq=200, hkresp=201, nonce_option=40, mac_option=41, timestamp_option=42)
    wire = _req(HandoverNonce(2, NONCE), MN_HKS).encode(cp)
    assert wire[2] == 200 and bytes((40, 18, 2, 0)) in wire and bytes((41, 22, 1, 1)) in wire
    assert decode_message(wire, cp) == decode_message(
        _req(HandoverNonce(2, NONCE), MN_HKS).encode()
    )
    with raises(UnknownMessageTypeError):
        decode_message(wire)
    with raises(Exception, match="must differ"):
        CodePoints(hkreq=1, hkresp=1)


def _frame_raw(mh_type: int, rest: bytes, pad_to_8: bool = True, proto: int = 59) -> bytes:
    total = 6 + len(rest)
    if pad_to_8 and total % 8:
        rest += bytes(-total % 8)  # Pad1 octets
        total = 6 + len(rest)
    return bytes((proto, total // 8 - 1, mh_type, 0, 0, 0)) + rest


def _req_raw(options: bytes) -> bytes:
    return _frame_raw(250, bytes((7, 0x10)) + COA + options)


def test_truncation_at_every_offset_raises_a_decode_error_naming_it() -> None:
    for wire in _valid():
        for cut in range(len(wire)):
            with raises(DecodeError) as caught:
                decode_message(wire[:cut])
            assert str(caught.value)
        # Truncated but with Header Len adjusted: the option runs past the end.
        for cut in range(24, len(wire), 8):
            short = bytearray(wire[:cut])
            short[1] = cut // 8 - 1
            try:
                shorter = decode_message(bytes(short))
            except DecodeError as exc:
                assert "offset" in str(exc) or "octets" in str(exc)
            else:  # the cut fell on an option boundary: a smaller, valid message
                assert len(shorter.options) < len(decode_message(wire).options)


def test_header_len_must_agree_with_the_length() -> None:
    wire = _valid()[0]
    for header_len in range(256):
        if header_len == wire[1]:
            continue
        with raises(LengthMismatchError, match="Header Len"):
            decode_message(wire[:1] + bytes((header_len,)) + wire[2:])
    with raises(LengthMismatchError, match="Header Len"):
        decode_message(wire + bytes(8))
    with raises(TruncatedError, match="Header Len"):
        decode_message(b"\x3b")


def test_malformed_options_each_raise_their_error() -> None:
    mnid = MobileNodeIdentifier(NAI).encode(CodePoints())
    nonce = HandoverNonce(2, NONCE).encode(CodePoints())
    mac = MN_HKS.encode(CodePoints())
    cases: list[tuple[bytes, type[DecodeError], str]] = [
        (_req_raw(bytes((250, 30)) + bytes(10)), TruncatedError, "option 250"),
        (_req_raw(mnid + mnid), DuplicateOptionError, "mn-id"),
        (_req_raw(nonce + nonce), DuplicateOptionError, "nonce"),
        (_req_raw(Timestamp(1).encode(CodePoints()) * 2), DuplicateOptionError, "timestamp"),
        (_req_raw(mac + mac), DuplicateOptionError, "mac"),
        (_req_raw(mac + mnid), OptionOrderError, "follows a MAC"),
        (_req_raw(MN_AR.encode(CodePoints()) + mac), OptionOrderError, "MN-AR MAC before"),
        (_req_raw(bytes((250, 17, 2, 0)) + bytes(15)), OptionLengthError, "15 octets"),
        (_req_raw(bytes((250, 67, 2, 0)) + bytes(65)), OptionLengthError, "65 octets"),
        (_req_raw(bytes((250, 18, 3, 0)) + bytes(16)), FieldValueError, "subtype 3"),
        (_req_raw(bytes((8, 1, 1))), OptionLengthError, "0 octets"),
        (_req_raw(bytes((8, 255, 1)) + b"n" * 254), OptionLengthError, "254 octets"),
        (_req_raw(bytes((252, 7)) + bytes(7)), OptionLengthError, "requires 8"),
        (_req_raw(bytes((251, 21, 1, 1)) + bytes(19)), OptionLengthError, "AUTH of 19"),
        (_req_raw(bytes((251, 2, 1, 9))), OptionLengthError, "empty AUTH"),
        (_req_raw(bytes((251, 22, 7, 1)) + bytes(20)), FieldValueError, "subtype 7"),
        (_frame_raw(249, bytes((7, 0x10)) + COA), UnknownMessageTypeError, "249"),
        (_frame_raw(250, bytes((7, 0x10)) + COA, proto=6), FieldValueError, "Payload Proto 6"),
        (_frame_raw(250, bytes(10)), TruncatedError, "24"),
        (_frame_raw(251, bytes(2)), TruncatedError, "Status Code"),
    ]
    # PadN and Pad1 after the last MAC (P2: nothing follows it).
    cases.append((_req_raw(mnid + mac + b"\x01\x00"), OptionOrderError, "PadN"))
    cases.append(
        (_frame_raw(250, bytes((7, 0x10)) + COA + mac + b"\x00"), OptionOrderError, "Pad1")
    )
    for wire, error, words in cases:
        with raises(error, match=words):
            decode_message(wire)


def test_encoder_refuses_what_the_decoder_would_reject() -> None:
    with raises(LocalProtocolError, match="non-MAC option after"):
        _req(MN_HKS, MobileNodeIdentifier(NAI)).encode()
    with raises(LocalProtocolError, match="two mn-id"):
        _req(MobileNodeIdentifier(NAI), MobileNodeIdentifier(NAI)).encode()
    with raises(LocalProtocolError, match="15 octets"):
        HandoverNonce(2, bytes(15))
    with raises(LocalProtocolError, match="0 octets"):
        MobileNodeIdentifier(b"")
    with raises(LocalProtocolError, match="one octet"):
        HKReq(256, False, 1)
    with raises(LocalProtocolError, match="exceeds"):
        _req(*(UnknownOption(200, bytes(255)) for _ in range(9))).encode()
    with raises(LocalProtocolError, match="padding"):
        _req(UnknownOption(1, b"\x00")).encode()


def test_non_bytes_input_is_a_decode_error() -> None:
    with raises(FieldValueError, match="expected bytes"):
        decode_message("not bytes")  # type: ignore[arg-type]
