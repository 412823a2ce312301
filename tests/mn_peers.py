"""In-memory peers for MN role tests: an AR built from the codec and crypto, with the
real HKS role (hkp_radius.hks) behind it. No sockets, no clock: `now` is passed in."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype, Status
from hkp_radius.hks import (
    Accept,
    HKSPolicy,
    HKSRequest,
    MemoryReplayStore,
    Reject,
    handle_request,
)
from hkp_radius.messages import HKReq, HKResp, decode_message
from hkp_radius.mn import MNConfig
from hkp_radius.options import HandoverNonce, MacOption, Option, Timestamp

AR_ID = ipaddress.IPv6Address("2001:db8::1").packed
AR2_ID = ipaddress.IPv6Address("2001:db8:2::1").packed
COA = ipaddress.IPv6Address("2001:db8::100").packed
NAI = b"alice@example.net"
HMK = bytes(range(64))


class CountingRandom:
    """Deterministic bytes (SHA-256 in counter mode): reproducible tests."""

    def __init__(self, seed: bytes = b"mn-tests") -> None:
        self.seed = seed
        self.counter = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self.counter += 1
            out += hashlib.sha256(self.seed + self.counter.to_bytes(8, "big")).digest()
        return out[:n]


def config(**changes: object) -> MNConfig:
    values: dict[str, object] = {"nai": NAI, "hmk": HMK}
    values.update(changes)
    return MNConfig(**values)  # type: ignore[arg-type]


@dataclass
class HeldAtAR:
    spi: int
    hk: bytes
    lifetime: int


@dataclass
class FakeAR:
    """Just enough of an AR (draft §6.3, §6.3.1, P7) to answer an MN in memory."""

    ar_id: bytes = AR_ID
    policy: HKSPolicy = field(default_factory=HKSPolicy)
    hmks: dict[bytes, bytes] = field(default_factory=lambda: {NAI: HMK})
    authorized: bool = True
    coa_failures: int = 0  # answer CoA_AUTH_FAILED to this many HKReqs first
    require_timestamp: bool = False  # AR-side TIMESTAMP_REQD (unsigned, P7)
    keys: dict[bytes, HeldAtAR] = field(default_factory=dict)
    random: CountingRandom = field(default_factory=lambda: CountingRandom(b"ar"))
    replay: MemoryReplayStore = field(default_factory=MemoryReplayStore)
    next_spi: int = 256
    seen: list[HKReq] = field(default_factory=list)
    hks_hk: bytes = b""

    def answer(self, wire: bytes, now: float) -> bytes | None:
        request = decode_message(wire)
        assert isinstance(request, HKReq)
        self.seen.append(request)
        nai = request.mn_id
        assert nai is not None
        if request.verify and request.mac(MacSubtype.MN_HKS) is None:
            held = self.keys.get(nai)
            if held is None:
                return unsigned(request, Status.HK_VERIFY_FAILED)
            if not crypto.verify_mac(wire, request, MacSubtype.MN_AR, held.hk):
                return None
            return self.signed_success(request, held, verified=True, options=())
        if self.coa_failures > 0:
            self.coa_failures -= 1
            return unsigned(request, Status.COA_AUTH_FAILED)
        if self.require_timestamp and request.timestamp is None:
            return unsigned(request, Status.TIMESTAMP_REQD)
        decision = handle_request(
            HKSRequest(nai, wire, self.ar_id, self.hmks.get(nai), self.authorized),
            self.policy,
            self.replay,
            now,
            self.random,
        )
        if isinstance(decision, Reject):
            return decision.response_header
        if not isinstance(decision, Accept):
            return None
        self.hks_hk = decision.handover_key
        held = HeldAtAR(self.next_spi, decision.handover_key, decision.lifetime)
        self.next_spi += 1
        self.keys[nai] = held
        options: list[Option] = [HandoverNonce(NonceSubtype.HKS_NONCE, decision.hks_nonce)]
        if decision.timestamp is not None:
            options.append(Timestamp(decision.timestamp))
        return self.signed_success(request, held, verified=False, options=tuple(options))

    def signed_success(
        self, request: HKReq, held: HeldAtAR, verified: bool, options: tuple[Option, ...]
    ) -> bytes:
        response = HKResp(
            request.message_id,
            verified,
            request.prf,
            Status.SUCCESS,
            held.lifetime,
            held.spi,
            (*options, MacOption(MacSubtype.MN_AR, MacAlgorithm.HMAC_SHA1)),
        )
        return crypto.sign_message(response, {MacSubtype.MN_AR: held.hk})


def unsigned(request: HKReq, status: int, prf: int = PRF.HMAC_SHA1) -> bytes:
    """P7: an AR error, without a MAC option."""
    return HKResp(request.message_id, False, prf, status).encode()


def hks_signed(
    request: HKReq,
    status: int,
    hmk: bytes = HMK,
    options: tuple[Option, ...] = (),
    algorithm: int = MacAlgorithm.HMAC_SHA1,
) -> bytes:
    """P7: an HKS error signed with the HIK of `request`."""
    hik = crypto.derive_hik(hmk, request.prf, request.message_id, algorithm)
    response = HKResp(
        request.message_id,
        False,
        request.prf,
        status,
        options=(*options, MacOption(MacSubtype.MN_HKS, algorithm)),
    )
    return crypto.sign_message(response, {MacSubtype.MN_HKS: hik})
