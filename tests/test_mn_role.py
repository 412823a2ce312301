"""The MN role (draft §6.2, §6.5, PROFILE P5/P7/P10) against in-memory peers."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hkp_radius import crypto
from hkp_radius.constants import (
    NULL_COA,
    PRF,
    MacAlgorithm,
    MacSubtype,
    NonceSubtype,
    Status,
)
from hkp_radius.errors import ConfigError, LocalProtocolError
from hkp_radius.hks.role import HKSPolicy
from hkp_radius.mn import (
    MESSAGE_ID_REUSE_GUARD,
    TRANSITIONS,
    Datagram,
    Discarded,
    ErrorReceived,
    GaveUp,
    HeldKey,
    Input,
    KeyEstablished,
    KeyStore,
    MobileNode,
    RequestSent,
    State,
    transition,
)
from hkp_radius.wire import ntp
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import HandoverNonce, MacOption, Timestamp

from .mn_peers import (
    AR2_ID,
    AR_ID,
    COA,
    HMK,
    NAI,
    T0,
    CountingRandom,
    FakeAR,
    Node,
    ThreeRoles,
    config,
    hks_signed,
    node,
    only,
    pump,
    unsigned,
)


def sent(mn: MobileNode) -> list[Datagram]:
    return mn.datagrams_to_send()


# ---- a full request -------------------------------------------------------------


def test_request_establishes_the_key_the_hks_derived() -> None:
    mn, ar = node(), FakeAR()
    number = mn.request_key(AR_ID, T0, COA)
    events = pump(mn, ar, T0 + 0.01)
    (established,) = only(events, KeyEstablished)
    assert established.exchange == number and not established.verified
    key = established.key
    assert key.hk == ar.hks_hk and len(key.hk) == 20
    assert (key.nai, key.ar_id, key.spi, key.lifetime) == (NAI, AR_ID, 256, 3600)
    assert key.expires_at == pytest.approx(T0 + 0.01 + 3600)
    assert key.care_of_address == COA
    assert mn.keys.get(NAI, AR_ID, T0) == key
    assert mn.active() == 0 and mn.state_of(number) is State.KEY_ESTABLISHED  # lingers
    request = ar.seen[0]
    assert not request.verify and request.prf == PRF.HMAC_SHA1
    assert request.care_of_address == COA and request.mn_id == NAI
    assert request.mn_nonce is not None and request.timestamp is not None
    assert request.mac(MacSubtype.MN_HKS) is not None
    assert abs(ntp.from_ntp(request.timestamp) - T0) < 0.01


def test_no_secret_in_reprs() -> None:
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0, COA)
    events = pump(mn, ar, T0)
    text = repr(events) + repr(mn.config) + repr(mn.keys) + repr(mn.keys.all())
    key = mn.keys.all()[0]
    for secret in (HMK, key.hk):
        assert secret.hex() not in text and repr(secret) not in text
    assert "SPI 256" in key.describe(T0)


def test_new_key_replaces_the_old_one() -> None:
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0)
    first = only(pump(mn, ar, T0), KeyEstablished)[0].key
    mn.request_key(AR_ID, T0 + 10)
    (second,) = only(pump(mn, ar, T0 + 10), KeyEstablished)
    assert second.replaced and second.key.spi == first.spi + 1
    assert second.key.hk != first.hk
    assert mn.keys.all() == [second.key]


def test_refresh_sends_a_null_coa() -> None:
    mn, ar = node(), FakeAR(ar_id=AR2_ID)
    mn.refresh_key(AR2_ID, T0)
    (established,) = only(pump(mn, ar, T0), KeyEstablished)
    assert ar.seen[0].care_of_address == NULL_COA and ar.seen[0].coa_is_null
    assert established.key.ar_id == AR2_ID


# ---- retransmission (§6.2.1) ------------------------------------------------------


def test_retransmissions_keep_message_id_and_bytes_then_give_up() -> None:
    mn = node()
    mn.request_key(AR_ID, T0, COA)
    first = sent(mn)
    assert mn.next_timer() == pytest.approx(T0 + 1.0)
    mn.on_timer(T0 + 0.5)  # too early: nothing
    assert sent(mn) == []
    now = T0
    copies = []
    for attempt in range(3):
        now = mn.next_timer() or 0.0
        mn.on_timer(now)
        copies.extend(sent(mn))
        assert mn.next_timer() == pytest.approx(now + 1.0), attempt
    assert [c.data for c in copies] == [first[0].data] * 3
    events = mn.events()
    attempts = [e.attempt for e in only(events, RequestSent)]
    assert attempts == [1, 2, 3, 4]
    assert len({e.message_id for e in only(events, RequestSent)}) == 1
    mn.on_timer(now + 1.0)
    assert sent(mn) == []
    (gave_up,) = only(mn.events(), GaveUp)
    assert gave_up.reason == "no answer" and gave_up.elapsed == pytest.approx(4.0)
    assert mn.active() == 0 and mn.state_of(gave_up.exchange) is State.GAVE_UP  # lingers
    mn.on_timer(now + 2.0)  # one HKEY_REQ_TOUT later it is forgotten
    assert mn.state_of(gave_up.exchange) is State.CLOSED and mn.next_timer() is None


def test_lost_first_request_is_retransmitted_and_answered() -> None:
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0)
    assert pump(mn, ar, T0, drop_first=1) and ar.seen == []
    mn.on_timer(T0 + 1.0)
    events = pump(mn, ar, T0 + 1.0)
    assert len(only(events, KeyEstablished)) == 1
    assert len(ar.seen) == 1


def test_message_ids_are_unique_among_concurrent_exchanges() -> None:
    mn = node()
    for _ in range(256):
        mn.request_key(AR_ID, T0)
    ids = {decode_message(d.data).message_id for d in sent(mn)}  # type: ignore[union-attr]
    assert len(ids) == 256
    with pytest.raises(LocalProtocolError):
        mn.request_key(AR_ID, T0)
    mn.request_key(AR2_ID, T0)  # another AR has its own IDs


# ---- silent discards (§6.2.2) -----------------------------------------------------


def _waiting() -> tuple[MobileNode, HKReq, bytes]:
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0)
    (datagram,) = sent(mn)
    request = decode_message(datagram.data)
    assert isinstance(request, HKReq)
    answer = ar.answer(datagram.data, T0)
    assert answer is not None
    mn.events()
    return mn, request, answer


def _assert_discarded(mn: MobileNode, wire: bytes, reason: str) -> None:
    mn.receive_datagram(wire, AR_ID, T0)
    events = mn.events()
    assert [type(e) for e in events] == [Discarded], events
    assert reason in events[0].reason
    assert mn.active() == 1 and mn.state_of(1) is State.EXPECT_HKRESP


def test_foreign_message_id_is_discarded() -> None:
    mn, request, answer = _waiting()
    resp = decode_message(answer)
    assert isinstance(resp, HKResp)
    foreign = HKResp((request.message_id + 1) % 256, False, 1, 0, options=resp.options)
    _assert_discarded(mn, foreign.encode(), "foreign Message ID")
    mn.receive_datagram(answer, AR2_ID, T0)  # right ID, another AR
    assert only(mn.events(), Discarded)


def test_success_with_a_bad_mn_ar_mac_is_discarded_then_the_real_one_accepted() -> None:
    mn, _, answer = _waiting()
    tampered = bytearray(answer)
    tampered[-1] ^= 1
    _assert_discarded(mn, bytes(tampered), "does not verify")
    mn.receive_datagram(answer, AR_ID, T0)
    assert only(mn.events(), KeyEstablished)


def test_success_without_mn_ar_mac_is_discarded() -> None:
    mn, request, answer = _waiting()
    resp = decode_message(answer)
    assert isinstance(resp, HKResp)
    bare = HKResp(request.message_id, False, 1, 0, 3600, 300, resp.options[:-1])
    _assert_discarded(mn, bare.encode(), "without an MN-AR MAC")


def test_unsupported_mac_algorithm_is_discarded() -> None:
    mn, request, answer = _waiting()
    resp = decode_message(answer)
    assert isinstance(resp, HKResp)
    odd = HKResp(
        request.message_id,
        False,
        1,
        0,
        3600,
        300,
        (*resp.options[:-1], MacOption(MacSubtype.MN_AR, 7, bytes(20))),
    )
    _assert_discarded(mn, odd.encode(), "unsupported algorithm 7")
    for wire in (b"", b"\x00" * 7, request.encode()):
        mn.receive_datagram(wire, AR_ID, T0)
        assert only(mn.events(), Discarded)


def test_error_with_a_bad_mn_hks_mac_is_discarded() -> None:
    mn, request, _ = _waiting()
    forged = hks_signed(request, Status.ADMINISTRATIVELY_PROHIBITED, hmk=bytes(64))
    _assert_discarded(mn, forged, "MN-HKS MAC does not verify")


# ---- error handling (§6.2.2.1, P7) ------------------------------------------------


def test_invalid_timestamp_adjusts_the_clock_and_recovers() -> None:
    mn, ar = Node(MobileNode(config(), CountingRandom(), clock_offset=-100.0)), FakeAR()
    mn.request_key(AR_ID, T0)
    events = pump(mn, ar, T0)
    (error,) = only(events, ErrorReceived)
    assert error.status == Status.INVALID_TIMESTAMP and error.authenticated
    assert "+100 s" in error.reaction
    assert len(only(events, KeyEstablished)) == 1
    assert mn.clock_offset == pytest.approx(0.0, abs=1.0)
    first, second = ar.seen
    assert first.message_id != second.message_id  # a corrected HKReq is a new one
    assert abs(ntp.from_ntp(second.timestamp or 0) - T0) < 1.0


def test_invalid_timestamp_echoing_other_low_bits_is_discarded() -> None:
    mn, request, _ = _waiting()
    other = ((ntp.to_ntp(T0 + 50) >> 32) << 32) | ((request.timestamp or 0) ^ 1) & 0xFFFFFFFF
    wire = hks_signed(request, Status.INVALID_TIMESTAMP, options=(Timestamp(other),))
    _assert_discarded(mn, wire, "low 32 bits")


def test_unsigned_hks_errors_are_hints_only() -> None:
    mn, request, answer = _waiting()
    for status in (
        Status.ADMINISTRATIVELY_PROHIBITED,
        Status.INVALID_TIMESTAMP,
        Status.INVALID_PRF_ALG,
        Status.INVALID_MAC_ALG,
        99,
    ):
        mn.receive_datagram(unsigned(request, status), AR_ID, T0)
        (error,) = mn.events()
        assert isinstance(error, ErrorReceived) and not error.authenticated
        assert "hint" in error.reaction
        assert mn.state_of(1) is State.EXPECT_HKRESP and sent(mn) == []
    assert mn.clock_offset == 0.0 and mn.prohibited == set()
    mn.receive_datagram(answer, AR_ID, T0)
    assert only(mn.events(), KeyEstablished)


def test_signed_administratively_prohibited_stops_requests_via_that_ar() -> None:
    mn, ar = node(), FakeAR(authorized=False)
    mn.request_key(AR_ID, T0)
    events = pump(mn, ar, T0)
    (error,) = only(events, ErrorReceived)
    assert error.authenticated and error.status == Status.ADMINISTRATIVELY_PROHIBITED
    (gave_up,) = only(events, GaveUp)
    assert gave_up.last_status == Status.ADMINISTRATIVELY_PROHIBITED
    assert AR_ID in mn.prohibited and len(ar.seen) == 1
    with pytest.raises(LocalProtocolError, match="ADMINISTRATIVELY_PROHIBITED"):
        mn.request_key(AR_ID, T0 + 1)
    mn.request_key(AR2_ID, T0 + 1)  # another AR is still fine


def test_timestamp_reqd_from_the_hks_and_from_the_ar() -> None:
    for ar in (
        FakeAR(policy=HKSPolicy(require_timestamp=True)),
        FakeAR(require_timestamp=True),
    ):
        mn = node(use_timestamps=False)
        mn.request_key(AR_ID, T0)
        events = pump(mn, ar, T0)
        (error,) = only(events, ErrorReceived)
        assert error.status == Status.TIMESTAMP_REQD
        if not error.authenticated:  # the AR's, unsigned (P7 v1.1): acted on at the timer
            assert not only(events, KeyEstablished) and mn.next_timer() == T0 + 1.0
            mn.on_timer(T0 + 1.0)
            events = pump(mn, ar, T0 + 1.0)
        assert only(events, KeyEstablished)
        assert ar.seen[0].timestamp is None and ar.seen[1].timestamp is not None
        assert mn.use_timestamps


def test_invalid_prf_alg_resends_with_the_required_prf() -> None:
    mn = node(prf=PRF.HMAC_SHA256)
    ar = FakeAR(policy=HKSPolicy(allowed_prfs=frozenset({PRF.HMAC_SHA1})))
    mn.request_key(AR_ID, T0)
    events = pump(mn, ar, T0)
    assert only(events, ErrorReceived)[0].status == Status.INVALID_PRF_ALG
    (established,) = only(events, KeyEstablished)
    assert established.key.prf == PRF.HMAC_SHA1 and ar.seen[1].prf == PRF.HMAC_SHA1


def test_invalid_mac_alg_resends_with_the_required_algorithm() -> None:
    mn = node(mac_algorithm=MacAlgorithm.HMAC_SHA256)
    ar = FakeAR(policy=HKSPolicy(allowed_mac_algorithms=frozenset({MacAlgorithm.HMAC_SHA1})))
    mn.request_key(AR_ID, T0)
    events = pump(mn, ar, T0)
    assert only(events, ErrorReceived)[0].status == Status.INVALID_MAC_ALG
    assert only(events, KeyEstablished)
    second_mac = ar.seen[1].mac(MacSubtype.MN_HKS)
    assert second_mac is not None and second_mac.algorithm == MacAlgorithm.HMAC_SHA1


def test_coa_auth_failed_waits_longer_than_hk_retry_interval() -> None:
    mn, ar = node(), FakeAR(coa_failures=1)
    mn.request_key(AR_ID, T0, COA)
    events = pump(mn, ar, T0)
    assert only(events, ErrorReceived)[0].status == Status.COA_AUTH_FAILED
    assert mn.state_of(1) is State.EXPECT_HKRESP  # unsigned: a hint until the timer (P7)
    mn.on_timer(T0 + 1.0)
    assert mn.state_of(1) is State.EXPECT_RETRY_TIME and sent(mn) == []
    timer = mn.next_timer()
    assert timer is not None and T0 + 6.0 < timer <= T0 + 8.5
    mn.on_timer(T0 + 6.0)
    assert sent(mn) == []
    mn.on_timer(timer)
    events = pump(mn, ar, timer)
    assert only(events, KeyEstablished)
    assert ar.seen[0].message_id != ar.seen[1].message_id


def test_coa_auth_failed_gives_up_after_n_ho_keytries() -> None:
    mn, ar = node(), FakeAR(coa_failures=100)
    mn.request_key(AR_ID, T0, COA)
    now = T0
    events = pump(mn, ar, now)
    for _ in range(7):  # each CoA_AUTH_FAILED: the hint's timer, then the retry wait
        now = mn.next_timer() or 0.0
        mn.on_timer(now)
        events = pump(mn, ar, now)
    (gave_up,) = only(events, GaveUp)
    assert gave_up.last_status == Status.COA_AUTH_FAILED
    assert len(ar.seen) == 4  # the first HKReq and three retries


def test_verify_held_key_then_hk_verify_failed_leads_to_a_full_request() -> None:
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0, COA)
    original = only(pump(mn, ar, T0), KeyEstablished)[0].key
    mn.verify_key(AR_ID, T0 + 60, COA)
    (verified,) = only(pump(mn, ar, T0 + 60), KeyEstablished)
    assert verified.verified and verified.key.hk == original.hk
    assert verified.key.spi == original.spi
    request = ar.seen[-1]
    assert request.verify and request.mac(MacSubtype.MN_HKS) is None
    assert isinstance(request.options[-1], MacOption)
    assert request.options[-1].subtype == MacSubtype.MN_AR
    ar.keys.clear()  # the AR forgot the key
    mn.verify_key(AR_ID, T0 + 120, COA)
    events = pump(mn, ar, T0 + 120)
    assert only(events, ErrorReceived)[0].status == Status.HK_VERIFY_FAILED
    mn.on_timer(T0 + 121)  # unsigned (P7 v1.1): acted on when the timer fires
    (fresh,) = only(events + pump(mn, ar, T0 + 121), KeyEstablished)
    assert not fresh.verified and fresh.replaced and fresh.key.hk != original.hk
    assert ar.seen[-1].mac(MacSubtype.MN_HKS) is not None and not ar.seen[-1].verify


def test_short_hmk_is_refused_by_the_config() -> None:
    short = HMK[:63]
    with pytest.raises(ConfigError, match="63 octets") as caught:
        config(hmk=short)
    text = str(caught.value)
    assert "at least 64" in text and NAI.decode() in text
    assert short.hex()[:16] not in text and repr(short)[:20] not in text
    assert config(hmk=HMK).hmk == HMK  # 64 octets are enough


def test_verify_without_a_key_is_refused_locally() -> None:
    with pytest.raises(LocalProtocolError, match="request one first"):
        node().verify_key(AR_ID, T0)


def test_v_response_with_a_wrong_key_is_discarded() -> None:
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0)
    pump(mn, ar, T0)
    ar.keys[NAI].hk = bytes(20)
    mn.verify_key(AR_ID, T0 + 1)
    (datagram,) = sent(mn)
    request = decode_message(datagram.data)
    assert isinstance(request, HKReq)
    forged = ar.signed_success(request, ar.keys[NAI], verified=True, options=())
    mn.receive_datagram(forged, AR_ID, T0 + 1)
    (discarded,) = only(mn.events(), Discarded)
    assert "held key" in discarded.reason


def test_success_echoing_another_timestamp_is_discarded() -> None:
    mn, request, answer = _waiting()
    resp = decode_message(answer)
    assert isinstance(resp, HKResp)
    nonce = resp.hks_nonce or b""
    hk = crypto.derive_hk(HMK, 1, request.mn_nonce or b"", nonce, NAI, AR_ID)
    other = HKResp(
        request.message_id,
        False,
        1,
        0,
        3600,
        300,
        (
            HandoverNonce(NonceSubtype.HKS_NONCE, nonce),
            Timestamp((request.timestamp or 0) + 1),
            MacOption(MacSubtype.MN_AR, 1),
        ),
    )
    _assert_discarded(mn, crypto.sign_message(other, {MacSubtype.MN_AR: hk}), "timestamp")


# ---- the table and the invariant --------------------------------------------------


def test_a_pair_missing_from_the_table_is_a_local_protocol_error() -> None:
    """h2's rule; that every row can fire is shown by tests/test_mn_stateful.py."""
    for state, step in itertools.product(State, Input):
        if (state, step) in TRANSITIONS:
            assert transition(state, step) == TRANSITIONS[(state, step)]
        else:
            with pytest.raises(LocalProtocolError, match="no transition"):
                transition(state, step)
    assert {s for s, _ in TRANSITIONS} == set(State) - {State.CLOSED}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_never_raises(data: bytes) -> None:
    mn = node()
    mn.request_key(AR_ID, T0)
    mn.receive_datagram(data, AR_ID, T0)
    assert all(isinstance(e, (Discarded, RequestSent)) for e in mn.events())


