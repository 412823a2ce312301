"""A returning MN whose verify (V flag) goes unanswered (draft §6.2.3, R44): after
N_HO_KEYTRIES retransmissions it sends a full MN-HKS request; the held key stays until a
new one replaces it (docs/decisions.md, "## MN")."""

from __future__ import annotations

import dataclasses

import pytest

from hkp_radius.constants import MacSubtype
from hkp_radius.mn import (
    GaveUp,
    KeyEstablished,
    Kind,
    RequestSent,
    VerifyUnanswered,
)
from mn_client import describe_event

from .mn_peers import AR_ID, COA, NAI, T0, FakeAR, Node, ThreeRoles, node, only, pump


def _fire_timers(mn: Node, now: float, times: int) -> tuple[float, list[object]]:
    """Let `times` timers expire with nothing answering; return the time and the events."""
    events: list[object] = []
    for _ in range(times):
        now = mn.next_timer() or 0.0
        mn.on_timer(now)
        mn.datagrams_to_send()
        events += mn.events()
    return now, events


def test_unanswered_verify_falls_back_to_a_full_request_keeping_the_old_key_meanwhile() -> None:
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0, COA)
    original = only(pump(mn, ar, T0), KeyEstablished)[0].key
    mn.on_timer(T0 + 1.0)  # the finished request stops lingering (state.py)
    ar.drop_verify = True  # as an AR whose key differs: §6.3.1 silently discards
    number = mn.verify_key(AR_ID, T0 + 60, COA)
    assert not only(pump(mn, ar, T0 + 60), KeyEstablished)
    now = T0 + 60
    for _ in range(3):  # N_HO_KEYTRIES retransmissions, all dropped
        now = mn.next_timer() or 0.0
        mn.on_timer(now)
        pump(mn, ar, now)
    now = mn.next_timer() or 0.0
    mn.on_timer(now)  # HKEY_REQ_TOUT after the last try: §6.2.3 fallback
    unanswered, resent = mn.events()
    assert isinstance(unanswered, VerifyUnanswered) and isinstance(resent, RequestSent)
    assert unanswered.exchange == number and unanswered.transmissions == 4
    assert resent.kind is Kind.REQUEST and resent.attempt == 1
    assert mn.keys.get(NAI, AR_ID, now) == original  # kept until a new key replaces it
    (established,) = only(pump(mn, ar, now), KeyEstablished)
    assert established.exchange == number and not established.verified and established.replaced
    assert established.key.hk == ar.hks_hk != original.hk
    assert established.elapsed == pytest.approx(4.0)
    verifies, full = ar.seen[1:5], ar.seen[5]
    assert all(v.verify and v.message_id == verifies[0].message_id for v in verifies)
    assert not full.verify and full.mac(MacSubtype.MN_HKS) is not None
    assert full.message_id != verifies[0].message_id
    assert full.mn_nonce is not None and full.mn_nonce != ar.seen[0].mn_nonce
    assert mn.keys.all() == [established.key]


def test_unanswered_verify_and_fallback_give_up_keeping_the_old_key() -> None:
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0, COA)
    original = only(pump(mn, ar, T0), KeyEstablished)[0].key
    mn.on_timer(T0 + 1.0)  # the finished request stops lingering (state.py)
    mn.verify_key(AR_ID, T0 + 60, COA)
    events: list[object] = list(mn.events())
    now, more = _fire_timers(mn, T0 + 60, 8)
    events += more
    kinds = [e.kind for e in only(events, RequestSent)]
    assert kinds == [Kind.VERIFY] * 4 + [Kind.REQUEST] * 4
    assert len(only(events, VerifyUnanswered)) == 1
    (gave_up,) = only(events, GaveUp)
    assert gave_up.reason == "no answer" and gave_up.elapsed == pytest.approx(8.0)
    assert mn.active() == 0 and mn.keys.get(NAI, AR_ID, now) == original


def test_roles_in_memory_verify_the_ar_drops_falls_back_to_a_new_key() -> None:
    roles, mn = ThreeRoles(), node()
    mn.request_key(AR_ID, T0, COA)
    held = only(roles.run(mn, T0), KeyEstablished)[0].key
    mn.keys.put(dataclasses.replace(held, hk=bytes(20)))  # not the key the AR holds
    mn.verify_key(AR_ID, T0 + 30, COA)
    now, events = T0 + 30, roles.run(mn, T0 + 30)
    while not only(events, KeyEstablished) and mn.next_timer() is not None:
        now = mn.next_timer() or 0.0
        mn.on_timer(now)
        events += roles.run(mn, now)
    assert len(only(events, VerifyUnanswered)) == 1
    (fresh,) = only(events, KeyEstablished)
    assert not fresh.verified and fresh.replaced and fresh.elapsed == pytest.approx(4.0)
    assert any(k.spi == fresh.key.spi and k.hk == fresh.key.hk for k in roles.ar.keys)
    dropped = [a for a in roles.ar_actions if "does not verify" in str(a)]
    assert len(dropped) >= 1


def test_hkp_mn_reports_the_fallback() -> None:
    line = describe_event(VerifyUnanswered(1, 4))
    assert "verify unanswered after 4 transmissions" in line
    assert "full MN-HKS request (§6.2.3)" in line
