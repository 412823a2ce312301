"""The AR role with a returning MN (draft §6.3.1, PROFILE P6): V requests, keys found by
NAI, MN-AR MACs verified, CoAs bound. Split from test_ar_role.py, whose Harness it uses."""

from __future__ import annotations

from hkp_radius import crypto
from hkp_radius.ar.events import (
    Discarded,
    ExchangeDone,
    Outcome,
    SendAccessRequest,
    SendHKResp,
    StoreKey,
    ValidateCoA,
)
from hkp_radius.constants import NULL_COA, MacSubtype, Status
from tests.ar_helpers import (
    COA,
    COA2,
    HMK2,
    NAI,
    NAI2,
    build_hkreq,
    decode_hkresp,
    verified_hkresp,
)
from tests.test_ar_role import ANY_NULL, Harness, answer, issue, of, returning

# ---- §6.3.1: returning MN ------------------------------------------------------------


def test_returning_mn_verified_and_new_coa_bound() -> None:
    """§6.3.1: "If the computed MAC matches ... the AR SHOULD verify that the IP address is
    valid ... the AR MUST send a response with the verified bit set including a MAC ...
    MUST record the CoA of the MN as the IP address associated with the handover key"."""
    h = Harness()
    spi = issue(h, coa=COA)
    hk = h.ar.keys.get(spi).hk  # type: ignore[union-attr]
    actions = h.exchange(returning(h, spi, coa=COA2))
    assert of(ValidateCoA, actions)[0].coa == COA2
    wire = answer(actions)
    response = decode_hkresp(wire)
    assert response.verify and response.status == Status.SUCCESS and response.spi == spi
    assert crypto.verify_mac(wire, response, MacSubtype.MN_AR, hk)
    assert 3598 <= response.lifetime <= 3600
    assert h.ar.keys.get(spi).care_of_address == COA2  # type: ignore[union-attr]
    assert h.ar.keys.holder_of(COA) is None
    assert of(StoreKey, actions)[-1].key.care_of_address == COA2
    assert of(ExchangeDone, actions)[0].outcome is Outcome.VERIFIED


def test_returning_mn_found_by_nai_among_several_keys() -> None:
    """P6: "the AR ... finds the key of a returning MN by the NAI ...; where several
    unexpired keys exist for that NAI, the one whose MN-AR MAC verifies is used"."""
    h = Harness(ANY_NULL)
    old = issue(h, message_id=1, coa=NULL_COA)
    issue(h, message_id=2, coa=NULL_COA)
    h.advance(1.5)
    response = decode_hkresp(answer(h.exchange(returning(h, old, coa=NULL_COA))))
    assert response.verify and response.spi == old


def test_returning_mn_with_coa_of_another_mn_is_refused() -> None:
    """§6.3.1: "If the computed MAC matches the AUTH value included in the HKReq message,
    the AR SHOULD verify that the IP address is valid and is not claimed by any other
    node": a verified key does not let an MN take over another MN's CoA."""
    h = Harness()
    issue(h, message_id=1, nai=NAI2, coa=COA2)  # the other MN holds COA2
    spi = issue(h, message_id=2, nai=NAI, coa=COA)
    actions = h.exchange(returning(h, spi, coa=COA2))
    assert not of(ValidateCoA, actions) and not of(SendAccessRequest, actions)
    response = decode_hkresp(answer(actions))
    assert response.status == Status.COA_AUTH_FAILED and not response.verify
    assert h.ar.keys.get(spi).care_of_address == COA  # type: ignore[union-attr]
    assert h.ar.keys.holder_of(COA2).nai == NAI2  # type: ignore[union-attr]


def test_returning_mn_with_coa_another_mn_is_claiming_is_refused() -> None:
    """§6.3.1: "the AR SHOULD verify that the IP address is valid and is not claimed by
    any other node", also while the other node's own request for it is in progress."""
    h = Harness()
    spi = issue(h, message_id=1, nai=NAI, coa=COA)
    claim = h.send(build_hkreq(message_id=2, nai=NAI2, hmk=HMK2, coa=COA2))
    assert of(ValidateCoA, claim)  # NAI2's claim on COA2 is with the CoA validator
    actions = h.exchange(returning(h, spi, coa=COA2))
    assert not of(ValidateCoA, actions)
    response = decode_hkresp(answer(actions))
    assert response.status == Status.COA_AUTH_FAILED and not response.verify
    assert h.ar.keys.get(spi).care_of_address == COA  # type: ignore[union-attr]


def test_returning_mn_bad_mac_silently_discarded() -> None:
    """§6.3.1: "If the AUTH value is invalid, the AR MUST silently discard the message"."""
    h = Harness()
    issue(h)
    wire = build_hkreq(
        message_id=20, verify=True, with_hks_mac=False, hk=bytes(20), timestamp=h.stamp()
    )
    actions = h.exchange(wire)
    assert not of(SendHKResp, actions) and h.ar.record_count() == 1  # only the first one
    assert of(ExchangeDone, actions)[0].outcome is Outcome.DISCARDED


def test_returning_mn_without_mn_ar_mac_dropped() -> None:
    """§6.3.1: "If the MN-AR MAC Mobility Sub-Option is not present in the HKReq ... the
    AR MUST silently drop the message"."""
    h = Harness()
    issue(h)
    actions = h.exchange(build_hkreq(message_id=20, verify=True))
    assert [type(a) for a in actions] == [Discarded]