def test_key_store_replaces_and_expires() -> None:
    store = KeyStore()
    key = HeldKey(NAI, AR_ID, 300, 10, T0, T0 + 10, 1, 1, hk=b"k" * 20)
    assert store.put(key) is None and store.put(key) == key and len(store) == 1
    assert store.get(NAI, AR_ID, T0 + 9) == key and store.get(NAI, AR_ID, T0 + 10) is None
    assert store.expire(T0 + 11) == [key] and len(store) == 0


# ---- three roles in memory: MN <-> AR (hkp_radius.ar) <-> HKS (hkp_radius.hks) ------


def test_roles_in_memory_request_then_verify() -> None:
    roles, mn = ThreeRoles(), node()
    mn.request_key(AR_ID, T0, COA)
    (established,) = only(roles.run(mn, T0), KeyEstablished)
    stored = next(iter(roles.ar.keys))
    assert established.key.spi == stored.spi and established.key.hk == stored.hk
    assert established.key.lifetime == 3600
    mn.verify_key(AR_ID, T0 + 30, COA)
    (verified,) = only(roles.run(mn, T0 + 30), KeyEstablished)
    assert verified.verified and verified.key.spi == stored.spi


def test_roles_in_memory_invalid_timestamp_recovers() -> None:
    roles = ThreeRoles()
    mn = Node(MobileNode(config(), CountingRandom(), clock_offset=3600.0))
    mn.request_key(AR_ID, T0, COA)
    events = roles.run(mn, T0)
    (error,) = only(events, ErrorReceived)
    assert error.status == Status.INVALID_TIMESTAMP and error.authenticated
    assert only(events, KeyEstablished)
    assert mn.clock_offset == pytest.approx(0.0, abs=1.0)


