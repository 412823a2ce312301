"""The AR's per-request record and the HKResps it answers with (draft §6.3, §6.3.1, P7).

Pure functions of a request and a key: the role (hkp_radius.ar.role) decides when each
is sent; this module only knows how each answer is built.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field

from hkp_radius import crypto
from hkp_radius.ar.events import HKSAccept, HKSAnswer
from hkp_radius.ar.keys import StoredKey
from hkp_radius.ar.state import State
from hkp_radius.constants import (
    HK_MAX_LENGTH,
    HK_MAX_LIFETIME,
    NONCE_MAX_LENGTH,
    NONCE_MIN_LENGTH,
    CodePoints,
    MacSubtype,
    NonceSubtype,
    Status,
)
from hkp_radius.wire.messages import HKReq, HKResp
from hkp_radius.wire.options import HandoverNonce, MacOption, Option, Timestamp


@dataclass
class Record:
    """One (NAI, Message ID) the AR is handling."""

    ref: int
    request: HKReq
    nai: bytes
    wire: bytes
    peer: Hashable
    ar_address: bytes
    started: float  # monotonic
    state: State = State.RECEIVED
    deadline: float = math.inf  # monotonic
    response: bytes | None = None  # prepared or sent HKResp
    status: int | None = None
    first_sent: float = -math.inf
    last_sent: float = -math.inf
    resends: int = 0
    key_spi: int | None = None  # returning MN: the key whose MN-AR MAC verified
    issued_spi: int | None = None
    reason: str = ""
    answer: HKSAnswer | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[bytes, int]:
        return (self.nai, self.request.message_id)


def mac_algorithm(request: HKReq, subtype: MacSubtype, default: int) -> int:
    """Answer with the MAC algorithm the MN used, when we implement it."""
    option = request.mac(subtype)
    if option is not None and crypto.supported_mac_algorithm(option.algorithm):
        return option.algorithm
    return default


def error_response(request: HKReq, status: Status, code_points: CodePoints) -> bytes:
    """P7: AR errors carry no MAC option (no key is shared yet)."""
    return HKResp(request.message_id, False, request.prf, status).encode(code_points)


def verified_response(
    request: HKReq, key: StoredKey, remaining: float, default_mac: int, code_points: CodePoints
) -> bytes:
    """§6.3.1: "send a response with the verified bit set including a MAC"."""
    lifetime = max(0, min(HK_MAX_LIFETIME, math.floor(remaining)))
    options: list[Option] = []
    if request.timestamp is not None:
        options.append(Timestamp(request.timestamp))
    options.append(
        MacOption(MacSubtype.MN_AR, mac_algorithm(request, MacSubtype.MN_AR, default_mac))
    )
    response = HKResp(
        request.message_id, True, key.prf, Status.SUCCESS, lifetime, key.spi, tuple(options)
    )
    return crypto.sign_message(response, {MacSubtype.MN_AR: key.hk}, code_points)


def success_response(
    request: HKReq,
    accept: HKSAccept,
    key: StoredKey,
    lifetime: int,
    default_mac: int,
    code_points: CodePoints,
) -> bytes:
    """§6.3: "send the SPI, HKS-Nonce and lifetime ... include a MAC of the message
    created using the HK"; P5: the timestamp echoed."""
    assert accept.hks_nonce is not None
    options: list[Option] = [HandoverNonce(NonceSubtype.HKS_NONCE, accept.hks_nonce)]
    timestamp = accept.timestamp if accept.timestamp is not None else request.timestamp
    if timestamp is not None:
        options.append(Timestamp(timestamp))
    algorithm = mac_algorithm(request, MacSubtype.MN_HKS, default_mac)
    options.append(MacOption(MacSubtype.MN_AR, algorithm))
    response = HKResp(
        request.message_id, False, key.prf, Status.SUCCESS, lifetime, key.spi, tuple(options)
    )
    return crypto.sign_message(response, {MacSubtype.MN_AR: key.hk}, code_points)


def accept_problem(accept: HKSAccept) -> str:
    """Why an Access-Accept cannot yield a key (P8), or "" when it can."""
    if not accept.handover_key or len(accept.handover_key) > HK_MAX_LENGTH:
        return "Access-Accept without a usable HKP-Handover-Key"
    nonce = accept.hks_nonce
    if nonce is None or not NONCE_MIN_LENGTH <= len(nonce) <= NONCE_MAX_LENGTH:
        return "Access-Accept without a usable HKP-HKS-Nonce"
    if accept.lifetime is not None and accept.lifetime < 1:
        return "Access-Accept with HKP-Key-Lifetime 0"
    if accept.prf is not None and not 0 <= accept.prf <= 7:
        return "Access-Accept with an HKP-PRF outside the 3-bit field"
    if accept.timestamp is not None and not 0 <= accept.timestamp < 1 << 64:
        return "Access-Accept with an HKP-Timestamp that is not 64 bits"
    return ""


def is_utf8(nai: bytes) -> bool:
    try:
        nai.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
