"""The AR role in memory (STYLE level 2): hkp_radius.ar against the real HKS role
(hkp_radius.hks.handle_request), time and randomness injected, no sockets.

Each test names the draft (or PROFILE) sentence it shows."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from hkp_radius.ar.admission import Admission
from hkp_radius.ar.config import NullCoA
from hkp_radius.ar.events import (
    Action,
    CancelAccessRequest,
    DeleteKey,
    Discarded,
    ExchangeDone,
    HKSAccept,
    HKSAnswer,
    HKSReject,
    Outcome,
    SendAccessRequest,
    SendHKResp,
    StoreKey,
    ValidateCoA,
)
from hkp_radius.ar.keys import StoredKey
from hkp_radius.ar.role import AccessRouter, ARConfig
from hkp_radius.ar.state import State
from hkp_radius.constants import NULL_COA, SPI_MIN, MacSubtype, Status
from hkp_radius.hks.role import (
    HKSPolicy,
    HKSRequest,
    MemoryReplayStore,
    handle_request,
)
from hkp_radius.wire.ntp import to_ntp
from tests.ar_helpers import (
    AR_ID,
    COA,
    COA2,
    HMK,
    HMK2,
    NAI,
    NAI2,
    build_hkreq,
    decode_hkresp,
    expected_hk,
    ip6,
    verified_hkresp,
)
from tests.hks_answers import ar_answer
from tests.random_source import CountingRandom

T0 = 1_700_000_000.0  # wall clock (Unix seconds) at the start of each test
M0 = 5_000.0  # the monotonic clock then (any value: only differences count)
# Tests that only need a quick path to the HKS send the NULL CoA under this policy; the
# default (§6.5 refreshes only) is shown by the tests that use ARConfig().
ANY_NULL = ARConfig(null_coa=NullCoA.ALWAYS)


def of(kind: type, actions: list[Action]) -> list:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, kind)]


class Harness:
    """One AR role and the real HKS role behind it, on a virtual clock."""

    def __init__(
        self,
        config: ARConfig | None = None,
        policy: HKSPolicy | None = None,
        random: Callable[[int], bytes] | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.ar = AccessRouter(
            config or ARConfig(), random or CountingRandom(b"ar-tests"), admission
        )
        self.policy = policy or HKSPolicy(require_timestamp=False)  # HKReqs here carry none
        self.replay = MemoryReplayStore()
        self.hmks = {NAI: HMK, NAI2: HMK2}
        self.now = M0  # monotonic: timers and lifetimes
        self.wall_offset = T0 - M0  # wall = now + wall_offset
        self.hks_random = CountingRandom(b"hks")
        self.hks_asked = 0
        self._last_stamp = 0

    @property
    def wall(self) -> float:
        """The wall clock, moving with the monotonic one."""
        return self.now + self.wall_offset

    def stamp(self) -> int:
        """An NTP timestamp of the wall clock now, strictly greater than the last one
        (an MN's clock moves on between two requests; P5/P6 need them increasing)."""
        self._last_stamp = max(to_ntp(self.wall), self._last_stamp + 1)
        return self._last_stamp

    def send(self, wire: bytes, peer: object = "mn", ar: bytes = AR_ID) -> list[Action]:
        return self.ar.receive_hkreq(wire, peer, ar, self.now, self.wall)

    def hks_answer(self, request: SendAccessRequest) -> HKSAnswer:
        self.hks_asked += 1
        decision = handle_request(
            HKSRequest(
                request.nai,
                request.mobility_header,
                request.ar_address,
                self.hmks.get(request.nai),
            ),
            self.policy,
            self.replay,
            self.wall,  # the HKS's clock is the wall clock (P5 timestamps)
            self.hks_random,
        )
        return ar_answer(decision)

    def run(self, actions: list[Action], coa_valid: bool = True) -> list[Action]:
        """Carry out ValidateCoA and SendAccessRequest like the adapters; return all."""
        done: list[Action] = []
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            done.append(action)
            if isinstance(action, ValidateCoA):
                queue += self.ar.coa_validated(action.ref, coa_valid, self.now)
            elif isinstance(action, SendAccessRequest):
                queue += self.ar.receive_radius_answer(
                    action.ref, self.hks_answer(action), self.now, self.wall
                )
        return done

    def exchange(self, wire: bytes, coa_valid: bool = True, **kw: object) -> list[Action]:
        return self.run(self.send(wire, **kw), coa_valid)  # type: ignore[arg-type]

    def advance(self, seconds: float) -> list[Action]:
        self.now += seconds
        actions: list[Action] = []
        while (when := self.ar.next_timer()) is not None and when <= self.now:
            actions += self.ar.on_timer(self.now)
        return actions


def answer(actions: list[Action]) -> bytes:
    sent = of(SendHKResp, actions)
    assert len(sent) == 1, actions
    return sent[0].wire


def issue(
    h: Harness, message_id: int = 7, nai: bytes = NAI, coa: bytes = COA, stamped: bool = True
) -> int:
    """A new key for `nai` (its request timestamped unless told otherwise); its SPI."""
    hmk = HMK if nai == NAI else HMK2
    timestamp = h.stamp() if stamped else None
    wire = build_hkreq(message_id=message_id, nai=nai, hmk=hmk, coa=coa, timestamp=timestamp)
    response = decode_hkresp(answer(h.exchange(wire)))
    assert response.status == Status.SUCCESS
    return response.spi


# ---- §6.3: new keys ---------------------------------------------------------------------


def test_success_stores_hk_and_answers_spi_nonce_lifetime_and_mn_ar_mac() -> None:
    """§6.3: "MUST store the handover key ... along with the CoA and MN ID and index it
    additionally with an SPI. The AR MUST send the SPI, HKS-Nonce and lifetime ... MUST
    include a MAC of the message created using the HK in the MN-AR MAC"."""
    h = Harness()
    actions = h.exchange(build_hkreq(coa=COA))
    response, hk = verified_hkresp(answer(actions))
    assert response.status == Status.SUCCESS and not response.verify
    assert response.lifetime == 3600 and response.spi >= SPI_MIN
    stored = h.ar.keys.get(response.spi)
    assert stored is not None and stored.hk == hk
    assert stored.nai == NAI and stored.care_of_address == COA
    assert of(StoreKey, actions)[-1].key == stored
    done = of(ExchangeDone, actions)
    assert [d.outcome for d in done] == [Outcome.ISSUED] and done[0].spi == response.spi


def test_timestamp_echoed_in_success() -> None:
    """P5: "the HKS returns the MN's timestamp and the AR copies it into the HKResp"."""
    h = Harness()
    ts = to_ntp(h.wall)
    response, _ = verified_hkresp(answer(h.exchange(build_hkreq(timestamp=ts))))
    assert response.timestamp == ts


def test_no_mn_id_is_silently_discarded() -> None:
    """§6.3: "If the HKReq message does not contain the MN ID Mobility Option, the AR
    MUST silently discard the message"."""
    h = Harness()
    actions = h.send(build_hkreq(nai=None))
    assert [type(a) for a in actions] == [Discarded] and h.ar.record_count() == 0


def test_no_mn_hks_mac_without_v_is_silently_discarded() -> None:
    """§6.3: "If the HKReq message does not contain the MN-HKS MAC Mobility sub-option,
    it MUST silently discard the message"."""
    h = Harness()
    actions = h.send(build_hkreq(with_hks_mac=False))
    assert [type(a) for a in actions] == [Discarded] and h.ar.record_count() == 0


def test_retransmission_while_hks_has_it_is_discarded() -> None:
    """§6.3: "If the AR already forwarded this message to the Handover Key Server but has
    not yet received a response from the server, the AR MUST silently discard the
    retransmitted request"."""
    h = Harness(ANY_NULL)
    wire = build_hkreq(coa=NULL_COA)
    first = h.send(wire)
    assert len(of(SendAccessRequest, first)) == 1
    again = h.send(wire)
    assert [type(a) for a in again] == [Discarded]
    assert h.ar.state_of(NAI, 7) is State.EXPECT_HKS_ANSWER


def test_lost_answers_resent_from_cache_at_1_and_2_s_with_default_timers() -> None:
    """§6.3 "the AR SHOULD retransmit the HKResp", R49/R63 with the default timers (P10:
    cache N_HO_KEYTRIES x HKEY_REQ_TOUT = 3 s, RETRANS_RATE 2/s, one re-send per copy):
    an MN whose first two HKResps are lost gets the same answer (same SPI) to its copies
    at 1 s and 2 s, the HKS is asked once, and a copy within 0.5 s of the last re-send
    is not answered (no two answers to one request within 0.5 s)."""
    h = Harness()  # default ARConfig, default HKS policy
    wire = build_hkreq(timestamp=to_ntp(h.wall))
    original = answer(h.exchange(wire))  # lost on the way to the MN
    spi = decode_hkresp(original).spi
    assert h.hks_asked == 1
    h.advance(1.0)
    first_copy = h.exchange(wire)  # the MN's retransmission after HKEY_REQ_TOUT: lost too
    assert answer(first_copy) == original
    h.advance(1.0)
    second_copy = h.exchange(wire)
    assert answer(second_copy) == original and decode_hkresp(answer(second_copy)).spi == spi
    assert h.hks_asked == 1 and len(h.ar.keys) == 1  # one HKS exchange, one key
    h.advance(0.3)
    duplicate = h.exchange(wire)  # a third copy within 0.5 s (a duplicated datagram)
    assert not of(SendHKResp, duplicate) and of(Discarded, duplicate)
    h.advance(0.2)  # 0.5 s after the last re-send: one more copy is answered again
    assert answer(h.exchange(wire)) == original
    h.advance(0.5)  # 3 s after the answer the record is gone (P10)
    assert h.ar.state_of(NAI, 7) is None and h.hks_asked == 1


def test_each_copy_earns_at_most_one_answer() -> None:
    """P10 RETRANS_RATE: "at most one per copy of the HKReq received": timers alone
    never send a cached answer, and only a byte-identical copy is answered from the cache
    (a forged datagram with the same NAI and Message ID is discarded)."""
    h = Harness()
    wire = build_hkreq(timestamp=to_ntp(h.wall))
    original = answer(h.exchange(wire))
    for _ in range(4):
        assert not of(SendHKResp, h.advance(0.5))
    assert answer(h.exchange(wire)) == original
    forged = build_hkreq(timestamp=to_ntp(h.wall), hmk=HMK2)  # same NAI and Message ID
    h.advance(0.6)
    assert [type(a) for a in h.exchange(forged)] == [Discarded]
    assert answer(h.exchange(wire)) == original and h.hks_asked == 1


def test_coa_validation_failure_answers_coa_auth_failed_without_asking_hks() -> None:
    """§6.3: "If the AR fails to verify the CoA, it MUST send a HKResp with the code set
    to CoA_AUTH_FAILED"; P7: AR errors carry no MAC."""
    h = Harness()
    actions = h.exchange(build_hkreq(coa=COA), coa_valid=False)
    assert of(ValidateCoA, actions)[0].coa == COA
    assert not of(SendAccessRequest, actions)
    response = decode_hkresp(answer(actions))
    assert response.status == Status.COA_AUTH_FAILED and response.mac(MacSubtype.MN_AR) is None


def test_coa_claimed_by_another_mn_is_refused() -> None:
    """§7.4: "The AR must ensure that the CoA claimed by the MN does not belong to any
    other node"."""
    h = Harness()
    issue(h, nai=NAI, coa=COA)
    actions = h.exchange(build_hkreq(nai=NAI2, hmk=HMK2, coa=COA))
    assert not of(ValidateCoA, actions) and not of(SendAccessRequest, actions)
    assert decode_hkresp(answer(actions)).status == Status.COA_AUTH_FAILED


def test_coa_claimed_by_another_mns_request_in_progress_is_refused() -> None:
    """§7.4: "The AR must ensure that the CoA claimed by the MN does not belong to any
    other node", also while the first claimant's request is still being checked."""
    h = Harness()
    first = h.send(build_hkreq(nai=NAI, coa=COA))
    assert of(ValidateCoA, first)  # the first claim is with the CoA validator
    actions = h.send(build_hkreq(nai=NAI2, hmk=HMK2, coa=COA))
    assert not of(ValidateCoA, actions) and not of(SendAccessRequest, actions)
    assert decode_hkresp(answer(actions)).status == Status.COA_AUTH_FAILED
    # Once the first claim is settled, the CoA is the first MN's; the other is still refused.
    h.run(first)
    again = h.exchange(build_hkreq(message_id=8, nai=NAI2, hmk=HMK2, coa=COA))
    assert decode_hkresp(answer(again)).status == Status.COA_AUTH_FAILED


def test_ar_timestamp_policy_answers_timestamp_reqd() -> None:
    """§6.3: "If the AR expects timestamp-based replay protection, it MUST return a
    HKResp with the error code set to TIMESTAMP_REQD"."""
    h = Harness(ARConfig(require_timestamp=True))
    actions = h.exchange(build_hkreq())
    assert not of(SendAccessRequest, actions)
    response = decode_hkresp(answer(actions))
    assert response.status == Status.TIMESTAMP_REQD and response.message_id == 7
    assert not response.options  # P7: unsigned
    verified_hkresp(
        answer(h.exchange(build_hkreq(message_id=8, timestamp=to_ntp(h.wall)))), message_id=8
    )


def test_ar_address_as_seen_by_mn_goes_to_hks() -> None:
    """§6.3: "The AR MUST communicate its IP address as seen by the MN to the Handover Key
    Server"; P8 HKP-Mobility-Header is the HKReq exactly as received."""
    h = Harness()
    seen_as = ip6("2001:db8:77::1")
    wire = build_hkreq()
    request = of(SendAccessRequest, h.run(h.send(wire, ar=seen_as)))[0]
    assert request.ar_address == seen_as and request.mobility_header == wire
    assert request.nai == NAI and request.care_of_address == COA


def test_spis_are_at_least_256_and_unique_even_when_draws_collide() -> None:
    """P6: "ARs allocate SPIs of 256 or more ..., unique among the AR's unexpired keys"."""
    draws = itertools.cycle([bytes(4), bytes(4), b"\x00\x00\x00\x05"])
    h = Harness(ANY_NULL, random=lambda n: next(draws))
    first = issue(h, message_id=1)
    second = issue(h, message_id=2, coa=NULL_COA)
    assert first == SPI_MIN and second == SPI_MIN + 5
    h2 = Harness(ANY_NULL)
    spis = [issue(h2, message_id=i, coa=NULL_COA) for i in range(50)]
    assert min(spis) >= SPI_MIN and len(set(spis)) == 50


def test_access_reject_with_response_header_forwarded_unchanged() -> None:
    """P7: "the HKS builds the complete HKResp itself ... The AR forwards it unchanged"."""
    h = Harness(policy=HKSPolicy(require_timestamp=True))
    actions = h.exchange(build_hkreq())
    reject = h.hks_answer(of(SendAccessRequest, actions)[0])
    assert isinstance(reject, HKSReject)
    assert answer(actions) == reject.response_header
    assert of(ExchangeDone, actions)[0].outcome is Outcome.HKS_ERROR
    assert decode_hkresp(answer(actions)).status == Status.TIMESTAMP_REQD
    assert len(h.ar.keys) == 0


def test_access_reject_without_response_header_gets_no_answer() -> None:
    """§6.4 "silently discard", P7: "no HKResp at all"."""
    h = Harness()
    h.hmks.clear()  # unknown NAI at the HKS
    actions = h.exchange(build_hkreq())
    assert not of(SendHKResp, actions) and not h.ar.holds_state_for(NAI)
    assert of(ExchangeDone, actions)[0].outcome is Outcome.HKS_DISCARDED


def test_hks_silent_drops_all_state_and_answers_nothing() -> None:
    """§6.3: "if the AR does not receive a response from the server, it MUST remove all
    state associated with the MN and MUST NOT send a response to the MN"."""
    h = Harness(ANY_NULL)
    request = of(SendAccessRequest, h.send(build_hkreq(coa=NULL_COA)))[0]
    actions = h.ar.radius_timeout(request.ref, h.now)
    assert not of(SendHKResp, actions) and not h.ar.holds_state_for(NAI)
    assert of(ExchangeDone, actions)[0].outcome is Outcome.HKS_SILENT
    assert h.ar.next_timer() is None and len(h.ar.keys) == 0


def test_hks_deadline_safety_net_cancels_radius() -> None:
    """§6.3 "remove all state": the role's own deadline if the adapter never answers."""
    h = Harness(ARConfig(hks_deadline=5.0, null_coa=NullCoA.ALWAYS))
    request = of(SendAccessRequest, h.send(build_hkreq(coa=NULL_COA)))[0]
    actions = h.advance(5.0)
    assert of(CancelAccessRequest, actions) == [CancelAccessRequest(request.ref)]
    assert not h.ar.holds_state_for(NAI)
    assert h.ar.receive_radius_answer(request.ref, HKSReject(None), h.now, h.wall) == []


def test_unusable_accept_or_mismatched_hkresp_is_dropped() -> None:
    """P8: an Accept without an HK, or a Reject whose HKResp is for another Message ID,
    cannot be forwarded; nothing reaches the MN."""
    h = Harness(ANY_NULL)
    req = of(SendAccessRequest, h.send(build_hkreq(coa=NULL_COA)))[0]
    actions = h.ar.receive_radius_answer(req.ref, HKSAccept(None, bytes(16)), h.now, h.wall)
    assert (
        not of(SendHKResp, actions) and of(ExchangeDone, actions)[0].outcome is Outcome.HKS_UNUSABLE
    )
    h2 = Harness(ANY_NULL, policy=HKSPolicy(require_timestamp=True))
    req = of(SendAccessRequest, h2.send(build_hkreq(message_id=9, coa=NULL_COA)))[0]
    other = h2.hks_answer(
        of(SendAccessRequest, h2.send(build_hkreq(message_id=10, coa=NULL_COA)))[0]
    )
    actions = h2.ar.receive_radius_answer(req.ref, other, h2.now, h2.wall)
    assert not of(SendHKResp, actions)


def returning(h: Harness, spi: int, message_id: int = 20, coa: bytes = COA2, **kw: object) -> bytes:
    """A V request (§6.2.3) for key `spi`, timestamped now (P6) unless `timestamp=` says."""
    key = h.ar.keys.get(spi)
    assert key is not None
    kw.setdefault("timestamp", h.stamp())
    return build_hkreq(
        message_id=message_id, verify=True, with_hks_mac=False, hk=key.hk, coa=coa, **kw
    )  # type: ignore[arg-type]


# ---- §6.5 indirect exchange, §6.3 lifetimes and neighbours ------------------------------


def test_indirect_refresh_with_null_coa_skips_validation_and_binds_nothing() -> None:
    """§6.5: "The CoA for such indirect refreshes SHOULD be set to NULL": by default the
    NULL CoA is accepted for a refresh (the NAI holds a key here), without a CoA check,
    and the new key is bound to no CoA."""
    h = Harness()
    issue(h, message_id=1, coa=COA)
    actions = h.exchange(build_hkreq(message_id=2, coa=NULL_COA))
    assert not of(ValidateCoA, actions)
    response, _ = verified_hkresp(answer(actions), message_id=2)
    assert h.ar.keys.get(response.spi).care_of_address is None  # type: ignore[union-attr]


def test_null_coa_of_a_direct_request_is_refused_by_default() -> None:
    """§6.5 allows the NULL CoA only for indirect refreshes; without a key at this AR
    the request is a direct one and gets CoA_AUTH_FAILED (`null_coa = refresh`, the
    default); `no` refuses every NULL CoA, `yes` accepts any (labs)."""
    h = Harness()
    actions = h.exchange(build_hkreq(coa=NULL_COA))
    assert not of(SendAccessRequest, actions)
    assert decode_hkresp(answer(actions)).status == Status.COA_AUTH_FAILED
    never = Harness(ARConfig(null_coa=NullCoA.NEVER))
    issue(never, message_id=1, coa=COA)
    refused = never.exchange(build_hkreq(message_id=2, coa=NULL_COA))
    assert decode_hkresp(answer(refused)).status == Status.COA_AUTH_FAILED
    verified_hkresp(answer(Harness(ANY_NULL).exchange(build_hkreq(coa=NULL_COA))))


def test_indirect_coa_tied_to_nai_accepted_other_refused() -> None:
    """§6.5: "If the CoA is non-NULL, the pAR MUST check if the CoA provided in the HKReq
    is the same address that is tied to the NAI ... If that is not the case the pAR MUST
    reject the HKReq"."""
    h = Harness()
    issue(h, message_id=1, coa=COA)
    tied = h.exchange(build_hkreq(message_id=2, coa=COA))  # not on link: no validator call
    assert not of(ValidateCoA, tied)
    verified_hkresp(answer(tied), message_id=2)
    untied = h.exchange(build_hkreq(message_id=3, coa=COA2), coa_valid=False)
    assert decode_hkresp(answer(untied)).status == Status.COA_AUTH_FAILED


def test_keys_deleted_when_lifetime_ends() -> None:
    """§6.3: "When the lifetime of the key expires, the AR should remove the SPI"."""
    h = Harness(policy=HKSPolicy(key_lifetime=60, require_timestamp=False))
    spi = issue(h)
    assert h.ar.next_timer() is not None
    h.advance(59.0)
    assert h.ar.keys.get(spi) is not None
    actions = h.advance(1.0)
    assert DeleteKey(spi, "lifetime ended") in actions and h.ar.keys.get(spi) is None
    wire = build_hkreq(
        message_id=40, verify=True, with_hks_mac=False, hk=bytes(20), timestamp=h.stamp()
    )
    assert decode_hkresp(answer(h.exchange(wire))).status == Status.HK_VERIFY_FAILED


def test_neighbour_entry_gone_unbinds_coa() -> None:
    """§6.3: "When the neighbor cache entry for the CoA expires, the AR MUST disassociate
    the key and the corresponding CoA"."""
    h = Harness()
    spi = issue(h, coa=COA)
    actions = h.ar.neighbour_gone(COA, h.now)
    assert [a.key.care_of_address for a in of(StoreKey, actions)] == [None]
    assert h.ar.keys.get(spi).care_of_address is None  # type: ignore[union-attr]
    assert h.ar.keys.holder_of(COA) is None
    issue(h, message_id=9, nai=NAI2, coa=COA)  # the CoA is free for another MN now


def test_answer_for_departed_mn_is_discarded() -> None:
    """§6.3: "If an AR receives a response message corresponding to a MN that is no longer
    connected to it, the AR SHOULD silently discard it"."""
    h = Harness()
    validate = of(ValidateCoA, h.send(build_hkreq(coa=COA)))[0]
    request = of(SendAccessRequest, h.ar.coa_validated(validate.ref, True, h.now))[0]
    h.ar.neighbour_gone(COA, h.now)
    actions = h.ar.receive_radius_answer(request.ref, h.hks_answer(request), h.now, h.wall)
    assert not of(SendHKResp, actions) and len(h.ar.keys) == 0
    assert of(ExchangeDone, actions)[0].outcome is Outcome.MN_DEPARTED


def test_restart_restores_keys_and_deletes_expired() -> None:
    h = Harness()
    spi = issue(h)
    saved = list(h.ar.keys)
    expired = StoredKey(999, NAI2, bytes(20), None, h.wall - 1, 1, AR_ID)
    restarted = Harness()  # a new process 10 s later: its monotonic clock starts anywhere
    restarted.now = 12.0
    restarted.wall_offset = h.wall + 10 - restarted.now
    gone = restarted.ar.load_keys([*saved, expired], restarted.now, restarted.wall)
    assert gone == [DeleteKey(999, "expired")]
    assert restarted.ar.keys.get(spi) is not None
    wire = returning(restarted, spi, coa=COA)
    assert decode_hkresp(answer(restarted.exchange(wire))).verify


def test_record_limit_bounds_state() -> None:
    h = Harness(ARConfig(max_records=2, null_coa=NullCoA.ALWAYS))
    for message_id in (1, 2):
        h.send(build_hkreq(message_id=message_id, coa=NULL_COA))
    actions = h.send(build_hkreq(message_id=3, coa=NULL_COA))
    assert [type(a) for a in actions] == [Discarded] and h.ar.record_count() == 2


def test_no_key_in_any_action_repr() -> None:
    """STYLE practice 9: no key reaches a log line."""
    h = Harness()
    actions = h.exchange(build_hkreq())
    hk = h.ar.keys.get(decode_hkresp(answer(actions)).spi).hk  # type: ignore[union-attr]
    text = repr(actions) + repr(list(h.ar.keys))
    assert hk.hex() not in text and repr(hk) not in text
    assert expected_hk(decode_hkresp(answer(actions)).hks_nonce or b"") == hk


# ---- the table and the invariant ------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_yields_only_discards(data: bytes) -> None:
    """STYLE practice 4 / h11 fuzz invariant: garbage in, only a discard out."""
    h = Harness()
    actions = h.send(data)
    assert all(
        isinstance(a, (Discarded, ExchangeDone, ValidateCoA, SendAccessRequest, SendHKResp))
        for a in actions
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_requests_never_raise(data: st.DataObject) -> None:
    wire = bytearray(build_hkreq(timestamp=to_ntp(T0)))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(wire) - 1))
        wire[position] = data.draw(st.integers(0, 255))
    h = Harness()
    h.exchange(bytes(wire))
    h.advance(10_000)
    assert h.ar.record_count() == 0


def test_nai_that_is_not_utf8_is_discarded() -> None:
    """RFC 7542: a NAI is UTF-8; one that is not cannot be a RADIUS User-Name (P8)."""
    h = Harness()
    actions = h.send(build_hkreq(nai=b"\xff\xfe@example.net"))
    assert [type(a) for a in actions] == [Discarded] and h.ar.record_count() == 0