def test_roles_in_memory_lost_request_and_returning_mn_after_ar_restart() -> None:
    roles, mn = ThreeRoles(), node()
    mn.request_key(AR_ID, T0, COA)
    assert not only(roles.run(mn, T0, lose=1), KeyEstablished)
    mn.on_timer(T0 + 1.0)
    assert only(roles.run(mn, T0 + 1.0), KeyEstablished)
    roles_after_restart = ThreeRoles()  # an AR that lost its keys
    mn.verify_key(AR_ID, T0 + 5, COA)
    events = roles_after_restart.run(mn, T0 + 5)
    assert only(events, ErrorReceived)[0].status == Status.HK_VERIFY_FAILED
    mn.on_timer(T0 + 6)  # unsigned (P7 v1.1): acted on when the timer fires
    (fresh,) = only(events + roles_after_restart.run(mn, T0 + 6), KeyEstablished)
    assert not fresh.verified and fresh.replaced


def test_roles_in_memory_coa_auth_failed() -> None:
    roles, mn = ThreeRoles(coa_valid=False), node()
    mn.request_key(AR_ID, T0, COA)
    events = roles.run(mn, T0)
    assert only(events, ErrorReceived)[0].status == Status.COA_AUTH_FAILED
    mn.on_timer(T0 + 1.0)
    assert mn.state_of(1) is State.EXPECT_RETRY_TIME


