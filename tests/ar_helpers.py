"""An MN's side of the AR tests, from the codec and crypto alone: build HKReqs (also
broken ones), derive the HK independently, check HKResps. Shared by the AR role tests
and the AR integration tests."""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import time

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.ntp import to_ntp
from hkp_radius.wire.options import (
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
)

NAI = b"alice@example.net"
NAI2 = b"bob@example.net"
HMK = bytes(range(64))
HMK2 = bytes(range(100, 164))
AR_ID = ipaddress.IPv6Address("2001:db8::1").packed
COA = ipaddress.IPv6Address("2001:db8::100").packed
COA2 = ipaddress.IPv6Address("2001:db8::200").packed


_stamps = itertools.count(1)


def wall_stamp() -> int:
    """An NTP timestamp of the real clock, for requests to a real AR and HKS: strictly
    increasing within this process (a counter in the low fraction bits), as the HKS's
    and the AR's replay checks (P5, P6) want of one MN's requests."""
    return to_ntp(time.time(), next(_stamps) & 0xFFFF, 16)


def ip6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def mn_nonce(message_id: int, salt: bytes = b"") -> bytes:
    return hashlib.sha256(b"mn-nonce" + salt + bytes((message_id,))).digest()[:16]


def build_hkreq(
    *,
    message_id: int = 7,
    nai: bytes | None = NAI,
    hmk: bytes = HMK,
    coa: bytes = COA,
    timestamp: int | None = None,
    verify: bool = False,
    hk: bytes | None = None,
    with_hks_mac: bool = True,
    prf: int = PRF.HMAC_SHA1,
    algorithm: int = MacAlgorithm.HMAC_SHA1,
    nonce: bytes | None = None,
) -> bytes:
    """An HKReq as an MN sends it (draft §6.2.1, §6.2.3, P2, P3). `hk` adds an MN-AR MAC."""
    options: list[Option] = []
    if nai is not None:
        options.append(MobileNodeIdentifier(nai))
    if with_hks_mac or not verify:
        options.append(HandoverNonce(NonceSubtype.MN_NONCE, nonce or mn_nonce(message_id)))
    if timestamp is not None:
        options.append(Timestamp(timestamp))
    keys: dict[MacSubtype, bytes] = {}
    if with_hks_mac:
        options.append(MacOption(MacSubtype.MN_HKS, algorithm))
        keys[MacSubtype.MN_HKS] = crypto.derive_hik(hmk, prf, message_id, algorithm)
    if hk is not None:
        options.append(MacOption(MacSubtype.MN_AR, algorithm))
        keys[MacSubtype.MN_AR] = hk
    request = HKReq(message_id, verify, prf, coa, tuple(options))
    if not keys:
        return request.encode()
    return crypto.sign_message(request, keys)


def expected_hk(
    hks_nonce: bytes,
    *,
    message_id: int = 7,
    nai: bytes = NAI,
    hmk: bytes = HMK,
    ar_id: bytes = AR_ID,
    prf: int = PRF.HMAC_SHA1,
    nonce: bytes | None = None,
) -> bytes:
    """Draft §6.1.2 / P4, derived on the MN's side."""
    return crypto.derive_hk(hmk, prf, nonce or mn_nonce(message_id), hks_nonce, nai, ar_id)


def decode_hkresp(wire: bytes) -> HKResp:
    message = decode_message(wire)
    assert isinstance(message, HKResp)
    return message


def verified_hkresp(wire: bytes, **hk_args: object) -> tuple[HKResp, bytes]:
    """Derive the HK from the HKResp's HKS-Nonce and check its MN-AR MAC (§6.2.2)."""
    response = decode_hkresp(wire)
    assert response.hks_nonce is not None, "no HKS-Nonce in a Success HKResp"
    hk = expected_hk(response.hks_nonce, **hk_args)  # type: ignore[arg-type]
    assert crypto.verify_mac(wire, response, MacSubtype.MN_AR, hk), "MN-AR MAC does not verify"
    return response, hk
