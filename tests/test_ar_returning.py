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
