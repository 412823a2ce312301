"""Key derivation and MACs as pure functions: draft §6.1, PROFILE P3 and P4.

No function here logs, and no exception message carries key material.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping

from hkp_radius.constants import (
    DEFAULT_CODE_POINTS,
    HIK_LABEL,
    HK_DEFAULT_LENGTH,
    HK_LABEL,
    HK_MAX_LENGTH,
    HMK_MIN_LENGTH,
    IPV6_ADDRESS_LENGTH,
    PRF,
    CodePoints,
    MacAlgorithm,
    MacSubtype,
)
from hkp_radius.errors import DecodeError, HMKTooShortError, LocalProtocolError
from hkp_radius.wire.messages import Message, decode_message
from hkp_radius.wire.options import MAC_AUTH_LENGTHS, MacOption

_HASHES: dict[int, Callable[[], hashlib._Hash]] = {
    PRF.HMAC_SHA1: hashlib.sha1,
    PRF.HMAC_SHA256: hashlib.sha256,
}
_MAC_HASHES: dict[int, Callable[[], hashlib._Hash]] = {
    MacAlgorithm.HMAC_SHA1: hashlib.sha1,
    MacAlgorithm.HMAC_SHA256: hashlib.sha256,
}
# P3 data ends with the MAC option's AT octet: Type, Length, Subtype, AT.
MAC_OPTION_HEADER_LENGTH = 4


class UnsupportedAlgorithmError(LocalProtocolError):
    """Asked to compute with a PRF or MAC Algorithm Type this implementation does not
    implement. Callers that handle a peer's choice check `supported_prf` /
    `supported_mac_algorithm` first (the HKS discards, P7)."""


def supported_prf(prf: int) -> bool:
    return prf in _HASHES


def supported_mac_algorithm(algorithm: int) -> bool:
    return algorithm in _MAC_HASHES


def _prf_hash(prf: int) -> Callable[[], hashlib._Hash]:
    try:
        return _HASHES[prf]
    except KeyError:
        raise UnsupportedAlgorithmError(f"PRF {prf} is not implemented") from None


def gprf_plus(prf: int, key: bytes, seed: bytes, y: int, length: int) -> bytes:
    """P4: T1 = PRF(K, S | Y), Tn = PRF(K, T(n-1) | S | Y+n-1), Y one octet mod 256."""
    digest = _prf_hash(prf)
    output = bytearray()
    block = b""
    counter = y & 0xFF
    while len(output) < length:
        block = hmac.digest(key, block + seed + bytes((counter,)), digest)
        output += block
        counter = (counter + 1) & 0xFF
    return bytes(output[:length])


def _check_hmk(hmk: bytes) -> None:
    if len(hmk) < HMK_MIN_LENGTH:
        raise HMKTooShortError(len(hmk), HMK_MIN_LENGTH)


def mac_key_length(algorithm: int) -> int:
    """P4: the HIK is as long as the MAC algorithm's key (20 for AT 1, 32 for AT 2)."""
    length = MAC_AUTH_LENGTHS.get(algorithm)
    if length is None:
        raise UnsupportedAlgorithmError(f"MAC Algorithm Type {algorithm} is not implemented")
    return length


def derive_hik(hmk: bytes, prf: int, message_id: int, algorithm: int) -> bytes:
    """Draft §6.1.1 / P4: HIK = gprf+(HMK, "Handover Integrity Key", Y = Message ID)."""
    _check_hmk(hmk)
    return gprf_plus(prf, hmk, HIK_LABEL, message_id, mac_key_length(algorithm))


def derive_hk(
    hmk: bytes,
    prf: int,
    mn_nonce: bytes,
    hks_nonce: bytes,
    nai: bytes,
    ar_id: bytes,
    length: int = HK_DEFAULT_LENGTH,
) -> bytes:
    """Draft §6.1.2 / P4: HK = gprf+(HMK, MN-Nonce | HKS-Nonce | MN-ID | AR-ID |
    "Handover Key", Y = 0x00)."""
    _check_hmk(hmk)
    if len(ar_id) != IPV6_ADDRESS_LENGTH:
        raise LocalProtocolError("AR-ID must be a 16-octet IPv6 address (P4)")
    if not 1 <= length <= HK_MAX_LENGTH:
        raise LocalProtocolError(f"HK length {length} outside 1-{HK_MAX_LENGTH}")
    seed = mn_nonce + hks_nonce + nai + ar_id + HK_LABEL
    return gprf_plus(prf, hmk, seed, 0, length)


def compute_mac(algorithm: int, key: bytes, data: bytes) -> bytes:
    try:
        digest = _MAC_HASHES[algorithm]
    except KeyError:
        raise UnsupportedAlgorithmError(
            f"MAC Algorithm Type {algorithm} is not implemented"
        ) from None
    return hmac.digest(key, data, digest)


def _mac_input(wire: bytes, offset: int) -> bytes:
    """P3: MH[0 : off + 4] with the Checksum octets zero."""
    end = offset + MAC_OPTION_HEADER_LENGTH
    return wire[:4] + b"\x00\x00" + wire[6:end]


def sign_message(
    message: Message,
    keys: Mapping[MacSubtype, bytes],
    code_points: CodePoints = DEFAULT_CODE_POINTS,
) -> bytes:
    """Encode `message` and fill the AUTH of each of its MAC options in order (P3):
    the MN-HKS MAC first, then the MN-AR MAC over it. `keys` maps subtype to key."""
    wire = message.encode(code_points)
    try:
        laid_out = decode_message(wire, code_points)
    except DecodeError as exc:  # our own encoder produced it: a local bug
        raise LocalProtocolError(f"encoder produced an undecodable message: {exc}") from None
    for option in laid_out.options:
        if not isinstance(option, MacOption) or option.offset is None:
            continue
        subtype = MacSubtype(option.subtype)
        if subtype not in keys:
            raise LocalProtocolError(f"no key given for the {subtype.name} MAC option")
        end = option.offset + MAC_OPTION_HEADER_LENGTH
        auth = compute_mac(option.algorithm, keys[subtype], _mac_input(wire, option.offset))
        wire = wire[:end] + auth + wire[end + len(auth) :]
    return wire


def verify_mac(wire: bytes, message: Message, subtype: MacSubtype, key: bytes) -> bool:
    """P3: recompute the AUTH of `message`'s MAC option of `subtype` over the received
    `wire` and compare in constant time. False when absent or of an unknown algorithm."""
    option = message.mac(subtype)
    if option is None or option.offset is None or not supported_mac_algorithm(option.algorithm):
        return False
    expected = compute_mac(option.algorithm, key, _mac_input(wire, option.offset))
    return hmac.compare_digest(expected, option.auth)
