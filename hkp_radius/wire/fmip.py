"""FMIPv6 Fast Binding Update and Fast Binding Acknowledgement with the Binding
Authorization Data for FMIPv6 option (RFC 5568 §6.3.1, §6.3.2, §6.4.5), PROFILE P11.

The HK exists to authenticate the FBU (draft §1.1, §4), so these messages use RFC 5568's
own IANA numbers (not our P1 code points): any FMIPv6 decoder reads them. The codec is
separate from HKReq/HKResp because its numbers are fixed; the crypto lives in
`hkp_radius.crypto.fmip`.

Framing (RFC 6275 §6.1, §6.2): the BADF is the last option, placed at 8n+6 so that its
SPI is 8-aligned, its Authenticator 4-aligned and the message ends on an 8-octet boundary
without trailing padding. The Alternate Care-of Address option (type 3) sits at 8n+6
(RFC 6275 §6.2.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from hkp_radius.constants import IPV6_ADDRESS_LENGTH, MH_ALIGNMENT
from hkp_radius.constants import MH_PAYLOAD_PROTO_NONE as PAYLOAD_PROTO_NONE
from hkp_radius.errors import (
    FieldValueError,
    LengthMismatchError,
    LocalProtocolError,
    OptionLengthError,
    OptionOrderError,
    TruncatedError,
    UnknownMessageTypeError,
)
from hkp_radius.wire.reader import Reader

# IANA Mobility Header types and mobility options (RFC 5568 §9, RFC 6275 §6.1.2, §6.2).
MH_TYPE_FBU = 8
MH_TYPE_FBACK = 9
OPTION_PAD1 = 0
OPTION_PADN = 1
OPTION_ALTERNATE_COA = 3
OPTION_BADF = 21
# RFC 6275 §6.2.7: First(96, HMAC_SHA1(...)), the construction RFC 5568 §6.4.5 reuses.
BADF_AUTHENTICATOR_LENGTH = 12
BADF_SPI_LENGTH = 4
BADF_LENGTH = BADF_SPI_LENGTH + BADF_AUTHENTICATOR_LENGTH  # erratum E1: RFC 6275 §6.2 framing
# RFC 5269: SPI 0 means a SEND-distributed key; P6 SPIs start at 256.
BADF_SEND_SPI = 0
FIXED_LENGTH = 6  # FBU: Sequence | flags | Lifetime; FBack: Status | K | Sequence | Lifetime
COMMON_LENGTH = 6  # Payload Proto, Header Len, MH Type, Reserved, Checksum
CHECKSUM_OFFSET = 4
FBU_FLAG_ACK = 0x8000  # A
FBU_FLAG_HOME = 0x4000  # H
FBU_FLAG_LINK_LOCAL = 0x2000  # L
FBU_FLAG_KEY_MANAGEMENT = 0x1000  # K
FBACK_FLAG_KEY_MANAGEMENT = 0x80  # K
FBACK_ACCEPTED = 0  # RFC 5568 §6.3.2: "Fast Binding Update accepted"
SEQUENCE_MODULUS = 1 << 16
_ALIGN_BADF = 6  # offset of the BADF modulo 8
_ALIGN_ALTERNATE_COA = 6  # RFC 6275 §6.2.5: 8n+6
__all__ = [
    "BADF_AUTHENTICATOR_LENGTH",
    "FBACK_ACCEPTED",
    "MH_TYPE_FBACK",
    "MH_TYPE_FBU",
    "OPTION_BADF",
    "AlternateCareOfAddress",
    "BindingAuthorizationFMIP",
    "FastBindingAck",
    "FastBindingUpdate",
    "FmipMessage",
    "FmipOption",
    "RawFmipOption",
    "decode_fmip",
    "fmip_type",
    "sequence_newer",
]


@dataclass(frozen=True)
class AlternateCareOfAddress:
    """RFC 6275 §6.2.5 (RFC 5568 §6.3.1: the NCoA, in an FBU sent from the PAR's link)."""

    address: bytes

    def __post_init__(self) -> None:
        if len(self.address) != IPV6_ADDRESS_LENGTH:
            raise LocalProtocolError("Alternate Care-of Address must be 16 octets")

    def encode(self) -> bytes:
        return bytes((OPTION_ALTERNATE_COA, IPV6_ADDRESS_LENGTH)) + self.address


@dataclass(frozen=True)
class BindingAuthorizationFMIP:
    """RFC 5568 §6.4.5: Type | Option Length | SPI | Authenticator.

    Option Length is 16, SPI and Authenticator, by RFC 6275 §6.2's rule for every
    mobility option ("excluding the Option Type and Option Length fields"): RFC 5568's
    text says "the length of the Authenticator" (12), which a generic option parser
    would misframe (erratum E1, docs/decisions.md). An empty `authenticator`
    means "to be computed" (`crypto.fmip.sign_fmip`); the encoder writes zeros there."""

    spi: int
    authenticator: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.spi <= 0xFFFFFFFF:
            raise LocalProtocolError("BADF SPI does not fit 32 bits")
        if self.authenticator and len(self.authenticator) != BADF_AUTHENTICATOR_LENGTH:
            raise LocalProtocolError("BADF Authenticator must be 12 octets (First(96, ...))")

    def encode(self) -> bytes:
        auth = self.authenticator or bytes(BADF_AUTHENTICATOR_LENGTH)
        return bytes((OPTION_BADF, BADF_LENGTH)) + self.spi.to_bytes(4, "big") + auth


@dataclass(frozen=True)
class RawFmipOption:
    """Any other mobility option, kept byte for byte (RFC 6275 §6.2: skipped)."""

    option_type: int
    data: bytes

    def __post_init__(self) -> None:
        if self.option_type in (OPTION_PAD1, OPTION_PADN, OPTION_BADF):
            raise LocalProtocolError("padding and the BADF are not raw options")
        if not 0 <= self.option_type <= 255 or len(self.data) > 255:
            raise LocalProtocolError("option does not fit its type and length octets")

    def encode(self) -> bytes:
        return bytes((self.option_type, len(self.data))) + self.data


FmipOption = Union[AlternateCareOfAddress, RawFmipOption]


def _padding(count: int) -> bytes:
    if count == 0:
        return b""
    if count == 1:
        return bytes((OPTION_PAD1,))
    return bytes((OPTION_PADN, count - 2)) + bytes(count - 2)


def _pad_to(offset: int, alignment: int) -> bytes:
    return _padding((alignment - offset) % MH_ALIGNMENT)


def _frame(
    mh_type: int, fixed: bytes, options: tuple[FmipOption, ...], badf: BindingAuthorizationFMIP
) -> bytes:
    body = bytearray(fixed)
    for option in options:
        if isinstance(option, AlternateCareOfAddress):
            body += _pad_to(COMMON_LENGTH + len(body), _ALIGN_ALTERNATE_COA)
        body += option.encode()
    body += _pad_to(COMMON_LENGTH + len(body), _ALIGN_BADF)
    body += badf.encode()
    total = COMMON_LENGTH + len(body)
    assert total % MH_ALIGNMENT == 0  # the BADF at 8n+6 is 18 octets long
    header = bytes((PAYLOAD_PROTO_NONE, total // MH_ALIGNMENT - 1, mh_type, 0, 0, 0))
    return header + bytes(body)


class _Options:
    options: tuple[FmipOption, ...]

    @property
    def alternate_coa(self) -> bytes | None:
        for option in self.options:
            if isinstance(option, AlternateCareOfAddress):
                return option.address
        return None


@dataclass(frozen=True)
class FastBindingUpdate(_Options):
    """RFC 5568 §6.3.1 (the RFC 6275 §6.1.7 Binding Update format, MH type 8):
    Sequence # | A | H | L | K | Reserved | Lifetime (units of 4 s) | options | BADF."""

    sequence: int
    badf: BindingAuthorizationFMIP
    lifetime: int = 0
    ack_requested: bool = True
    home_registration: bool = False
    link_local: bool = False
    key_management: bool = False
    options: tuple[FmipOption, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.sequence < SEQUENCE_MODULUS or not 0 <= self.lifetime <= 0xFFFF:
            raise LocalProtocolError("FBU Sequence # and Lifetime are 16-bit fields")

    def encode(self) -> bytes:
        flags = (
            (FBU_FLAG_ACK if self.ack_requested else 0)
            | (FBU_FLAG_HOME if self.home_registration else 0)
            | (FBU_FLAG_LINK_LOCAL if self.link_local else 0)
            | (FBU_FLAG_KEY_MANAGEMENT if self.key_management else 0)
        )
        fixed = (
            self.sequence.to_bytes(2, "big") + flags.to_bytes(2, "big")
        ) + self.lifetime.to_bytes(2, "big")
        return _frame(MH_TYPE_FBU, fixed, self.options, self.badf)


@dataclass(frozen=True)
class FastBindingAck(_Options):
    """RFC 5568 §6.3.2 (MH type 9): Status | K | Reserved | Sequence # | Lifetime |
    options | BADF."""

    status: int
    sequence: int
    badf: BindingAuthorizationFMIP
    lifetime: int = 0
    key_management: bool = False
    options: tuple[FmipOption, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.status <= 0xFF:
            raise LocalProtocolError("FBack Status is an 8-bit field")
        if not 0 <= self.sequence < SEQUENCE_MODULUS or not 0 <= self.lifetime <= 0xFFFF:
            raise LocalProtocolError("FBack Sequence # and Lifetime are 16-bit fields")

    def encode(self) -> bytes:
        fixed = bytes((self.status, FBACK_FLAG_KEY_MANAGEMENT if self.key_management else 0))
        fixed += self.sequence.to_bytes(2, "big") + self.lifetime.to_bytes(2, "big")
        return _frame(MH_TYPE_FBACK, fixed, self.options, self.badf)


FmipMessage = Union[FastBindingUpdate, FastBindingAck]


def fmip_type(data: bytes) -> int | None:
    """8 or 9 when `data` looks like an FBU or FBack (MH Type octet), else None: lets an
    adapter route a datagram before decoding it."""
    if len(data) >= COMMON_LENGTH and data[2] in (MH_TYPE_FBU, MH_TYPE_FBACK):
        return data[2]
    return None


def sequence_newer(candidate: int, last: int) -> bool:
    """RFC 6275 §9.5.1: `candidate` is greater than `last` modulo 2**16."""
    return 0 < (candidate - last) % SEQUENCE_MODULUS < SEQUENCE_MODULUS // 2


def _decode_options(reader: Reader) -> tuple[tuple[FmipOption, ...], BindingAuthorizationFMIP]:
    options: list[FmipOption] = []
    badf: BindingAuthorizationFMIP | None = None
    while reader.remaining():
        start = reader.position
        option_type = reader.u8("option type")
        if badf is not None:
            # RFC 5568 §6.4.5: the BADF is last; P11: its Authenticator ends the message.
            raise OptionOrderError(f"option {option_type} at offset {start} after the BADF")
        if option_type == OPTION_PAD1:
            continue
        length = reader.u8("option length")
        if option_type == OPTION_BADF:
            if length != BADF_LENGTH:
                raise OptionLengthError(
                    f"BADF at offset {start}: Option Length {length}, P11 uses {BADF_LENGTH}"
                )
            sub = reader.restrict_to(length, "BADF")
            spi = sub.u32("BADF SPI")
            badf = BindingAuthorizationFMIP(
                spi, sub.read(BADF_AUTHENTICATOR_LENGTH, "Authenticator")
            )
            continue
        data = reader.restrict_to(length, f"option {option_type}").read(length, "option data")
        if option_type == OPTION_PADN:
            continue
        if option_type == OPTION_ALTERNATE_COA:
            if length != IPV6_ADDRESS_LENGTH:
                raise OptionLengthError(f"Alternate CoA of {length} octets at offset {start}")
            options.append(AlternateCareOfAddress(data))
        else:
            options.append(RawFmipOption(option_type, data))
    if badf is None:
        raise FieldValueError("no Binding Authorization Data for FMIPv6 option (P11: MUST)")
    return tuple(options), badf


def decode_fmip(data: bytes) -> FmipMessage:
    """An FBU or FBack from the Payload Proto octet to the end. Raises DecodeError
    subclasses only."""
    reader = Reader(data)
    if reader.u8("Payload Proto") != PAYLOAD_PROTO_NONE:
        raise FieldValueError("Payload Proto must be 59 (no next header)")
    length = (reader.u8("Header Len") + 1) * MH_ALIGNMENT
    if length != len(data):
        if length > len(data):
            raise TruncatedError(f"Header Len says {length} octets, {len(data)} held")
        raise LengthMismatchError(f"Header Len says {length} octets, {len(data)} held")
    mh_type = reader.u8("MH Type")
    reader.u8("Reserved")
    reader.u16("Checksum")
    if mh_type == MH_TYPE_FBU:
        sequence = reader.u16("Sequence #")
        flags = reader.u16("flags")
        lifetime = reader.u16("Lifetime")
        options, badf = _decode_options(reader)
        return FastBindingUpdate(
            sequence=sequence,
            badf=badf,
            lifetime=lifetime,
            ack_requested=bool(flags & FBU_FLAG_ACK),
            home_registration=bool(flags & FBU_FLAG_HOME),
            link_local=bool(flags & FBU_FLAG_LINK_LOCAL),
            key_management=bool(flags & FBU_FLAG_KEY_MANAGEMENT),
            options=options,
        )
    if mh_type == MH_TYPE_FBACK:
        status = reader.u8("Status")
        flags = reader.u8("flags")
        sequence = reader.u16("Sequence #")
        lifetime = reader.u16("Lifetime")
        options, badf = _decode_options(reader)
        return FastBindingAck(
            status=status,
            sequence=sequence,
            badf=badf,
            lifetime=lifetime,
            key_management=bool(flags & FBACK_FLAG_KEY_MANAGEMENT),
            options=options,
        )
    raise UnknownMessageTypeError(f"MH Type {mh_type} is neither FBU (8) nor FBack (9)")
