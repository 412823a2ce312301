"""HKReq and HKResp (draft §5.1) in Mobility Header framing (RFC 6275 §6.1), PROFILE P2.

Frozen dataclasses with symmetric `encode()` / `decode()`. `encode()` inserts padding
immediately before the first MAC option (at the end when there is none), computes
Header Len and leaves the Checksum zero (P3: the MAC covers a zero checksum; the kernel
or `mh_checksum` fills it for raw IPv6, and it stays zero over UDP, P9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from hkp_radius.constants import (
    DEFAULT_CODE_POINTS,
    HKREQ_FIXED_LENGTH,
    IPPROTO_MH,
    IPV6_ADDRESS_LENGTH,
    MH_ALIGNMENT,
    MH_MAX_LENGTH,
    MH_PAYLOAD_PROTO_NONE,
    MN_ID_SUBTYPE_NAI,
    NULL_COA,
    CodePoints,
    MacSubtype,
    MHType,
    NonceSubtype,
)
from hkp_radius.errors import (
    FieldValueError,
    LengthMismatchError,
    LocalProtocolError,
    TruncatedError,
    UnknownMessageTypeError,
)
from hkp_radius.wire.options import (
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
    check_option_sequence,
    decode_options,
    padding,
)
from hkp_radius.wire.reader import Reader

MH_COMMON_LENGTH = 6  # Payload Proto, Header Len, MH Type, Reserved, Checksum
V_FLAG = 0x80
PRF_SHIFT = 4
PRF_MASK = 0x07


class _OptionAccessors:
    """Read-only views over `options` shared by both messages."""

    options: tuple[Option, ...]

    def _first(self, cls: type, **match: int) -> Option | None:
        for option in self.options:
            if isinstance(option, cls) and all(getattr(option, k) == v for k, v in match.items()):
                return option
        return None

    @property
    def mn_id(self) -> bytes | None:
        option = self._first(MobileNodeIdentifier, subtype=MN_ID_SUBTYPE_NAI)
        return option.nai if isinstance(option, MobileNodeIdentifier) else None

    @property
    def mn_nonce(self) -> bytes | None:
        option = self._first(HandoverNonce, subtype=NonceSubtype.MN_NONCE)
        return option.nonce if isinstance(option, HandoverNonce) else None

    @property
    def hks_nonce(self) -> bytes | None:
        option = self._first(HandoverNonce, subtype=NonceSubtype.HKS_NONCE)
        return option.nonce if isinstance(option, HandoverNonce) else None

    @property
    def timestamp(self) -> int | None:
        option = self._first(Timestamp)
        return option.value if isinstance(option, Timestamp) else None

    def mac(self, subtype: MacSubtype) -> MacOption | None:
        option = self._first(MacOption, subtype=subtype)
        return option if isinstance(option, MacOption) else None


def _flags_octet(verify: bool, prf: int) -> int:
    if not 0 <= prf <= PRF_MASK:
        raise LocalProtocolError(f"PRF {prf} does not fit the 3-bit PRF field")
    return (V_FLAG if verify else 0) | (prf << PRF_SHIFT)


def _frame(mh_type: int, fixed: bytes, options: tuple[Option, ...], cp: CodePoints) -> bytes:
    check_option_sequence(options, decoding=False)
    head = [o.encode(cp) for o in options if not isinstance(o, MacOption)]
    macs = [o.encode(cp) for o in options if isinstance(o, MacOption)]
    body_length = MH_COMMON_LENGTH + len(fixed) + sum(map(len, head)) + sum(map(len, macs))
    pad = padding(-body_length % MH_ALIGNMENT, cp)
    total = body_length + len(pad)
    if total > MH_MAX_LENGTH:
        raise LocalProtocolError(
            f"message of {total} octets exceeds the MH maximum {MH_MAX_LENGTH}"
        )
    header = bytes((MH_PAYLOAD_PROTO_NONE, total // MH_ALIGNMENT - 1, mh_type, 0, 0, 0))
    return b"".join([header, fixed, *head, pad, *macs])


def mac_offsets(
    message: HKReq | HKResp, wire: bytes, cp: CodePoints = DEFAULT_CODE_POINTS
) -> list[tuple[MacOption, int]]:
    """Where `message.encode(cp)` (= `wire`) put each MAC option: _frame writes them
    last, in their order, after the padding. Saves sign_message a decode of its own
    output (issue 14: half the cost of signing)."""
    macs = [o for o in message.options if isinstance(o, MacOption)]
    sizes = [len(o.encode(cp)) for o in macs]
    at = len(wire) - sum(sizes)
    placed = []
    for option, size in zip(macs, sizes, strict=True):
        placed.append((option, at))
        at += size
    return placed


@dataclass(frozen=True)
class HKReq(_OptionAccessors):
    """Draft §5.1.1: Message ID | V | PRF | Reserved | Key CoA | options."""

    message_id: int
    verify: bool
    prf: int
    care_of_address: bytes = NULL_COA
    options: tuple[Option, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.message_id <= 255:
            raise LocalProtocolError("Message ID is one octet (draft -04 §5.1.1)")
        if len(self.care_of_address) != IPV6_ADDRESS_LENGTH:
            raise LocalProtocolError("Key Care-of Address must be 16 octets")

    @property
    def coa_is_null(self) -> bool:
        return self.care_of_address == NULL_COA

    def encode(self, code_points: CodePoints = DEFAULT_CODE_POINTS) -> bytes:
        fixed = bytes((self.message_id, _flags_octet(self.verify, self.prf))) + self.care_of_address
        return _frame(code_points.hkreq, fixed, self.options, code_points)

    @classmethod
    def decode(cls, data: bytes, code_points: CodePoints = DEFAULT_CODE_POINTS) -> HKReq:
        message = decode_message(data, code_points)
        if not isinstance(message, HKReq):
            raise UnknownMessageTypeError("expected an HKReq, got an HKResp")
        return message


@dataclass(frozen=True)
class HKResp(_OptionAccessors):
    """Draft §5.1.2: Message ID | V | PRF | Reserved | Status | 0 | Lifetime | SPI | options."""

    message_id: int
    verify: bool
    prf: int
    status: int
    lifetime: int = 0
    spi: int = 0
    options: tuple[Option, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.message_id <= 255:
            raise LocalProtocolError("Message ID is one octet (draft -04 §5.1.2)")
        if not 0 <= self.status <= 255:
            raise LocalProtocolError("Status Code is one octet (P2)")
        if not 0 <= self.lifetime <= 0xFFFF:
            raise LocalProtocolError("Lifetime is 16 bits (P2)")
        if not 0 <= self.spi <= 0xFFFFFFFF:
            raise LocalProtocolError("SPI is 32 bits")

    def encode(self, code_points: CodePoints = DEFAULT_CODE_POINTS) -> bytes:
        fixed = (
            bytes((self.message_id, _flags_octet(self.verify, self.prf), self.status, 0))
            + self.lifetime.to_bytes(2, "big")
            + self.spi.to_bytes(4, "big")
        )
        return _frame(code_points.hkresp, fixed, self.options, code_points)

    @classmethod
    def decode(cls, data: bytes, code_points: CodePoints = DEFAULT_CODE_POINTS) -> HKResp:
        message = decode_message(data, code_points)
        if not isinstance(message, HKResp):
            raise UnknownMessageTypeError("expected an HKResp, got an HKReq")
        return message


Message = Union[HKReq, HKResp]


def message_type(data: bytes, code_points: CodePoints = DEFAULT_CODE_POINTS) -> MHType | None:
    """Which of our messages `data` claims to be, without decoding it."""
    if len(data) < 3:
        return None
    return {code_points.hkreq: MHType.HKREQ, code_points.hkresp: MHType.HKRESP}.get(data[2])


def decode_message(data: bytes, code_points: CodePoints = DEFAULT_CODE_POINTS) -> Message:
    """Decode an HKReq or HKResp. Raises only DecodeError subclasses."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FieldValueError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    reader = Reader(data)
    payload_proto = reader.u8("Payload Proto")
    header_len = reader.u8("Header Len")
    mh_type = reader.u8("MH Type")
    reader.u8("Reserved")  # RFC 6275 §6.1.1: ignored by the receiver
    reader.u16("Checksum")  # checked by the kernel (raw IPv6) or UDP (P9)
    declared = (header_len + 1) * MH_ALIGNMENT
    if declared != len(data):
        raise LengthMismatchError(
            f"Header Len {header_len} declares {declared} octets, the message has {len(data)}"
        )
    if payload_proto != MH_PAYLOAD_PROTO_NONE:
        raise FieldValueError(f"Payload Proto {payload_proto}, expected 59 (no next header)")
    if mh_type == code_points.hkreq:
        if len(data) < HKREQ_FIXED_LENGTH:
            raise TruncatedError(
                f"HKReq of {len(data)} octets, its fixed part needs {HKREQ_FIXED_LENGTH}"
            )
        message_id = reader.u8("Message ID")
        flags = reader.u8("V/PRF")
        coa = reader.read(IPV6_ADDRESS_LENGTH, "Key Care-of Address")
        options = decode_options(reader, code_points)
        return HKReq(
            message_id, bool(flags & V_FLAG), (flags >> PRF_SHIFT) & PRF_MASK, coa, options
        )
    if mh_type == code_points.hkresp:
        message_id = reader.u8("Message ID")
        flags = reader.u8("V/PRF")
        status = reader.u8("Status Code")
        reader.u8("Reserved")  # P2: zero on send, ignored on receipt
        lifetime = reader.u16("Lifetime")
        spi = reader.u32("SPI")
        options = decode_options(reader, code_points)
        return HKResp(
            message_id,
            bool(flags & V_FLAG),
            (flags >> PRF_SHIFT) & PRF_MASK,
            status,
            lifetime,
            spi,
            options,
        )
    raise UnknownMessageTypeError(f"MH Type {mh_type} is neither HKReq nor HKResp")


def mh_checksum(source: bytes, destination: bytes, mh: bytes) -> int:
    """RFC 6275 §6.1.1: Internet checksum over the IPv6 pseudo-header (RFC 8200 §8.1,
    Next Header 135) and the MH with its Checksum field taken as zero."""
    if len(source) != IPV6_ADDRESS_LENGTH or len(destination) != IPV6_ADDRESS_LENGTH:
        raise LocalProtocolError("checksum addresses must be 16 octets")
    zeroed = mh[:4] + b"\x00\x00" + mh[6:]
    pseudo = source + destination + len(mh).to_bytes(4, "big") + bytes(3) + bytes((IPPROTO_MH,))
    data = pseudo + zeroed
    if len(data) % 2:
        data += b"\x00"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_checksum(source: bytes, destination: bytes, mh: bytes) -> bytes:
    """The MH with its Checksum field filled in."""
    return mh[:4] + mh_checksum(source, destination, mh).to_bytes(2, "big") + mh[6:]
