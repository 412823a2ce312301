"""The MN, AR and HKS roles together, default timers, time injected (issue 16, Must show
2 and 3): lost answers come back from the AR's cache at the MN's own retransmissions
(P10), and forged unsigned errors cost the MN no key (P7 v1.1)."""

from __future__ import annotations

import pytest

from hkp_radius.ar.events import SendHKResp
from hkp_radius.constants import HK_RETRY_INTERVAL, HKEY_REQ_TOUT, Status
from hkp_radius.mn import (
    COA_RETRY_JITTER,
    ErrorReceived,
    GaveUp,
    KeyEstablished,
    RequestSent,
)
from hkp_radius.wire.messages import HKReq, HKResp, decode_message

from .mn_peers import AR_ID, COA, T0, Node, ThreeRoles, node, only, unsigned

AR_ERRORS = (Status.COA_AUTH_FAILED, Status.TIMESTAMP_REQD, Status.HK_VERIFY_FAILED)
FORGEABLE = (*AR_ERRORS, Status.ADMINISTRATIVELY_PROHIBITED, Status.INVALID_TIMESTAMP,
             Status.INVALID_PRF_ALG, Status.INVALID_MAC_ALG)  # fmt: skip


def _spi(wire: bytes) -> int:
    response = decode_message(wire)
    assert isinstance(response, HKResp)
    return response.spi


def _request_sent(mn: Node) -> HKReq:
    """The HKReq the MN has just sent (left in its outputs for the roles to carry)."""
    datagrams = [o for o in mn.outputs if not isinstance(o, (RequestSent, ErrorReceived))]
    request = decode_message(datagrams[-1].data)
    assert isinstance(request, HKReq)
    return request


def test_two_lost_answers_come_from_the_cache_at_1_and_2_s_and_the_hks_is_asked_once() -> None:
    """Must show 2: default timers (HKEY_REQ_TOUT 1 s, cache 3 s, RETRANS_RATE 2/s)."""
    roles, mn = ThreeRoles(), node()
    mn.request_key(AR_ID, T0, COA)
    assert not only(roles.run(mn, T0, lose_answers=1), KeyEstablished)
    assert mn.next_timer() == T0 + HKEY_REQ_TOUT
    mn.on_timer(T0 + 1.0)  # the MN's own retransmission: the cached answer, lost again
    assert not only(roles.run(mn, T0 + 1.0, lose_answers=1), KeyEstablished)
    mn.on_timer(T0 + 2.0)
    events = roles.run(mn, T0 + 2.0)
    (established,) = only(events, KeyEstablished)
    first, second, third = roles.answers_sent
    assert first == second == third and established.key.spi == _spi(first)
    assert len(roles.hks_decisions) == 1  # the HKS was asked once
    assert [e.attempt for e in only(events, RequestSent)] == [3]
    # A third copy of the HKReq within 0.5 s of the last answer is not answered twice.
    copy = next(a for a in reversed(roles.ar_actions) if isinstance(a, SendHKResp))
    request_wire = _last_hkreq(mn, roles)
    again = roles.ar.receive_hkreq(request_wire, "mn", AR_ID, T0 + 2.3, T0 + 2.3)
    assert not [a for a in again if isinstance(a, SendHKResp)] and copy.wire == third
    assert len(roles.hks_decisions) == 1


def _last_hkreq(mn: Node, roles: ThreeRoles) -> bytes:
    """The bytes of the MN's HKReq (every copy is the same bytes, §6.2.1)."""
    mn.role.on_timer(T0, T0)  # nothing is due: just to show no output is pending
    for action in roles.ar_actions:
        if hasattr(action, "mobility_header"):
            return bytes(action.mobility_header)
    raise AssertionError("no Access-Request carried the HKReq")


@pytest.mark.parametrize("status", FORGEABLE)
def test_a_forged_unsigned_error_before_the_genuine_answer_costs_nothing(status: Status) -> None:
    """Must show 3: the forger knows the Message ID and is faster than the AR."""
    roles, mn = ThreeRoles(), node()
    mn.request_key(AR_ID, T0, COA)
    request = _request_sent(mn)
    assert not only(roles.run(mn, T0, lose_answers=1), KeyEstablished)  # held back
    (genuine,) = roles.answers_sent
    mn.receive_datagram(unsigned(request, status), AR_ID, T0 + 0.01)
    events = mn.events()
    (error,) = only(events, ErrorReceived)
    assert not error.authenticated and not only(events, GaveUp)
    mn.receive_datagram(genuine, AR_ID, T0 + 0.02)  # the genuine answer, just after
    (established,) = only(mn.events(), KeyEstablished)
    assert established.elapsed == pytest.approx(0.02)  # no delay at all
    assert AR_ID not in mn.prohibited


def test_a_forged_error_and_a_lost_answer_cost_at_most_the_hints_delay() -> None:
    """Must show 3: the genuine answer is lost; the MN acts on the forged CoA_AUTH_FAILED
    only when its timer fires, waits HK_RETRY_INTERVAL (with jitter), and gets its key."""
    roles, mn = ThreeRoles(), node()
    mn.request_key(AR_ID, T0, COA)
    request = _request_sent(mn)
    roles.run(mn, T0, lose_answers=1)
    mn.receive_datagram(unsigned(request, Status.COA_AUTH_FAILED), AR_ID, T0 + 0.01)
    now = T0
    established: list[KeyEstablished] = []
    for _ in range(4):
        now = mn.next_timer() or now
        mn.on_timer(now)
        established = only(roles.run(mn, now), KeyEstablished)
        if established:
            break
    (key,) = established
    longest = HKEY_REQ_TOUT + HK_RETRY_INTERVAL * (1 + COA_RETRY_JITTER)
    assert key.elapsed <= longest and len(roles.hks_decisions) == 2


def test_forged_administratively_prohibited_never_stops_the_mn() -> None:
    """Must show 3 / P7: only an MN-HKS MAC that verifies makes the MN stop; unsigned, the
    MN keeps retransmitting, gets its key and may use the AR again."""
    roles, mn = ThreeRoles(), node()
    mn.request_key(AR_ID, T0, COA)
    request = _request_sent(mn)
    roles.run(mn, T0, lose_answers=1)  # the genuine answer is lost
    for when in (T0 + 0.01, T0 + 0.5):
        mn.receive_datagram(unsigned(request, Status.ADMINISTRATIVELY_PROHIBITED), AR_ID, when)
    assert not only(mn.events(), GaveUp)
    mn.on_timer(T0 + 1.0)  # a plain retransmission: the cached answer comes back
    (key,) = only(roles.run(mn, T0 + 1.0), KeyEstablished)
    assert key.key.spi == _spi(roles.answers_sent[0]) and AR_ID not in mn.prohibited
    mn.request_key(AR_ID, T0 + 10, COA)  # the AR is not barred
    assert only(roles.run(mn, T0 + 10), KeyEstablished)
