"""The MN role held against random interleavings (issue 16 must-show 7; STYLE: h2's
Hypothesis tests): requests, verifies and refreshes with two ARs (each answering through
the real HKS role, sometimes with CoA_AUTH_FAILED or an AR-side TIMESTAMP_REQD), lost and
duplicated datagrams, late copies and replays of old answers, forged unsigned errors,
forged signed errors and forged successes, and timer firings, time injected. After
every step:

- no key without an HKS answer: every held HK is one an HKS derived;
- a key changes only with a KeyEstablished output of that step, and its CoA is the one
  the exchange asked for (a forged or replayed answer never moves it);
- an authenticated answer is never lost to a forged one: a forged answer (an unsigned or
  badly signed error, a success with a MAC that does not verify) changes no exchange's
  state and sends nothing, and a genuine success to the Message ID an exchange waits on
  establishes its key in that step, whatever came before it;
- no exchange outlives its deadline once the timers have run (exchange_deadline plus the
  one HKEY_REQ_TOUT a finished exchange lingers, in the MN's own time: a timer that the
  machine fires late, as `advance` does, delays every later timer by as much, so the
  lateness of each firing is added), and every output is well-formed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hkp_radius.constants import NULL_COA, MacAlgorithm, MacSubtype, NonceSubtype, Status
from hkp_radius.hks.role import HKSPolicy
from hkp_radius.mn import (
    Datagram,
    Discarded,
    ErrorReceived,
    GaveUp,
    KeyEstablished,
    MobileNode,
    Output,
    RequestSent,
    State,
    VerifyUnanswered,
)
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import HandoverNonce, MacOption
from mn_client import exchange_deadline
from tests.mn_peers import AR2_ID, AR_ID, COA, NAI, T0, FakeAR, config, unsigned
from tests.random_source import CountingRandom

COA2 = bytes.fromhex("20010db8000000000000000000000200")
LINGER = 1.0  # HKEY_REQ_TOUT, the default request_timeout
OUTPUTS = (Datagram, RequestSent, KeyEstablished, ErrorReceived, Discarded, VerifyUnanswered,
           GaveUp)  # fmt: skip


@dataclass
class Answer:
    ar_id: bytes
    wire: bytes
    genuine: bool  # built by the AR with the HKS's answer (False: forged)
    success: bool


class MNMachine(RuleBasedStateMachine):
    @initialize(
        use_timestamps=st.booleans(),
        clock_offset=st.sampled_from([0.0, 0.0, -400.0, 900.0]),
        hks_requires=st.booleans(),
    )
    def setup(self, use_timestamps: bool, clock_offset: float, hks_requires: bool) -> None:
        self.mn = MobileNode(
            config(use_timestamps=use_timestamps), CountingRandom(b"stateful"), None, clock_offset
        )
        policy = HKSPolicy(require_timestamp=hks_requires)
        self.ars = {AR_ID: FakeAR(ar_id=AR_ID, policy=policy),
                    AR2_ID: FakeAR(ar_id=AR2_ID, policy=policy)}  # fmt: skip
        self.now = T0
        self.requests: list[tuple[bytes, bytes]] = []  # HKReqs on the way: (AR-ID, wire)
        self.answers: list[Answer] = []  # HKResps on the way
        self.history: list[Answer] = []  # every answer ever sent, for replays
        self.minted: set[bytes] = set()  # every HK an HKS derived
        self.started: dict[int, tuple[float, bytes, bytes]] = {}  # number -> (t, AR, CoA)
        self.late: dict[int, float] = {}  # number -> seconds its timers fired late in all
        self.waiting: dict[int, tuple[bytes, int]] = {}  # number -> (AR-ID, Message ID)
        self.keys_before = self._keys()

    # ---- bookkeeping ----------------------------------------------------------------

    def _keys(self) -> dict[tuple[bytes, bytes], tuple[int, bytes, bytes]]:
        return {(k.nai, k.ar_id): (k.spi, k.hk, k.care_of_address) for k in self.mn.keys.all()}

    def _absorb(self, outputs: list[Output]) -> list[Output]:
        established = set()
        for output in outputs:
            assert isinstance(output, OUTPUTS), output
            if isinstance(output, Datagram):
                self.requests.append((output.ar_id, output.data))
            elif isinstance(output, RequestSent):
                self.waiting[output.exchange] = (output.ar_id, output.message_id)
            elif isinstance(output, KeyEstablished):
                established.add((output.key.nai, output.key.ar_id))
                _, ar_id, coa = self.started[output.exchange]
                assert output.key.ar_id == ar_id and output.key.care_of_address == coa
                assert output.key.hk in self.minted
        after = self._keys()
        for name in set(after) | set(self.keys_before):
            if after.get(name) != self.keys_before.get(name):
                assert name in established, f"key {name} changed without KeyEstablished"
        self.keys_before = after
        return outputs

    def _active_with(self, ar_id: bytes) -> bool:
        return any(a == ar_id and not self.mn.finished(n) for n, (_, a, _) in self.started.items())

    def _start(self, ar_id: bytes, coa: bytes, outputs: list[Output]) -> None:
        number = next(o.exchange for o in outputs if isinstance(o, RequestSent))
        self.started[number] = (self.now, ar_id, coa)
        self._absorb(outputs)

    # ---- the MN's commands ----------------------------------------------------------

    @rule(ar_id=st.sampled_from([AR_ID, AR2_ID]), coa=st.sampled_from([COA, COA2]))
    def request(self, ar_id: bytes, coa: bytes) -> None:
        if not self._active_with(ar_id) and ar_id not in self.mn.prohibited:
            self._start(ar_id, coa, self.mn.request_key(ar_id, coa, self.now, self.now))

    @rule(ar_id=st.sampled_from([AR_ID, AR2_ID]), coa=st.sampled_from([COA, COA2]))
    def verify(self, ar_id: bytes, coa: bytes) -> None:
        held = self.mn.keys.get(NAI, ar_id, self.now)
        if held and not self._active_with(ar_id) and ar_id not in self.mn.prohibited:
            self._start(ar_id, coa, self.mn.verify_key(ar_id, coa, self.now, self.now))

    @rule(ar_id=st.sampled_from([AR_ID, AR2_ID]))
    def refresh(self, ar_id: bytes) -> None:
        if not self._active_with(ar_id) and ar_id not in self.mn.prohibited:
            self._start(ar_id, NULL_COA, self.mn.refresh_key(ar_id, self.now, self.now))

    # ---- the network ----------------------------------------------------------------

    @precondition(lambda self: self.requests)
    @rule(data=st.data(), coa_failure=st.booleans(), ar_wants_stamp=st.booleans())
    def ar_answers(self, data: st.DataObject, coa_failure: bool, ar_wants_stamp: bool) -> None:
        ar_id, wire = self.requests.pop(data.draw(st.integers(0, len(self.requests) - 1)))
        ar = self.ars[ar_id]
        ar.coa_failures = int(coa_failure)
        ar.require_timestamp = ar_wants_stamp
        answer = ar.answer(wire, self.now)
        if ar.hks_hk:
            self.minted.add(ar.hks_hk)
        if answer is not None:
            response = decode_message(answer)
            assert isinstance(response, HKResp)
            sent = Answer(ar_id, answer, True, response.status == Status.SUCCESS)
            self.answers.append(sent)
            self.history.append(sent)

    @precondition(lambda self: self.requests or self.answers)
    @rule(data=st.data())
    def lose(self, data: st.DataObject) -> None:
        queue = self.requests if self.requests and data.draw(st.booleans()) else self.answers
        if queue:
            queue.pop(data.draw(st.integers(0, len(queue) - 1)))

    @precondition(lambda self: self.answers)
    @rule(data=st.data(), duplicate=st.booleans())
    def answer_arrives(self, data: st.DataObject, duplicate: bool) -> None:
        index = data.draw(st.integers(0, len(self.answers) - 1))
        answer = self.answers[index] if duplicate else self.answers.pop(index)
        self._deliver(answer)

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def replay_old_answer(self, data: st.DataObject) -> None:
        self._deliver(data.draw(st.sampled_from(self.history)))

    def _deliver(self, answer: Answer) -> None:
        response = decode_message(answer.wire)
        assert isinstance(response, HKResp)
        awaited = [n for n, w in self.waiting.items()
                   if w == (answer.ar_id, response.message_id)
                   and self.mn.state_of(n) is State.EXPECT_HKRESP]  # fmt: skip
        states = {n: self.mn.state_of(n) for n in self.started}
        outputs = self._absorb(
            self.mn.receive_datagram(answer.wire, answer.ar_id, self.now, self.now)
        )
        if not answer.genuine:  # a forged answer changes no state and sends nothing (P7)
            assert states == {n: self.mn.state_of(n) for n in self.started}
            assert all(isinstance(o, (ErrorReceived, Discarded)) for o in outputs), outputs
        if answer.genuine and answer.success and awaited and not response.verify:
            # An authenticated answer to the ID an exchange waits on is never lost.
            assert any(isinstance(o, KeyEstablished) for o in outputs), outputs

    @precondition(lambda self: self.waiting)
    @rule(
        data=st.data(),
        status=st.sampled_from([s for s in Status if s != Status.SUCCESS]),
        signed_badly=st.booleans(),
    )
    def forged_error(self, data: st.DataObject, status: Status, signed_badly: bool) -> None:
        ar_id, message_id = data.draw(st.sampled_from(sorted(self.waiting.values())))
        request = HKReq(message_id, False, 1, COA, ())
        wire = unsigned(request, status)
        if signed_badly:  # an MN-HKS MAC that cannot verify: silently discarded
            bad = MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1, bytes(20))
            wire = HKResp(message_id, False, 1, status, 0, 0, (bad,)).encode()
        self.answers.insert(0, Answer(ar_id, wire, False, False))

    @precondition(lambda self: self.waiting)
    @rule(data=st.data())
    def forged_success(self, data: st.DataObject) -> None:
        ar_id, message_id = data.draw(st.sampled_from(sorted(self.waiting.values())))
        nonce = HandoverNonce(
            NonceSubtype.HKS_NONCE, data.draw(st.binary(min_size=16, max_size=16))
        )
        bad = MacOption(MacSubtype.MN_AR, MacAlgorithm.HMAC_SHA1, bytes(20))
        response = HKResp(message_id, False, 1, Status.SUCCESS, 3600, 999, (nonce, bad))
        self.answers.insert(0, Answer(ar_id, response.encode(), False, True))

    # ---- time -----------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.1, 0.5, 1.0, 3.0, 8.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._fire()

    @precondition(lambda self: self.mn.next_timer() is not None)
    @rule()
    def next_timer(self) -> None:
        self.now = max(self.now, self.mn.next_timer() or self.now)
        self._fire()

    def _fire(self) -> None:
        timer = self.mn.next_timer()
        if timer is not None and timer <= self.now:
            for number in self.started:  # the earliest timer's lateness, for every open one
                if not self.mn.finished(number):
                    self.late[number] = self.late.get(number, 0.0) + self.now - timer
            self._absorb(self.mn.on_timer(self.now, self.now))
        timer = self.mn.next_timer()
        assert timer is None or timer > self.now

    # ---- invariants -----------------------------------------------------------------

    @invariant()
    def held_keys_come_from_hks_answers(self) -> None:
        for key in self.mn.keys.all():
            assert key.hk in self.minted

    @invariant()
    def no_exchange_outlives_its_deadline(self) -> None:
        longest = exchange_deadline(self.mn.config) + LINGER
        for number, (began, _, _) in self.started.items():
            if self.now - began > longest + self.late.get(number, 0.0):
                assert self.mn.state_of(number) is State.CLOSED, number


def test_mn_role_state_machine() -> None:
    run_state_machine_as_test(
        MNMachine,
        settings=settings(
            max_examples=150,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
