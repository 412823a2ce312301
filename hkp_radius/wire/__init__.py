"""The wire codec: the bounds-checked reader, mobility options, HKReq/HKResp, NTP
timestamps (P5), the RADIUS attribute layer (P8) and FMIPv6 FBU/FBack (`fmip`, P11)."""

from __future__ import annotations

from . import fmip, ntp, radius_attrs
from .messages import (
    MH_COMMON_LENGTH,
    PRF_MASK,
    PRF_SHIFT,
    V_FLAG,
    HKReq,
    HKResp,
    Message,
    decode_message,
    message_type,
    mh_checksum,
    with_checksum,
)
from .options import (
    MAC_AUTH_LENGTHS,
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
    UnknownOption,
    check_option_sequence,
    decode_options,
    option_registry,
    padding,
)
from .reader import Reader

__all__ = [
    "MAC_AUTH_LENGTHS",
    "MH_COMMON_LENGTH",
    "PRF_MASK",
    "PRF_SHIFT",
    "V_FLAG",
    "HKReq",
    "HKResp",
    "HandoverNonce",
    "MacOption",
    "Message",
    "MobileNodeIdentifier",
    "Option",
    "Reader",
    "Timestamp",
    "UnknownOption",
    "check_option_sequence",
    "decode_message",
    "decode_options",
    "fmip",
    "message_type",
    "mh_checksum",
    "ntp",
    "option_registry",
    "padding",
    "radius_attrs",
    "with_checksum",
]
