"""Every row of the MN table (hkp_radius/mn/state.py) fires, each from a scripted exchange
that reaches it the way the protocol does (issue 8: the table is the whole truth, no row
is dead). tests/test_mn_stateful.py holds the rows against random interleavings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hkp_radius.mn.role as mn_role
from hkp_radius.constants import Status
from hkp_radius.mn import TRANSITIONS, Input, KeyEstablished, State
from hkp_radius.wire.messages import HKReq, decode_message
from hkp_radius.wire.options import Timestamp

from .mn_peers import AR_ID, T0, FakeAR, Node, hks_signed, node, only, pump, unsigned

Row = tuple[State, Input]


@pytest.fixture
def fired(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[Row]]:
    seen: set[Row] = set()
    real = mn_role.transition

    def recording(state: State, event: Input) -> object:
        seen.add((state, event))
        return real(state, event)

    monkeypatch.setattr(mn_role, "transition", recording)
    yield seen


def _last_request(mn: Node) -> tuple[bytes, HKReq]:
    (datagram,) = mn.datagrams_to_send()
    request = decode_message(datagram.data)
    assert isinstance(request, HKReq)
    return datagram.data, request


def _answer(mn: Node, wire: bytes, now: float) -> None:
    mn.receive_datagram(wire, AR_ID, now)


def test_every_row_of_the_mn_table_fires(fired: set[Row]) -> None:
    S, In = State, Input
    # KEY_RESPONSE, then late copies while it lingers, then LINGER_OVER.
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0)
    wire, _ = _last_request(mn)
    answer = ar.answer(wire, T0)
    assert answer is not None
    _answer(mn, answer, T0)
    _answer(mn, answer, T0 + 0.5)  # (KEY_ESTABLISHED, LATE_ANSWER)
    mn.on_timer(T0 + 1.0)  # (KEY_ESTABLISHED, LINGER_OVER)
    assert {(S.EXPECT_HKRESP, In.KEY_RESPONSE), (S.KEY_ESTABLISHED, In.LATE_ANSWER),
            (S.KEY_ESTABLISHED, In.LINGER_OVER)} <= fired  # fmt: skip

    # Unsigned CoA_AUTH_FAILED: HINT, then HINT_DUE_RETRY_LATER at the timer; a late copy
    # while waiting; RETRY_TIME; a forged success is an INVALID_ANSWER.
    mn = node()
    mn.request_key(AR_ID, T0)
    _, request = _last_request(mn)
    _answer(mn, unsigned(request, Status.COA_AUTH_FAILED), T0)
    mn.on_timer(T0 + 1.0)
    _answer(mn, unsigned(request, Status.COA_AUTH_FAILED), T0 + 1.5)  # late, while waiting
    mn.on_timer(mn.next_timer() or 0.0)  # RETRY_TIME: a fresh HKReq
    fresh, _ = _last_request(mn)
    forged = bytearray(FakeAR().answer(fresh, T0) or b"")
    forged[-1] ^= 1
    _answer(mn, bytes(forged), T0 + 8)  # INVALID_ANSWER: MN-AR MAC does not verify
    assert {(S.EXPECT_HKRESP, In.HINT), (S.EXPECT_HKRESP, In.HINT_DUE_RETRY_LATER),
            (S.EXPECT_RETRY_TIME, In.LATE_ANSWER), (S.EXPECT_RETRY_TIME, In.RETRY_TIME),
            (S.EXPECT_HKRESP, In.INVALID_ANSWER)} <= fired  # fmt: skip

    # Signed CoA_AUTH_FAILED acts at once (RETRY_LATER_ERROR); signed ADMINISTRATIVELY_
    # PROHIBITED is FINAL_ERROR; a late copy after giving up; LINGER_OVER.
    mn = node()
    mn.request_key(AR_ID, T0)
    _, request = _last_request(mn)
    _answer(mn, hks_signed(request, Status.COA_AUTH_FAILED), T0)
    mn = node()
    mn.request_key(AR_ID, T0)
    _, request = _last_request(mn)
    prohibited = hks_signed(request, Status.ADMINISTRATIVELY_PROHIBITED)
    _answer(mn, prohibited, T0)
    _answer(mn, prohibited, T0 + 0.2)
    mn.on_timer(T0 + 1.0)
    assert {(S.EXPECT_HKRESP, In.RETRY_LATER_ERROR), (S.EXPECT_HKRESP, In.FINAL_ERROR),
            (S.GAVE_UP, In.LATE_ANSWER), (S.GAVE_UP, In.LINGER_OVER)} <= fired  # fmt: skip

    # Signed INVALID_TIMESTAMP: CORRECTABLE_ERROR, a new Message ID; the old one's late
    # copy is a LATE_ANSWER while the corrected request is out.
    mn = node()
    mn.request_key(AR_ID, T0)
    _, request = _last_request(mn)
    stamp = request.timestamp or 0
    ahead = Timestamp(stamp + (9 << 32))  # the HKS's clock 9 s ahead
    invalid = hks_signed(request, Status.INVALID_TIMESTAMP, options=(ahead,))
    _answer(mn, invalid, T0)
    _answer(mn, invalid, T0 + 0.1)
    assert {(S.EXPECT_HKRESP, In.CORRECTABLE_ERROR), (S.EXPECT_HKRESP, In.LATE_ANSWER)} <= fired

    # No answer at all: RESPONSE_TIMEOUT x N_HO_KEYTRIES, then TRIES_EXHAUSTED.
    mn = node()
    mn.request_key(AR_ID, T0)
    for _ in range(4):
        mn.on_timer(mn.next_timer() or 0.0)
    assert {(S.EXPECT_HKRESP, In.RESPONSE_TIMEOUT), (S.EXPECT_HKRESP, In.TRIES_EXHAUSTED)} <= fired

    # A verify nobody answers: VERIFY_UNANSWERED (§6.2.3 fallback).
    mn, ar = node(), FakeAR()
    mn.request_key(AR_ID, T0)
    assert only(pump(mn, ar, T0), KeyEstablished)
    mn.on_timer(T0 + 1.0)
    mn.verify_key(AR_ID, T0 + 10)
    for _ in range(5):
        mn.on_timer(mn.next_timer() or 0.0)
    assert (S.EXPECT_HKRESP, In.VERIFY_UNANSWERED) in fired

    # The AR's unsigned TIMESTAMP_REQD: HINT_DUE at the timer resends with a timestamp;
    # unsigned CoA_AUTH_FAILED with no retries left: HINT_DUE_FINAL.
    mn = node(use_timestamps=False)
    mn.request_key(AR_ID, T0)
    _, request = _last_request(mn)
    _answer(mn, unsigned(request, Status.TIMESTAMP_REQD), T0)
    mn.on_timer(T0 + 1.0)
    assert decode_message(mn.datagrams_to_send()[0].data).timestamp is not None  # type: ignore[union-attr]
    mn = node(max_retransmissions=0)
    mn.request_key(AR_ID, T0)
    _, request = _last_request(mn)
    _answer(mn, unsigned(request, Status.COA_AUTH_FAILED), T0)
    mn.on_timer(T0 + 1.0)
    assert {(S.EXPECT_HKRESP, In.HINT_DUE), (S.EXPECT_HKRESP, In.HINT_DUE_FINAL)} <= fired

    assert fired == set(TRANSITIONS)
