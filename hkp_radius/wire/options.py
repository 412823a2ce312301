"""Mobility options (draft §5.2, RFC 4283, RFC 6275 §6.2) under PROFILE P2.

One immutable class per option kind, a registry from code point to decoder, and a
generic fallback (`UnknownOption`) that keeps unknown options intact (RFC 6275 §6.2:
skipped, and still covered by the MAC). Pad1/PadN are framing: the encoder inserts
them, the decoder drops them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Union

from hkp_radius.constants import (
    DEFAULT_CODE_POINTS,
    MN_ID_SUBTYPE_NAI,
    NAI_MAX_LENGTH,
    NAI_MIN_LENGTH,
    NONCE_MAX_LENGTH,
    NONCE_MIN_LENGTH,
    TIMESTAMP_OPTION_LENGTH,
    CodePoints,
    MacAlgorithm,
    MacSubtype,
    NonceSubtype,
)
from hkp_radius.errors import (
    DuplicateOptionError,
    FieldValueError,
    HKPError,
    LocalProtocolError,
    OptionLengthError,
    OptionOrderError,
)
from hkp_radius.wire.reader import Reader

# P1: AUTH length per MAC Algorithm Type.
MAC_AUTH_LENGTHS: dict[int, int] = {MacAlgorithm.HMAC_SHA1: 20, MacAlgorithm.HMAC_SHA256: 32}


def _tlv(option_type: int, body: bytes) -> bytes:
    return bytes((option_type, len(body))) + body


@dataclass(frozen=True)
class HandoverNonce:
    """Draft §5.2.1: Subtype | Reserved | Nonce."""

    subtype: int
    nonce: bytes

    def __post_init__(self) -> None:
        if self.subtype not in NonceSubtype.__members__.values():
            raise LocalProtocolError(f"Handover Nonce subtype {self.subtype} is not 1 or 2")
        if not NONCE_MIN_LENGTH <= len(self.nonce) <= NONCE_MAX_LENGTH:
            raise LocalProtocolError(
                f"Handover Nonce of {len(self.nonce)} octets: P2 allows "
                f"{NONCE_MIN_LENGTH}-{NONCE_MAX_LENGTH}"
            )

    @property
    def kind(self) -> tuple[str, int]:
        return ("nonce", self.subtype)

    def encode(self, cp: CodePoints) -> bytes:
        return _tlv(cp.nonce_option, bytes((self.subtype, 0)) + self.nonce)


@dataclass(frozen=True)
class MacOption:
    """Draft §5.2.2: Subtype | Reserved(4) AT(4) | AUTH.

    An empty `auth` stands for "to be computed" (`crypto.sign_message`); the encoder
    writes zeros of the algorithm's length there. `offset` is where the option's
    Type octet sat in the decoded message (P3 needs it); it takes no part in equality.
    """

    subtype: int
    algorithm: int
    auth: bytes = b""
    offset: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.subtype not in MacSubtype.__members__.values():
            raise LocalProtocolError(f"MAC option subtype {self.subtype} is not 1 or 2")
        if not 0 <= self.algorithm <= 0x0F:
            raise LocalProtocolError(f"MAC Algorithm Type {self.algorithm} does not fit 4 bits")
        expected = MAC_AUTH_LENGTHS.get(self.algorithm)
        if self.auth and expected is not None and len(self.auth) != expected:
            raise LocalProtocolError("AUTH length does not match the MAC Algorithm Type")

    @property
    def kind(self) -> tuple[str, int]:
        return ("mac", self.subtype)

    def encode(self, cp: CodePoints) -> bytes:
        auth = self.auth
        if not auth:
            if self.algorithm not in MAC_AUTH_LENGTHS:
                raise LocalProtocolError(
                    f"cannot size the AUTH of unknown MAC Algorithm Type {self.algorithm}"
                )
            auth = bytes(MAC_AUTH_LENGTHS[self.algorithm])
        return _tlv(cp.mac_option, bytes((self.subtype, self.algorithm & 0x0F)) + auth)


@dataclass(frozen=True)
class Timestamp:
    """Draft §5.2.3: a 64-bit NTP timestamp (P5)."""

    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.value < 1 << 64:
            raise LocalProtocolError("timestamp does not fit 64 bits")

    @property
    def kind(self) -> tuple[str, int]:
        return ("timestamp", 0)

    def encode(self, cp: CodePoints) -> bytes:
        return _tlv(cp.timestamp_option, self.value.to_bytes(8, "big"))


@dataclass(frozen=True)
class MobileNodeIdentifier:
    """RFC 4283: Subtype | Identifier; subtype 1 is the NAI (P2)."""

    nai: bytes
    subtype: int = MN_ID_SUBTYPE_NAI

    def __post_init__(self) -> None:
        if not NAI_MIN_LENGTH <= len(self.nai) <= NAI_MAX_LENGTH:
            raise LocalProtocolError(
                f"MN identifier of {len(self.nai)} octets: P2 allows "
                f"{NAI_MIN_LENGTH}-{NAI_MAX_LENGTH}"
            )
        if not 0 <= self.subtype <= 255:
            raise LocalProtocolError("MN identifier subtype does not fit one octet")

    @property
    def kind(self) -> tuple[str, int]:
        return ("mn-id", 0)

    def encode(self, cp: CodePoints) -> bytes:
        return _tlv(cp.mn_id_option, bytes((self.subtype,)) + self.nai)


@dataclass(frozen=True)
class UnknownOption:
    """An option this implementation does not know: kept byte for byte."""

    option_type: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.option_type <= 255 or len(self.data) > 255:
            raise LocalProtocolError("unknown option does not fit its type and length octets")

    @property
    def kind(self) -> None:
        return None  # unknown options may repeat

    def encode(self, cp: CodePoints) -> bytes:
        if self.option_type in (cp.pad1_option, cp.padn_option):
            raise LocalProtocolError("padding is inserted by the encoder, not given as an option")
        return _tlv(self.option_type, self.data)


Option = Union[HandoverNonce, MacOption, Timestamp, MobileNodeIdentifier, UnknownOption]


# ---- decoding ------------------------------------------------------------------


_NONCE_SUBTYPES = frozenset(int(member) for member in NonceSubtype)
_MAC_SUBTYPES = frozenset(int(member) for member in MacSubtype)


def _decode_nonce(body: Reader, offset: int) -> Option:
    subtype = body.u8("Handover Nonce subtype")
    body.u8("Handover Nonce reserved")  # draft §5.2.1: ignored on reception
    nonce = body.read(body.remaining(), "Handover Nonce")
    if subtype not in _NONCE_SUBTYPES:
        raise FieldValueError(f"Handover Nonce at offset {offset}: unknown subtype {subtype}")
    if not NONCE_MIN_LENGTH <= len(nonce) <= NONCE_MAX_LENGTH:
        raise OptionLengthError(
            f"Handover Nonce at offset {offset}: {len(nonce)} octets, P2 allows "
            f"{NONCE_MIN_LENGTH}-{NONCE_MAX_LENGTH}"
        )
    return HandoverNonce(subtype, nonce)


def _decode_mac(body: Reader, offset: int) -> Option:
    subtype = body.u8("MAC option subtype")
    algorithm = body.u8("MAC option Algorithm Type") & 0x0F  # high nibble reserved, ignored
    auth = body.read(body.remaining(), "MAC AUTH")
    if subtype not in _MAC_SUBTYPES:
        raise FieldValueError(f"MAC option at offset {offset}: unknown subtype {subtype}")
    expected = MAC_AUTH_LENGTHS.get(algorithm)
    if expected is not None and len(auth) != expected:
        raise OptionLengthError(
            f"MAC option at offset {offset}: AUTH of {len(auth)} octets, "
            f"Algorithm Type {algorithm} needs {expected}"
        )
    if not auth:
        raise OptionLengthError(f"MAC option at offset {offset}: empty AUTH")
    return MacOption(subtype, algorithm, auth, offset)


def _decode_timestamp(body: Reader, offset: int) -> Option:
    if body.remaining() != TIMESTAMP_OPTION_LENGTH:
        raise OptionLengthError(
            f"Timestamp option at offset {offset}: length {body.remaining()}, P2 requires 8"
        )
    return Timestamp(body.u64("Timestamp"))


def _decode_mn_id(body: Reader, offset: int) -> Option:
    subtype = body.u8("MN identifier subtype")
    nai = body.read(body.remaining(), "MN identifier")
    if not NAI_MIN_LENGTH <= len(nai) <= NAI_MAX_LENGTH:
        raise OptionLengthError(
            f"MN identifier at offset {offset}: {len(nai)} octets, P2 allows "
            f"{NAI_MIN_LENGTH}-{NAI_MAX_LENGTH}"
        )
    return MobileNodeIdentifier(nai, subtype)


_Decoder = Callable[[Reader, int], Option]


@functools.cache  # one per CodePoints a deployment configures: built once, not per message
def option_registry(cp: CodePoints) -> dict[int, _Decoder]:
    """Code point -> decoder for the options this implementation knows."""
    return {
        cp.nonce_option: _decode_nonce,
        cp.mac_option: _decode_mac,
        cp.timestamp_option: _decode_timestamp,
        cp.mn_id_option: _decode_mn_id,
    }


def decode_options(reader: Reader, cp: CodePoints = DEFAULT_CODE_POINTS) -> tuple[Option, ...]:
    """Decode every option up to the reader's end, then check P2's order rules."""
    registry = option_registry(cp)
    options: list[Option] = []
    last_was_mac = False
    while reader.remaining():
        offset = reader.position
        option_type = reader.u8("option type")
        if option_type == cp.pad1_option:
            if last_was_mac:
                raise OptionOrderError(f"Pad1 at offset {offset} follows a MAC option (P2)")
            continue
        length = reader.u8("length of option %d at offset %d", option_type, offset)
        body = reader.restrict_to(length, "option %d at offset %d", option_type, offset)
        if option_type == cp.padn_option:
            if last_was_mac:
                raise OptionOrderError(f"PadN at offset {offset} follows a MAC option (P2)")
            continue
        decoder = registry.get(option_type)
        option = (
            decoder(body, offset)
            if decoder
            else UnknownOption(option_type, body.read(length, "unknown option"))
        )
        body.expect_end("option %d at offset %d", option_type, offset)
        is_mac = isinstance(option, MacOption)
        if last_was_mac and not is_mac:
            raise OptionOrderError(
                f"option {option_type} at offset {offset} follows a MAC option (P2: MACs come last)"
            )
        last_was_mac = is_mac
        options.append(option)
    check_option_sequence(options, decoding=True)
    return tuple(options)


def check_option_sequence(options: Iterable[Option], *, decoding: bool) -> None:
    """P2: no duplicate kinds; MAC options last, MN-HKS before MN-AR."""
    seen: set[tuple[str, int]] = set()
    macs_started = False
    last_mac_subtype = 0
    for option in options:
        kind = option.kind
        if kind is not None:
            if kind in seen:
                _fail(DuplicateOptionError, f"two {kind[0]} options of one kind (P2)", decoding)
            seen.add(kind)
        if isinstance(option, MacOption):
            if option.subtype < last_mac_subtype:
                _fail(OptionOrderError, "MN-AR MAC before MN-HKS MAC (P2)", decoding)
            last_mac_subtype = option.subtype
            macs_started = True
        elif macs_started:
            _fail(OptionOrderError, "a non-MAC option after a MAC option (P2)", decoding)


def _fail(decode_error: type[HKPError], message: str, decoding: bool) -> None:
    raise decode_error(message) if decoding else LocalProtocolError(message)


def padding(count: int, cp: CodePoints) -> bytes:
    """RFC 6275 §6.2.1-2: Pad1 for one octet, PadN (zero content) for more."""
    if count == 0:
        return b""
    if count == 1:
        return bytes((cp.pad1_option,))
    return bytes((cp.padn_option, count - 2)) + bytes(count - 2)
