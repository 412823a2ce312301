"""The AR role held against random interleavings (issue 16 must-show 7; STYLE: h2's
Hypothesis tests): new requests, V requests, refreshes, HKS answers (the real HKS role,
or a reject), losses, duplicates, forged and replayed datagrams, neighbour events and
timer firings, time injected. After every step:

- no key without an HKS answer, and at most one key minted per HKS answer;
- a key's CoA changes to an address only through a fresh authenticated request (a CoA
  check answered for a V request verified with that key, whose timestamp is strictly
  newer than any accepted for the key, P6); it may only be released otherwise;
- no record and no key outlives its deadline once the timers have run;
- cached answers are re-sent only within the rate (P10): never more re-sends than
  copies received, never two sends of one request within 0.5 s, none after 3 s.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hkp_radius.ar.config import ARConfig
from hkp_radius.ar.events import (
    Action,
    HKSAccept,
    HKSReject,
    SendAccessRequest,
    SendHKResp,
    StoreKey,
    ValidateCoA,
)
from hkp_radius.ar.keys import StoredKey
from hkp_radius.ar.state import State
from hkp_radius.constants import NULL_COA, Status
from hkp_radius.wire.messages import HKResp
from tests.ar_helpers import COA, COA2, HMK, HMK2, NAI, NAI2, build_hkreq, decode_hkresp, ip6
from tests.test_ar_role import Harness

NAIS = {NAI: HMK, NAI2: HMK2}
COAS = [COA, COA2, ip6("2001:db8::300"), NULL_COA]
CACHE = ARConfig().response_cache_time
RESEND_SPACING = ARConfig().retrans_interval


@dataclass
class Sent:
    """A datagram the MN side sent: what it claims, for the invariants."""

    wire: bytes
    nai: bytes
    message_id: int
    coa: bytes
    timestamp: int | None
    verify: bool
    honest: bool  # built by the MN with its real key (False: forged)


class ARMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Few records, so that a run reaches the limit (OVER_CAPACITY) too.
        self.h = Harness(ARConfig(max_records=12))
        self.next_id = {NAI: 0, NAI2: 0}
        self.sent: list[Sent] = []
        self.by_wire: dict[bytes, Sent] = {}
        self.checks: list[ValidateCoA] = []
        self.requests: list[SendAccessRequest] = []
        self.check_of: dict[int, Sent] = {}  # ValidateCoA ref -> the request it checks
        self.ref_of_request: dict[int, Sent] = {}
        self.hk_given: set[bytes] = set()  # every HK handed to the AR in an Accept
        self.copies: dict[tuple[bytes, int], int] = {}  # datagrams to a held record
        self.sends: dict[tuple[bytes, int], list[float]] = {}  # (NAI, Message ID) -> times
        self.first_answer: dict[tuple[bytes, int], float] = {}
        self.step = "init"
        self.step_check: Sent | None = None
        self.minted_this_step = 0
        self.before: dict[int, StoredKey] = {}

    # ---- helpers ------------------------------------------------------------------

    def _message_id(self, nai: bytes) -> int:
        self.next_id[nai] = (self.next_id[nai] + 1) % 256
        return self.next_id[nai]

    def _absorb(self, actions: list[Action], step: str) -> None:
        self.step = step
        known = {key.spi for key in self.before.values()}
        for action in actions:
            if isinstance(action, ValidateCoA):
                self.checks.append(action)
            elif isinstance(action, SendAccessRequest):
                self.requests.append(action)
                if action.ref in self.check_of:  # one ref per record, through its states
                    self.ref_of_request[action.ref] = self.check_of[action.ref]
            elif isinstance(action, SendHKResp):  # the peer is the NAI (see _send)
                key = (action.peer, decode_hkresp(action.wire).message_id)
                self.sends.setdefault(key, []).append(self.h.now)  # type: ignore[arg-type]
                self.first_answer.setdefault(key, self.h.now)  # type: ignore[arg-type]
            elif isinstance(action, StoreKey) and action.key.spi not in known:
                known.add(action.key.spi)
                self.minted_this_step += 1

    def _send(self, sent: Sent, step: str) -> None:
        key = (sent.nai, sent.message_id)
        if self.h.ar.state_of(*key) is None:  # a new record: its answers start afresh
            self.sends.pop(key, None)
            self.first_answer.pop(key, None)
            self.copies[key] = 0
        else:
            self.copies[key] = self.copies.get(key, 0) + 1
        if sent.wire not in self.by_wire:
            self.by_wire[sent.wire] = sent
            self.sent.append(sent)
        actions = self.h.send(sent.wire, peer=sent.nai)
        for action in actions:
            if isinstance(action, ValidateCoA):
                self.check_of[action.ref] = sent
            if isinstance(action, SendAccessRequest):
                self.ref_of_request[action.ref] = sent
        self._absorb(actions, step)

    def _settle(self, sent: Sent) -> None:
        """Carry out the checks and HKS questions `sent` caused, like the adapters would
        (valid CoA, the real HKS), within the same step."""
        while True:
            checks = [c for c in self.checks if self.check_of.get(c.ref) is sent]
            requests = [r for r in self.requests if self.ref_of_request.get(r.ref) is sent]
            if checks:
                self.checks.remove(checks[0])
                self.step_check = sent
                self._absorb(self.h.ar.coa_validated(checks[0].ref, True, self.h.now), "coa")
            elif requests:
                self.requests.remove(requests[0])
                answer = self.h.hks_answer(requests[0])
                if isinstance(answer, HKSAccept) and answer.handover_key:
                    self.hk_given.add(answer.handover_key)
                actions = self.h.ar.receive_radius_answer(
                    requests[0].ref, answer, self.h.now, self.h.wall
                )
                self._absorb(actions, "hks")
            else:
                return

    # ---- rules: the MN side and the network ----------------------------------------

    @rule(nai=st.sampled_from(sorted(NAIS)), coas=st.permutations(COAS[:3]))
    def roam(self, nai: bytes, coas: list[bytes]) -> None:
        """A returning MN moving: fresh V requests from two CoAs a second apart, each
        checked and answered (what a replay attacker records, §7.4)."""
        for coa in coas[:2]:
            keys = self.h.ar.keys.for_nai(nai, self.h.now)
            if not keys:
                return
            self._absorb(self.h.advance(1.0), "timer")
            self.next_step()
            message_id = self._message_id(nai)
            timestamp = self.h.stamp()
            wire = build_hkreq(message_id=message_id, nai=nai, verify=True, with_hks_mac=False,
                               hk=keys[0].hk, coa=coa, timestamp=timestamp)  # fmt: skip
            sent = Sent(wire, nai, message_id, coa, timestamp, True, True)
            self._send(sent, "v")
            self._settle(sent)
            self.keys_come_from_hks_answers()
            self.coa_moves_only_by_a_fresh_authenticated_request()
            self.next_step()

    @rule(nai=st.sampled_from(sorted(NAIS)), coa=st.sampled_from(COAS), stamped=st.booleans(),
          settle=st.booleans())  # fmt: skip
    def new_request(self, nai: bytes, coa: bytes, stamped: bool, settle: bool) -> None:
        message_id = self._message_id(nai)
        timestamp = self.h.stamp() if stamped else None
        wire = build_hkreq(message_id=message_id, nai=nai, hmk=NAIS[nai], coa=coa,
                           timestamp=timestamp)  # fmt: skip
        sent = Sent(wire, nai, message_id, coa, timestamp, False, True)
        self._send(sent, "new")
        if settle:
            self._settle(sent)

    @rule(nai=st.sampled_from(sorted(NAIS)), verify=st.booleans())
    def without_mac(self, nai: bytes, verify: bool) -> None:
        """§6.3 / §6.3.1: no MN-HKS MAC (new) or no MN-AR MAC (V)."""
        message_id = self._message_id(nai)
        wire = build_hkreq(message_id=message_id, nai=nai, verify=verify, with_hks_mac=False,
                           timestamp=self.h.stamp())  # fmt: skip
        self._send(Sent(wire, nai, message_id, COA, None, verify, False), "no-mac")

    @rule(nai=st.sampled_from(sorted(NAIS)), coa=st.sampled_from(COAS), stamped=st.booleans(),
          settle=st.booleans(), later=st.booleans(), data=st.data())  # fmt: skip
    def v_request(
        self, nai: bytes, coa: bytes, stamped: bool, settle: bool, later: bool,
        data: st.DataObject,
    ) -> None:  # fmt: skip
        if later:  # past TRANS_RATE, as a returning MN a second later
            self._absorb(self.h.advance(1.0), "timer")
        keys = self.h.ar.keys.for_nai(nai, self.h.now)
        hk = data.draw(st.sampled_from([k.hk for k in keys])) if keys else bytes(20)
        message_id = self._message_id(nai)
        timestamp = self.h.stamp() if stamped else None
        wire = build_hkreq(message_id=message_id, nai=nai, verify=True, with_hks_mac=False,
                           hk=hk, coa=coa, timestamp=timestamp)  # fmt: skip
        sent = Sent(wire, nai, message_id, coa, timestamp, True, bool(keys))
        self._send(sent, "v")
        if settle:
            self._settle(sent)

    @rule(nai=st.sampled_from(sorted(NAIS)), coa=st.sampled_from(COAS), data=st.data())
    def forged_v_request(self, nai: bytes, coa: bytes, data: st.DataObject) -> None:
        hk = data.draw(st.binary(min_size=20, max_size=20))
        message_id = data.draw(st.integers(0, 255))
        wire = build_hkreq(message_id=message_id, nai=nai, verify=True, with_hks_mac=False,
                           hk=hk, coa=coa, timestamp=self.h.stamp())  # fmt: skip
        self._send(Sent(wire, nai, message_id, coa, None, True, False), "forged")

    @rule()
    def forged_error(self) -> None:
        """An unsigned error sent to the AR (it only ever receives HKReqs)."""
        wire = HKResp(self.next_id[NAI], False, 1, Status.COA_AUTH_FAILED).encode()
        self._absorb(self.h.send(wire, peer=NAI), "forged-error")

    @precondition(lambda self: self.sent)
    @rule(data=st.data(), settle=st.booleans(), later=st.sampled_from([0.0, 0.5, 3.5]))
    def replay(self, data: st.DataObject, settle: bool, later: float) -> None:
        """A duplicate, a retransmission, or (`later`: after the cache time) a replay of a
        recorded datagram; V requests are the attacker's favourite (§7.4)."""
        pool = [sent for sent in self.sent[-12:] if sent.verify] or self.sent[-8:]
        sent = data.draw(st.sampled_from(pool if data.draw(st.booleans()) else self.sent[-8:]))
        if later:
            self._absorb(self.h.advance(later), "timer")
        self._send(sent, "replay")
        if settle:
            self._settle(sent)

    @precondition(lambda self: self.checks)
    @rule(data=st.data(), valid=st.booleans())
    def coa_verdict(self, data: st.DataObject, valid: bool) -> None:
        check = self.checks.pop(data.draw(st.integers(0, len(self.checks) - 1)))
        self.step_check = self.check_of.get(check.ref)
        self._absorb(self.h.ar.coa_validated(check.ref, valid, self.h.now), "coa")

    @precondition(lambda self: self.requests)
    @rule(data=st.data(), kind=st.sampled_from(["hks", "reject", "timeout"]))
    def hks(self, data: st.DataObject, kind: str) -> None:
        request = self.requests.pop(data.draw(st.integers(0, len(self.requests) - 1)))
        if kind == "timeout":
            self._absorb(self.h.ar.radius_timeout(request.ref, self.h.now), "hks")
            return
        if kind == "hks":
            answer = self.h.hks_answer(request)
            if isinstance(answer, HKSAccept) and answer.handover_key:
                self.hk_given.add(answer.handover_key)
        else:
            answer = HKSReject(None)
        actions = self.h.ar.receive_radius_answer(request.ref, answer, self.h.now, self.h.wall)
        self._absorb(actions, "hks")
        assert self.minted_this_step <= 1  # at most one key per HKS answer

    @precondition(lambda self: self.checks or self.requests)
    @rule(data=st.data())
    def lose(self, data: st.DataObject) -> None:
        """A CoA check or an Access-Request that never comes back."""
        pool = self.checks if self.checks and (not self.requests or data.draw(st.booleans())) \
            else self.requests  # fmt: skip
        pool.pop(data.draw(st.integers(0, len(pool) - 1)))
        self.step = "lose"

    @rule(coa=st.sampled_from(COAS[:3]))
    def neighbour_gone(self, coa: bytes) -> None:
        self._absorb(self.h.ar.neighbour_gone(coa, self.h.now), "neighbour")

    @rule(seconds=st.sampled_from([0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 8.0, 40.0, 4000.0]))
    def advance(self, seconds: float) -> None:
        self._absorb(self.h.advance(seconds), "timer")
        # No record and no key outlives its deadline once the timers ran.
        assert all(deadline > self.h.now for _, deadline in self.h.ar.record_deadlines().values())
        assert all(self.h.ar.keys.alive(key.spi, self.h.now) for key in self.h.ar.keys)

    # ---- invariants -------------------------------------------------------------------

    @invariant()
    def keys_come_from_hks_answers(self) -> None:
        for key in self.h.ar.keys:
            assert key.hk in self.hk_given
        if self.step != "hks":
            assert self.minted_this_step == 0, self.step

    @invariant()
    def coa_moves_only_by_a_fresh_authenticated_request(self) -> None:
        for key in self.h.ar.keys:
            old = self.before.get(key.spi)
            if old is None:
                continue
            if old.last_timestamp is not None:
                assert key.last_timestamp is not None and key.last_timestamp >= old.last_timestamp
            if key.care_of_address in (None, old.care_of_address):
                continue
            sent = self.step_check
            assert self.step == "coa" and sent is not None and sent.verify and sent.honest
            assert sent.coa == key.care_of_address and sent.nai == key.nai
            assert sent.timestamp is not None and key.last_timestamp == sent.timestamp
            assert old.last_timestamp is None or sent.timestamp > old.last_timestamp

    @invariant()
    def cached_answers_within_the_rate(self) -> None:
        for key, times in self.sends.items():
            assert all(b - a >= RESEND_SPACING - 1e-9 for a, b in itertools.pairwise(times))
            assert all(t - self.first_answer[key] < CACHE for t in times)

    @invariant()
    def resends_never_exceed_copies(self) -> None:
        for key, times in self.sends.items():
            assert len(times) - 1 <= self.copies.get(key, 0)

    @invariant()
    def claims_index_matches_the_records(self) -> None:
        """The §7.4 claim index (issue 14) is exactly the held, unanswered records."""
        ar = self.h.ar
        expected: dict[bytes, dict[int, bytes]] = {}
        for record in ar._records.values():
            if record.state is not State.ANSWERED:
                expected.setdefault(record.request.care_of_address, {})[record.ref] = record.nai
        assert ar._claims.by_coa() == expected

    @invariant()
    def next_step(self) -> None:
        """Runs last (invariants run in name order): what the next step compares with."""
        self.before = {key.spi: key for key in self.h.ar.keys}
        self.minted_this_step = 0
        self.step_check = None


def test_ar_role_state_machine() -> None:
    """Bounded so that it runs in seconds in CI; the invariants run after every step."""
    run_state_machine_as_test(
        ARMachine,
        settings=settings(
            max_examples=100,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
