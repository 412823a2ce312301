"""In-memory peers for MN role tests: an AR built from the codec and crypto, with the
real HKS role (hkp_radius.hks) behind it, and the real AR and HKS roles wired together
(`ThreeRoles`), and `Node`, a test harness around the MN role that buffers the outputs
each call returns. No sockets, no clock: `now` is passed in (and used as `wall` too)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from hkp_radius import crypto
from hkp_radius.ar.config import ARConfig
from hkp_radius.ar.events import SendAccessRequest, SendHKResp, ValidateCoA
from hkp_radius.ar.role import AccessRouter
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype, Status
from hkp_radius.hks.role import (
    Accept,
    HKSPolicy,
    HKSRequest,
    MemoryReplayStore,
    Reject,
    handle_request,
)
from hkp_radius.mn import Datagram, Event, MNConfig, MobileNode, Output, exchange_started
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import HandoverNonce, MacOption, Option, Timestamp
from tests.hks_answers import ar_answer
from tests.random_source import CountingRandom

AR_ID = ipaddress.IPv6Address("2001:db8::1").packed
AR2_ID = ipaddress.IPv6Address("2001:db8:2::1").packed
COA = ipaddress.IPv6Address("2001:db8::100").packed
NAI = b"alice@example.net"
HMK = bytes(range(64))
T0 = 1_700_000_000.0  # "now" of the role tests


class Node:
    """The MN role with its outputs buffered for the tests: commands return the exchange
    number, `datagrams_to_send()` and `events()` drain what the calls returned. `now` is
    both the monotonic and the wall time. Anything else is the role's own."""

    def __init__(self, role: MobileNode) -> None:
        self.role = role
        self.outputs: list[Output] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.role, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("role", "outputs"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.role, name, value)

    def _take(self, outputs: list[Output]) -> list[Output]:
        self.outputs += outputs
        return outputs

    def request_key(self, ar_id: bytes, now: float, care_of_address: bytes = COA) -> int:
        return exchange_started(self._take(self.role.request_key(ar_id, care_of_address, now, now)))

    def verify_key(self, ar_id: bytes, now: float, care_of_address: bytes = COA) -> int:
        return exchange_started(self._take(self.role.verify_key(ar_id, care_of_address, now, now)))

    def refresh_key(self, ar_id: bytes, now: float) -> int:
        return exchange_started(self._take(self.role.refresh_key(ar_id, now, now)))

    def receive_datagram(self, data: bytes, ar_id: bytes, now: float) -> list[Output]:
        return self._take(self.role.receive_datagram(data, ar_id, now, now))

    def on_timer(self, now: float) -> list[Output]:
        return self._take(self.role.on_timer(now, now))

    def datagrams_to_send(self) -> list[Datagram]:
        out = [o for o in self.outputs if isinstance(o, Datagram)]
        self.outputs = [o for o in self.outputs if not isinstance(o, Datagram)]
        return out

    def events(self) -> list[Event]:
        out = [o for o in self.outputs if not isinstance(o, Datagram)]
        self.outputs = [o for o in self.outputs if isinstance(o, Datagram)]
        return out


def node(**changes: object) -> Node:
    return Node(MobileNode(config(**changes), CountingRandom(b"mn-tests")))


def pump(mn: Node, ar: FakeAR, now: float, drop_first: int = 0) -> list[object]:
    """Deliver the MN's datagrams to `ar` and its answers back until quiet."""
    dropped = 0
    for _ in range(20):
        out = mn.datagrams_to_send()
        if not out:
            break
        for datagram in out:
            if dropped < drop_first:
                dropped += 1
                continue
            answer = ar.answer(datagram.data, now)
            if answer is not None:
                mn.receive_datagram(answer, datagram.ar_id, now)
    return list(mn.events())


def only(events: list[object], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


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
    drop_verify: bool = False  # drop every V request, as for a MAC that fails (§6.3.1)
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
            if self.drop_verify:
                return None
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


class ThreeRoles:
    """The MN role, the AR role and the HKS role wired together without I/O."""

    def __init__(self, hks_policy: HKSPolicy | None = None, coa_valid: bool = True) -> None:
        self.ar = AccessRouter(ARConfig(), CountingRandom(b"ar-role"))
        self.policy = hks_policy or HKSPolicy()
        self.replay = MemoryReplayStore()
        self.hks_random = CountingRandom(b"hks-role")
        self.coa_valid = coa_valid
        self.hks_decisions: list[object] = []
        self.ar_actions: list[object] = []
        self.answers_sent: list[bytes] = []  # every HKResp the AR sent, lost ones included

    def run(self, mn: Node, now: float, lose: int = 0, lose_answers: int = 0) -> list[object]:
        """Carry the MN's datagrams to the AR and its answers back until quiet; the first
        `lose` HKReqs and the first `lose_answers` HKResps are lost on the way."""
        for _ in range(50):
            out = mn.datagrams_to_send()
            if not out:
                break
            for datagram in out:
                if lose:
                    lose -= 1
                    continue
                queue = list(self.ar.receive_hkreq(datagram.data, "mn", datagram.ar_id, now, now))
                while queue:
                    action = queue.pop(0)
                    self.ar_actions.append(action)
                    if isinstance(action, ValidateCoA):
                        queue += self.ar.coa_validated(action.ref, self.coa_valid, now)
                    elif isinstance(action, SendAccessRequest):
                        decision = handle_request(
                            HKSRequest(action.nai, action.mobility_header, action.ar_address, HMK),
                            self.policy,
                            self.replay,
                            now,
                            self.hks_random,
                        )
                        self.hks_decisions.append(decision)
                        answer = ar_answer(decision)
                        queue += self.ar.receive_radius_answer(action.ref, answer, now, now)
                    elif isinstance(action, SendHKResp):
                        self.answers_sent.append(action.wire)
                        if lose_answers:
                            lose_answers -= 1
                            continue
                        mn.receive_datagram(action.wire, action.ar_address, now)
        return list(mn.events())