def test_returning_mn_without_key_gets_hk_verify_failed() -> None:
    """§6.3.1: "If the AR does not have the key and if the HKReq does not have the MN-HKS
    MAC Option, it MUST ... return a HKResp with the error code set to HK_VERIFY_FAILED"."""
    h = Harness()
    wire = build_hkreq(
        message_id=20, verify=True, with_hks_mac=False, hk=bytes(20), timestamp=h.stamp()
    )
    response = decode_hkresp(answer(h.exchange(wire)))
    assert response.status == Status.HK_VERIFY_FAILED and not response.options


def test_returning_mn_without_key_but_mn_hks_mac_processed_as_new() -> None:
    """§6.3.1: "If the AR does not have the key and the HKReq included the MN-HKS MAC
    Mobility Sub-Option, the AR MAY process the HKReq as though the 'V' bit was not set"."""
    h = Harness()
    wire = build_hkreq(message_id=21, verify=True, hk=bytes(20))
    actions = h.exchange(wire)
    assert len(of(SendAccessRequest, actions)) == 1
    verified_hkresp(answer(actions), message_id=21)


def test_trans_rate_limits_answers_to_returning_mn() -> None:
    """§6.3.1: "The rate of transmissions of responses to MN MUST not be more than a
    preconfigured TRANS_RATE"."""
    h = Harness()
    spi = issue(h, coa=COA)
    assert of(SendHKResp, h.exchange(returning(h, spi, message_id=30, coa=COA)))
    assert [type(a) for a in h.exchange(returning(h, spi, message_id=31, coa=COA))] == [Discarded]
    h.advance(1.0)
    assert of(SendHKResp, h.exchange(returning(h, spi, message_id=32, coa=COA)))


# ---- P6 (v1.1): freshness of V requests ------------------------------------------------


def test_replayed_v_after_a_fresh_v_from_another_coa_gets_nothing_and_keeps_the_binding() -> None:
    """Issue 16 must-show 1; P6, §7.4: a recorded V request (its MN-AR MAC still good),
    replayed after the MN's fresh V request from another CoA, is silently discarded: no
    Success, and the key stays bound where the fresh request put it. Also after the
    replay's own cached answer has gone (3 s), and during a binding check."""
    h = Harness()
    spi = issue(h, message_id=1, coa=COA)
    h.advance(1.0)
    recorded = returning(h, spi, message_id=2, coa=COA)  # seen on the air, bound to COA
    assert decode_hkresp(answer(h.exchange(recorded))).verify
    h.advance(1.0)
    fresh = returning(h, spi, message_id=3, coa=COA2)  # the MN moved to COA2
    assert decode_hkresp(answer(h.exchange(fresh))).verify
    assert h.ar.keys.get(spi).care_of_address == COA2  # type: ignore[union-attr]
    h.advance(4.0)  # every cached answer gone; well inside the ±7 s window
    replay = h.exchange(recorded)
    assert not of(SendHKResp, replay) and not of(StoreKey, replay)
    assert of(ExchangeDone, replay)[0].outcome is Outcome.DISCARDED
    assert h.ar.keys.get(spi).care_of_address == COA2  # type: ignore[union-attr]
    # A V request older than the key's last accepted one is discarded too.
    h.advance(1.0)
    newest = returning(h, spi, message_id=4, coa=COA)
    stale = returning(h, spi, message_id=5, coa=COA, timestamp=h.stamp() - (5 << 32))
    assert decode_hkresp(answer(h.exchange(newest))).verify
    assert not of(SendHKResp, h.exchange(stale))


def test_v_timestamp_outside_the_window_is_silently_discarded() -> None:
    """P6/P10: a V request is accepted only within ±7 s of the AR's clock."""
    h = Harness()
    spi = issue(h, coa=COA)
    h.advance(1.0)
    late = returning(h, spi, message_id=30, coa=COA, timestamp=h.stamp() - (8 << 32))
    actions = h.exchange(late)
    assert not of(SendHKResp, actions) and of(ExchangeDone, actions)[0].reason.startswith(
        "V request not fresh"
    )
    assert decode_hkresp(answer(h.exchange(returning(h, spi, message_id=31, coa=COA)))).verify


def test_v_without_timestamp_gets_timestamp_reqd() -> None:
    """Issue 16 must-show 1; P6: "A V HKReq carries a Timestamp option. Without one the AR
    answers TIMESTAMP_REQD (unsigned, P7)"; nothing is bound."""
    h = Harness()
    spi = issue(h, coa=COA)
    key = h.ar.keys.get(spi)
    assert key is not None
    wire = build_hkreq(message_id=20, verify=True, with_hks_mac=False, hk=key.hk, coa=COA2)
    actions = h.exchange(wire)
    response = decode_hkresp(answer(actions))
    assert response.status == Status.TIMESTAMP_REQD and not response.options
    assert not of(ValidateCoA, actions) and not of(StoreKey, actions)
    assert h.ar.keys.get(spi).care_of_address == COA  # type: ignore[union-attr]


def test_key_remembers_the_timestamp_of_its_request_and_of_each_accepted_v() -> None:
    """P6: "the timestamp of the HKReq that created the key, then of each accepted V
    request", in memory and in what goes to the key store (StoreKey)."""
    h = Harness()
    spi = issue(h, coa=COA)
    created = h.ar.keys.get(spi)
    assert created is not None and created.last_timestamp is not None
    h.advance(1.0)
    wire = returning(h, spi, message_id=21, coa=COA2)
    actions = h.exchange(wire)
    stored = of(StoreKey, actions)[-1].key
    assert stored.last_timestamp == decode_hkresp(answer(actions)).timestamp
    assert stored.last_timestamp > created.last_timestamp  # type: ignore[operator]
    # A V request with the key's creation timestamp itself is not newer.
    h.advance(1.0)
    same = returning(h, spi, message_id=22, coa=COA2, timestamp=created.last_timestamp)
    assert not of(SendHKResp, h.exchange(same))
