"""Issue 4, must-show 1, 3 and 6 over UDP (P9): a real hkp-ar process in front of a real
FreeRADIUS HKS; the MN's side is built from the codec and crypto alone."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from hkp_radius import crypto
from hkp_radius.constants import HKEY_REQ_TOUT, N_HO_KEYTRIES, NULL_COA, SPI_MIN, MacSubtype, Status
from hkp_radius.wire.ntp import to_ntp
from hkp_support.freeradius import FreeRadiusInstance
from tests.ar_helpers import (
    AR_ID,
    COA,
    COA2,
    HMK2,
    NAI,
    NAI2,
    build_hkreq,
    decode_hkresp,
    verified_hkresp,
    wall_stamp,
)

from .ar_fixtures import ArProcess, MobileNodeSocket, wait_until

pytestmark = pytest.mark.integration


def test_hkresp_mac_verifies_with_independent_hk_and_store_holds_it(
    hkp_ar: ArProcess, mn_socket: MobileNodeSocket
) -> None:
    """Must-show 1; §6.3: "store the handover key ... along with the CoA and MN ID and
    index it additionally with an SPI"; P8: HKP-Handover-Key decrypted (RFC 2548) equals
    the HK the MN derives from the HMK."""
    wire = build_hkreq(message_id=11, coa=COA)
    response, hk = verified_hkresp(mn_socket.exchange(wire), message_id=11)
    assert response.status == Status.SUCCESS and response.spi >= SPI_MIN
    assert response.lifetime == 3600 and response.message_id == 11
    event = hkp_ar.wait_event(event="exchange", outcome="issued", message_id=11)
    assert event["spi"] == response.spi and event["nai"] == NAI.decode()
    assert event["coa"] == "2001:db8::100" and event["ms"] >= 0
    stored = next(k for k in hkp_ar.wait_stored(response.spi))
    assert stored.hk == hk and stored.nai == NAI and stored.care_of_address == COA
    assert stored.ar_address == AR_ID
    log = hkp_ar.log_text()
    assert hk.hex() not in log  # never a key in a log line
    assert "Traceback" not in log and "Exception in callback" not in log


def test_returning_mn_over_udp_verifies_and_binds(
    hkp_ar: ArProcess, mn_socket: MobileNodeSocket
) -> None:
    """§6.3.1: verified, CoA bound, "response with the verified bit set"."""
    first = build_hkreq(message_id=12, timestamp=wall_stamp())
    response, hk = verified_hkresp(mn_socket.exchange(first), message_id=12)
    again = build_hkreq(
        message_id=13, verify=True, with_hks_mac=False, hk=hk, coa=COA2, timestamp=wall_stamp()
    )
    reply = mn_socket.exchange(again)
    verified = decode_hkresp(reply)
    assert verified.verify and verified.spi == response.spi and verified.status == Status.SUCCESS
    assert crypto.verify_mac(reply, verified, MacSubtype.MN_AR, hk)
    hkp_ar.wait_event(event="exchange", outcome="verified", message_id=13)
    assert hkp_ar.wait_stored(response.spi, coa=COA2)


def test_hks_error_forwarded_unchanged_and_discard_unanswered(
    start_ar: Callable[..., ArProcess],
) -> None:
    """P7: HKS errors forwarded unchanged; "HKS cannot authenticate the MN ...: no HKResp"."""
    ar = start_ar()
    mn = MobileNodeSocket(ar.udp_port)
    try:
        stale = build_hkreq(message_id=14, timestamp=to_ntp(0))  # 1900: far outside ±7 s
        response = decode_hkresp(mn.exchange(stale))
        assert response.status == Status.INVALID_TIMESTAMP
        assert response.mac(MacSubtype.MN_HKS) is not None  # signed by the HKS
        ar.wait_event(event="exchange", outcome="hks-error", message_id=14)
        unknown = build_hkreq(message_id=15, nai=b"nobody@example.net")
        mn.send(unknown)
        ar.wait_event(event="exchange", outcome="hks-discarded", message_id=15)
        assert mn.pending() == []
    finally:
        mn.close()


def test_ar_errors_over_udp(start_ar: Callable[..., ArProcess]) -> None:
    """§6.3 TIMESTAMP_REQD by AR policy; §6.3.1 HK_VERIFY_FAILED; §7.4 CoA claimed by
    another MN: all unsigned (P7)."""
    ar = start_ar(sections={"policy": {"require_timestamp": "yes"}})
    mn = MobileNodeSocket(ar.udp_port)
    try:
        assert decode_hkresp(mn.exchange(build_hkreq(message_id=1))).status == Status.TIMESTAMP_REQD
        ok = build_hkreq(message_id=2, timestamp=to_ntp(time.time()), coa=COA)
        verified_hkresp(mn.exchange(ok), message_id=2)
        taken = build_hkreq(
            message_id=3, nai=NAI2, hmk=HMK2, coa=COA, timestamp=to_ntp(time.time())
        )
        assert decode_hkresp(mn.exchange(taken)).status == Status.COA_AUTH_FAILED
        nokey = build_hkreq(
            message_id=4, nai=NAI2, verify=True, with_hks_mac=False, hk=bytes(20),
            timestamp=wall_stamp(),
        )  # fmt: skip
        assert decode_hkresp(mn.exchange(nokey)).status == Status.HK_VERIFY_FAILED
    finally:
        mn.close()


def test_duplicates_get_the_cached_answer_and_the_hks_is_asked_once(
    start_ar: Callable[..., ArProcess],
) -> None:
    """R49/R50 against the real AR (P10): copies of an answered HKReq get the cached
    HKResp byte for byte (same SPI) and reach the HKS once, with the default 3 s cache;
    with the default RETRANS_RATE (2/s) a copy right after an answer is not answered."""
    # Re-sends 0.1 ms apart: the copy, sent once the answer is in, is always later.
    ar = start_ar(sections={"policy": {"retrans_rate": 10000}})
    mn = MobileNodeSocket(ar.udp_port)
    try:
        wire = build_hkreq(message_id=16, coa=COA, timestamp=wall_stamp())
        first = mn.exchange(wire)  # as if lost: the MN retransmits
        response, _ = verified_hkresp(first, message_id=16)
        assert mn.exchange(wire) == first
        assert len(ar.events(name="access-request")) == 1  # the HKS was asked once
        ar.wait_stored(response.spi)
        assert [k.spi for k in ar.stored_keys()] == [response.spi]
    finally:
        mn.close()
    default = start_ar()
    mn = MobileNodeSocket(default.udp_port)
    try:
        wire = build_hkreq(message_id=17, coa=COA, timestamp=wall_stamp())
        assert decode_hkresp(mn.exchange(wire)).status == Status.SUCCESS
        mn.send(wire)  # within 0.5 s of the answer: RETRANS_RATE
        default.wait_event(
            event="discarded", reason="RETRANS_RATE: cached HKResp re-sent too recently"
        )
        assert mn.pending() == [] and len(default.events(name="access-request")) == 1
    finally:
        mn.close()


def malformed(rng: random.Random, valid: bytes) -> bytes:
    if rng.random() < 0.5:
        return rng.randbytes(rng.randrange(0, 300))  # seeded: a failure replays
    data = bytearray(valid)
    for _ in range(rng.randrange(1, 6)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.2:
        data = data[: rng.randrange(len(data))]
    return bytes(data)


def test_thousands_of_malformed_datagrams_then_valid_request(
    start_ar: Callable[..., ArProcess],
) -> None:
    """Must-show 6: random and mutated datagrams neither stop nor slow the daemon for
    good: a valid request right after succeeds. Admission control is off so that every
    datagram reaches the decoder (with it on, all but a burst stop at the per-source
    limit: tests/integration/test_ar_flood.py)."""
    hkp_ar = start_ar(sections={"admission": {"enabled": "no"}})
    mn_socket = MobileNodeSocket(hkp_ar.udp_port)
    rng = random.Random(4)
    template = build_hkreq(message_id=17, timestamp=to_ntp(0), coa=NULL_COA)
    for _ in range(3000):
        mn_socket.send(malformed(rng, template))
    assert hkp_ar.running
    # A fresh MN (answers to mutated requests may still be on their way to the first),
    # another NAI (the mutations may have hit (alice, Message ID) pairs, deduped by §6.3).
    mn = MobileNodeSocket(hkp_ar.udp_port)
    try:
        valid = build_hkreq(message_id=18, nai=NAI2, hmk=HMK2, coa=COA2)
        reply = mn.exchange(valid, timeout=HKEY_REQ_TOUT * N_HO_KEYTRIES)
        verified_hkresp(reply, message_id=18, nai=NAI2, hmk=HMK2)
    finally:
        mn.close()
    assert hkp_ar.running
    assert len(hkp_ar.events(name="discarded")) > 1000  # the flood did reach the role
    assert not [e for e in hkp_ar.events() if e.get("level") == "error"]
    mn_socket.close()


def test_replayed_v_and_v_without_timestamp_against_the_real_ar(
    start_ar: Callable[..., ArProcess], ar_hks: FreeRadiusInstance
) -> None:
    """Issue 16 must-show 1 over UDP with real FreeRADIUS (P6): a recorded V request,
    replayed after a fresh V request from another CoA, gets no Success and the key stays
    bound to the fresh CoA (in the key store too); a V request without a Timestamp gets
    an unsigned TIMESTAMP_REQD. A short response cache and a high TRANS_RATE let the
    test run without waiting; the defaults are the role tests'
    (tests/test_ar_returning.py::test_replayed_v_after_a_fresh_v_from_another_coa_gets_nothing_and_keeps_the_binding)."""
    ar = start_ar(sections={"policy": {"response_cache_time": 0.05, "trans_rate": 10000}})
    mn = MobileNodeSocket(ar.udp_port)
    try:
        first = build_hkreq(message_id=90, coa=COA, timestamp=wall_stamp())
        response, hk = verified_hkresp(mn.exchange(first), message_id=90)

        def v_request(message_id: int, coa: bytes, timestamp: int | None) -> bytes:
            return build_hkreq(message_id=message_id, verify=True, with_hks_mac=False, hk=hk,
                               coa=coa, timestamp=timestamp)  # fmt: skip

        recorded = v_request(91, COA, wall_stamp())
        recorded_answer = mn.exchange(recorded)
        assert decode_hkresp(recorded_answer).verify
        fresh = v_request(92, COA2, wall_stamp())
        assert decode_hkresp(mn.exchange(fresh)).verify
        ar.wait_stored(response.spi, coa=COA2)

        def replay_discarded() -> bool:
            mn.send(recorded)  # again each poll, until its cached answer has gone
            return any(
                e.get("message_id") == 91 and e.get("outcome") == "discarded"
                for e in ar.events(name="exchange")
            )

        wait_until(replay_discarded, 10.0, "the replayed V request discarded")
        # Whatever came back is the cached answer to the original request, no new Success.
        assert all(reply == recorded_answer for reply in mn.pending())
        verified = [e for e in ar.events(name="exchange") if e.get("outcome") == "verified"]
        assert [e["message_id"] for e in verified] == [91, 92]
        assert [k.care_of_address for k in ar.stored_keys()] == [COA2]
        unstamped = decode_hkresp(mn.exchange(v_request(93, COA, None)))
        assert unstamped.status == Status.TIMESTAMP_REQD and not unstamped.options
        assert [k.care_of_address for k in ar.stored_keys()] == [COA2]
    finally:
        mn.close()
