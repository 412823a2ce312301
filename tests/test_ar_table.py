"""The AR's transition table is the whole truth (issue 8, the role API convention):
every pair missing from TRANSITIONS raises LocalProtocolError, and every row that is
there can fire: each case below drives the real role into the row's state, gives it the
row's input, and checks that exactly that row fired and the record ends in the row's
next state (h2's table tests, made to drive the role rather than look the table up)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hkp_radius.ar.role as role_module
from hkp_radius.ar.admission import Admission, AdmissionConfig
from hkp_radius.ar.config import ARConfig, NullCoA
from hkp_radius.ar.events import HKSAccept, HKSReject, SendAccessRequest, ValidateCoA
from hkp_radius.ar.role import AccessRouter
from hkp_radius.ar.state import TRANSITIONS, Do, Input, State, transition
from hkp_radius.constants import NULL_COA
from hkp_radius.errors import LocalProtocolError
from hkp_radius.hks.role import HKSPolicy
from tests.ar_helpers import COA, COA2, HMK2, NAI, NAI2, build_hkreq, mn_nonce
from tests.test_ar_role import Harness, issue, of, returning

S, In = State, Input


@given(st.sampled_from(list(State)), st.sampled_from(list(Input)))
def test_a_pair_is_a_row_or_an_error(state: State, event: Input) -> None:
    if (state, event) in TRANSITIONS:
        do, next_state = transition(state, event)
        assert do in AccessRouter._HANDLERS and isinstance(next_state, State)
        assert next_state is not State.RECEIVED  # RECEIVED is left at once
    else:
        with pytest.raises(LocalProtocolError):
            transition(state, event)


def test_closed_accepts_nothing_and_every_do_has_a_handler() -> None:
    assert not [pair for pair in TRANSITIONS if pair[0] is State.CLOSED]
    assert set(AccessRouter._HANDLERS) == set(Do)


@dataclass
class Case:
    h: Harness
    nai: bytes
    message_id: int
    fire: Callable[[], object]


def _pending(h: Harness, wire: bytes) -> int:
    """Send `wire`; the ref of the ValidateCoA or SendAccessRequest it caused."""
    actions = h.send(wire)
    refs = [a.ref for a in actions if isinstance(a, (ValidateCoA, SendAccessRequest))]
    assert refs, actions
    return refs[0]


def in_coa_check(h: Harness, message_id: int = 7) -> tuple[bytes, int]:
    wire = build_hkreq(message_id=message_id, coa=COA, timestamp=h.stamp())
    return wire, _pending(h, wire)


def in_binding_check(h: Harness) -> tuple[bytes, int, int]:
    spi = issue(h, message_id=1, coa=COA)
    h.advance(1.0)
    wire = returning(h, spi, message_id=7, coa=COA2)
    return wire, _pending(h, wire), spi


def in_hks_answer(h: Harness, stamped: bool = True) -> tuple[bytes, int]:
    wire = build_hkreq(message_id=7, coa=COA, timestamp=h.stamp() if stamped else None)
    ref = _pending(h, wire)
    request = of(SendAccessRequest, h.ar.coa_validated(ref, True, h.now))
    return wire, request[0].ref


def clash(h: Harness, message_id: int = 7) -> bytes:
    """Another datagram with the NAI and Message ID of the record."""
    return build_hkreq(message_id=message_id, coa=COA, nonce=mn_nonce(message_id, b"other"))


def answer_with(h: Harness, ref: int, kind: str) -> object:
    request = SendAccessRequest(ref, NAI, b"", b"", b"")
    if kind == "timeout":
        return h.ar.radius_timeout(ref, h.now)
    answers = {
        "accept": HKSAccept(bytes(20), bytes(16), 3600, 1, None),
        "unusable": HKSAccept(None, bytes(16)),
        "silent": HKSReject(None),
    }
    if kind == "with-response":
        h.policy = HKSPolicy(require_timestamp=True)
        found = [r for r in h.ar._by_ref.values() if r.ref == ref]
        request = SendAccessRequest(ref, NAI, found[0].wire, found[0].ar_address, COA)
        answer = h.hks_answer(request)
    else:
        answer = answers[kind]
    return h.ar.receive_radius_answer(ref, answer, h.now, h.wall)


def received_case(event: Input) -> Case:
    h = Harness()
    mid = 7
    if event is In.OVER_CAPACITY:
        h = Harness(ARConfig(max_records=1, null_coa=NullCoA.ALWAYS))
        h.send(build_hkreq(message_id=1, coa=NULL_COA))
    if event is In.ADMISSION_REFUSED:  # the NAI's bucket holds one request
        h = Harness(admission=Admission(AdmissionConfig(nai_burst=1, nai_rate=0.1)))
        h.send(build_hkreq(message_id=1, coa=COA, timestamp=h.stamp()))
    if event in (In.TRANS_RATE_EXCEEDED, In.MAC_FAILS, In.TIMESTAMP_STALE, In.VERIFIED_BOUND,
                 In.NEEDS_HKS, In.NEEDS_BINDING_CHECK, In.COA_TAKEN):  # fmt: skip
        spi = issue(h, message_id=1, coa=COA)
        h.advance(1.0)
    if event is In.TRANS_RATE_EXCEEDED:
        h.exchange(returning(h, spi, message_id=2, coa=COA))
    wires: dict[Input, Callable[[], bytes]] = {
        In.NO_MN_HKS_MAC: lambda: build_hkreq(with_hks_mac=False),
        In.NO_MN_AR_MAC: lambda: build_hkreq(verify=True),
        In.OVER_CAPACITY: lambda: build_hkreq(coa=NULL_COA),
        In.TRANS_RATE_EXCEEDED: lambda: returning(h, spi, message_id=mid, coa=COA),
        In.MAC_FAILS: lambda: build_hkreq(
            verify=True, with_hks_mac=False, hk=bytes(20), timestamp=h.stamp()
        ),
        In.TIMESTAMP_STALE: lambda: returning(
            h, spi, coa=COA, message_id=mid, timestamp=h.stamp() - (60 << 32)
        ),
        In.TIMESTAMP_MISSING: lambda: build_hkreq(verify=True, with_hks_mac=False, hk=bytes(20)),
        In.NULL_COA_REFUSED: lambda: build_hkreq(coa=NULL_COA),
        In.COA_TAKEN: lambda: build_hkreq(nai=NAI2, hmk=HMK2, coa=COA),
        In.NO_KEY: lambda: build_hkreq(
            verify=True, with_hks_mac=False, hk=bytes(20), timestamp=h.stamp()
        ),
        In.VERIFIED_BOUND: lambda: returning(h, spi, message_id=mid, coa=COA),
        In.NEEDS_HKS: lambda: build_hkreq(coa=COA, timestamp=h.stamp()),
        In.NEEDS_COA_CHECK: lambda: build_hkreq(coa=COA, timestamp=h.stamp()),
        In.NEEDS_BINDING_CHECK: lambda: returning(h, spi, message_id=mid, coa=COA2),
        In.ADMISSION_REFUSED: lambda: build_hkreq(coa=COA, timestamp=h.stamp()),
    }
    wire = wires[event]()
    nai = NAI2 if event is In.COA_TAKEN else NAI
    return Case(h, nai, mid, lambda: h.send(wire))


def case_for(state: State, event: Input) -> Case:
    if state is S.RECEIVED:
        return received_case(event)
    h = Harness()
    if state is S.ANSWERED:
        wire = build_hkreq(coa=COA, timestamp=h.stamp())
        h.exchange(wire)
        fires: dict[Input, Callable[[], object]] = {
            In.COPY_RESEND: lambda: (h.advance(0.5), h.send(wire)),
            In.COPY_TOO_SOON: lambda: h.send(wire),
            In.CLASH: lambda: h.send(clash(h)),
            In.NEIGHBOUR_GONE: lambda: h.ar.neighbour_gone(COA, h.now),
            In.DEADLINE: lambda: h.advance(3.0),
        }
        return Case(h, NAI, 7, fires[event])
    if state is S.EXPECT_COA_CHECK:
        if event is In.ADMISSION_REFUSED:  # the one HKS slot fills during the check
            h = Harness(admission=Admission(AdmissionConfig(max_in_flight=1, reserved_for_known=0)))
            other = build_hkreq(message_id=9, nai=NAI2, hmk=HMK2, coa=COA2, timestamp=h.stamp())
            other_ref = _pending(h, other)
        wire, ref = in_coa_check(h)
        if event is In.ADMISSION_REFUSED:
            assert of(SendAccessRequest, h.ar.coa_validated(other_ref, True, h.now))
    elif state is S.EXPECT_BINDING_CHECK:
        if event is In.KEY_EXPIRED:
            h = Harness(policy=HKSPolicy(key_lifetime=60))
            spi = issue(h, message_id=1, coa=COA)
            h.advance(59.5)
            wire = returning(h, spi, message_id=7, coa=COA2)
            ref = _pending(h, wire)
            h.advance(1.0)  # the key's lifetime ends during the check
        else:
            wire, ref, spi = in_binding_check(h)
        if event is In.TIMESTAMP_STALE:  # a newer V request of the key wins meanwhile
            h.exchange(returning(h, spi, message_id=8, coa=COA))
    else:
        wire, ref = in_hks_answer(h, stamped=event is not In.HKS_REJECT_WITH_RESPONSE)
        if state is S.EXPECT_HKS_ANSWER_FOR_DEPARTED:
            h.ar.neighbour_gone(COA, h.now)
    fires = {
        In.COPY: lambda: h.send(wire),
        In.CLASH: lambda: h.send(clash(h)),
        In.COA_VALID: lambda: h.ar.coa_validated(ref, True, h.now),
        In.ADMISSION_REFUSED: lambda: h.ar.coa_validated(ref, True, h.now),
        In.COA_INVALID: lambda: h.ar.coa_validated(ref, False, h.now),
        In.KEY_EXPIRED: lambda: h.ar.coa_validated(ref, True, h.now),
        In.TIMESTAMP_STALE: lambda: h.ar.coa_validated(ref, True, h.now),
        In.NEIGHBOUR_GONE: lambda: h.ar.neighbour_gone(COA if state is not
                                                       S.EXPECT_BINDING_CHECK else COA2, h.now),
        In.DEADLINE: lambda: h.advance(100.0),
        In.HKS_ACCEPT: lambda: answer_with(h, ref, "accept"),
        In.HKS_REJECT_WITH_RESPONSE: lambda: answer_with(h, ref, "with-response"),
        In.HKS_REJECT_SILENT: lambda: answer_with(h, ref, "silent"),
        In.HKS_ANSWER_UNUSABLE: lambda: answer_with(h, ref, "unusable"),
        In.HKS_TIMEOUT: lambda: answer_with(h, ref, "timeout"),
    }  # fmt: skip
    return Case(h, NAI, 7, fires[event])


@pytest.fixture
def fired(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[State, Input]]]:
    seen: list[tuple[State, Input]] = []

    def recording(state: State, event: Input) -> tuple[Do, State]:
        seen.append((state, event))
        return transition(state, event)

    monkeypatch.setattr(role_module, "transition", recording)
    yield seen


ROWS = sorted(TRANSITIONS, key=lambda pair: (pair[0].value, pair[1].value))


@pytest.mark.parametrize(("state", "event"), ROWS, ids=[f"{s.value}/{i.value}" for s, i in ROWS])
def test_every_row_fires(state: State, event: Input, fired: list[tuple[State, Input]]) -> None:
    case = case_for(state, event)
    fired.clear()
    case.fire()
    assert (state, event) in fired
    _do, next_state = TRANSITIONS[(state, event)]
    held = case.h.ar.state_of(case.nai, case.message_id)
    assert held is (None if next_state is State.CLOSED else next_state)
