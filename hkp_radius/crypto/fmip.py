"""The BADF Authenticator (RFC 5568 §6.4.5, PROFILE P11) as pure functions.

RFC 5568 §6.4.5 takes the RFC 6275 §6.2.7 construction with "correspondent" replaced by
the PAR's address and Kbm by the key the MN shares with the PAR, here the HK:

    Mobility Data = care-of address | PAR address | MH Data
    Authenticator = First(96, HMAC_SHA1(HK, Mobility Data))

MH Data is the message up to and excluding the Authenticator (the BADF is last, so the
Authenticator is the last 12 octets), with the Checksum taken as zero. The care-of
address is the MN's CoA at the PAR, the one the PAR bound to the HK (draft §7.4, P6), for
the FBU and the FBack alike. No function here logs; no exception carries a key.
"""

from __future__ import annotations

import hashlib
import hmac

from hkp_radius.constants import IPV6_ADDRESS_LENGTH
from hkp_radius.errors import LocalProtocolError
from hkp_radius.wire.fmip import (
    BADF_AUTHENTICATOR_LENGTH,
    CHECKSUM_OFFSET,
    BindingAuthorizationFMIP,
    FmipMessage,
)

__all__ = ["badf_authenticator", "sign_fmip", "verify_badf"]


def _mobility_data(wire: bytes, care_of_address: bytes, par_address: bytes) -> bytes:
    if len(care_of_address) != IPV6_ADDRESS_LENGTH or len(par_address) != IPV6_ADDRESS_LENGTH:
        raise LocalProtocolError("the CoA and the PAR address must be 16-octet IPv6 addresses")
    mh_data = (
        wire[:CHECKSUM_OFFSET] + b"\0\0" + wire[CHECKSUM_OFFSET + 2 : -BADF_AUTHENTICATOR_LENGTH]
    )
    return care_of_address + par_address + mh_data


def badf_authenticator(hk: bytes, wire: bytes, care_of_address: bytes, par_address: bytes) -> bytes:
    """First(96, HMAC_SHA1(HK, Mobility Data)) of an encoded FBU or FBack `wire` (whatever
    its Authenticator octets hold)."""
    data = _mobility_data(wire, care_of_address, par_address)
    return hmac.new(hk, data, hashlib.sha1).digest()[:BADF_AUTHENTICATOR_LENGTH]


def sign_fmip(message: FmipMessage, hk: bytes, care_of_address: bytes, par_address: bytes) -> bytes:
    """`message` encoded with its BADF Authenticator filled in (checksum left zero)."""
    if message.badf.authenticator:
        raise LocalProtocolError("the BADF Authenticator is computed here; leave it empty")
    unsigned = message.encode()
    auth = badf_authenticator(hk, unsigned, care_of_address, par_address)
    return unsigned[:-BADF_AUTHENTICATOR_LENGTH] + auth


def verify_badf(
    wire: bytes,
    badf: BindingAuthorizationFMIP,
    hk: bytes,
    care_of_address: bytes,
    par_address: bytes,
) -> bool:
    """Whether the decoded message `wire` carries the right Authenticator (constant time)."""
    expected = badf_authenticator(hk, wire, care_of_address, par_address)
    return hmac.compare_digest(expected, badf.authenticator)