def test_message_id_not_reused_while_the_ar_may_still_cache_its_answer() -> None:
    """§6.2.1 "a unique Message ID" with §6.3 "The AR SHOULD buffer the information to be
    sent to the MN for a maximum value of HKEY_REQ_TOUT": an ID sent to an AR is not used
    again with it within MESSAGE_ID_REUSE_GUARD, or the AR would answer the new request
    with its cached answer to the old one."""
    mn, ar = node(), FakeAR()
    used = []
    for i in range(256):
        now = T0 + i * 0.001
        mn.request_key(AR_ID, now, COA)
        sent = mn.datagrams_to_send()
        used.append(decode_message(sent[0].data).message_id)
        for datagram in sent:
            answer = ar.answer(datagram.data, now)
            assert answer is not None
            mn.receive_datagram(answer, datagram.ar_id, now)
        assert only(list(mn.events()), KeyEstablished)
    assert sorted(used) == list(range(256))
    with pytest.raises(LocalProtocolError, match="HKEY_REQ_TOUT"):
        mn.request_key(AR_ID, T0 + 1.0, COA)
    # When one is free again: the first ID leaves the guard (the load generator waits).
    assert mn.message_id_free_at(AR_ID, T0 + 1.0) == T0 + MESSAGE_ID_REUSE_GUARD
    assert mn.message_id_free_at(AR2_ID, T0 + 1.0) == T0 + 1.0
    mn.request_key(AR_ID, T0 + MESSAGE_ID_REUSE_GUARD, COA)
    assert decode_message(mn.datagrams_to_send()[0].data).message_id == used[0]
    later = T0 + MESSAGE_ID_REUSE_GUARD + 0.0015
    mn.request_key(AR_ID, later, COA)
    assert decode_message(mn.datagrams_to_send()[0].data).message_id == used[1]
    # Another AR keeps its own Message IDs.
    other = bytes(15) + b"\x09"
    mn.request_key(other, T0 + 1.0, COA)
    assert mn.datagrams_to_send()
