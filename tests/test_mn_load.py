"""Issue 14, Must show 2: the load generator's hang and failures, reproduced with the
real MN, AR and HKS roles in memory and an explicit clock (no sockets, no sleeping),
then fixed in mn_client.load.LoadRun.

- (a) `hkp-mn load -n 5000 -c 10` hung: each slot stayed on the identity that just
  finished, so 10 of the 32 identities carried the load, spent their 256 Message IDs
  within MESSAGE_ID_REUSE_GUARD, `request_key` raised, and every slot was lost.
- (b) `-c 1` stopped after 256 exchanges for the same reason, with one identity.
- (c) `-c 50` over 32 identities put two exchanges of one identity in flight; the HKS
  took the later timestamp first and refused the other (INVALID_TIMESTAMP), so the MN
  corrected and resent, and some exchanges ran out of tries.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable

import pytest

from hkp_radius.ar.config import ARConfig
from hkp_radius.ar.events import SendAccessRequest, SendHKResp, ValidateCoA
from hkp_radius.ar.role import AccessRouter
from hkp_radius.hks.role import (
    HKSPolicy,
    HKSRequest,
    MemoryReplayStore,
    handle_request,
)
from hkp_radius.mn import MESSAGE_ID_REUSE_GUARD, Datagram, MNConfig, MobileNode, Output
from mn_client import LoadRun, progress_line
from tests.hks_answers import ar_answer
from tests.random_source import CountingRandom

AR_ID = ipaddress.IPv6Address("2001:db8::1").packed
COA_BASE = ipaddress.IPv6Address("2001:db8:10ad::")
T0 = 1_700_000_000.0  # the explicit clock starts here (also the wall clock)


def identities(count: int) -> list[MNConfig]:
    return [
        MNConfig(nai=b"load-%d@example.net" % i, hmk=hashlib.sha512(b"%d" % i).digest())
        for i in range(count)
    ]


class Network:
    """The real AR and HKS roles between the nodes, in memory. HKReqs wait in `pending`
    until `deliver` carries them; `order` picks which goes next (FIFO by default; LIFO
    lets a later HKReq overtake an earlier one, as two RADIUS requests may)."""

    def __init__(self, configs: list[MNConfig], prohibited: frozenset[bytes] = frozenset()):
        # The clock may stand still for thousands of exchanges: room for all their records.
        self.ar = AccessRouter(ARConfig(max_records=100_000), CountingRandom(b"ar-role"))
        self.hks_random = CountingRandom(b"hks-role")
        self.policy = HKSPolicy()
        self.replay = MemoryReplayStore()
        self.hmks = {c.nai: c.hmk for c in configs}
        self.prohibited = prohibited
        self.pending: list[tuple[MobileNode, bytes]] = []
        self.lose_everything = False

    def answer(self, node: MobileNode, hkreq: bytes, now: float) -> list[Output]:
        out: list[Output] = []
        queue = list(self.ar.receive_hkreq(hkreq, "mn", AR_ID, now, now))
        while queue:
            action = queue.pop(0)
            if isinstance(action, ValidateCoA):
                queue += self.ar.coa_validated(action.ref, True, now)
            elif isinstance(action, SendAccessRequest):
                request = HKSRequest(
                    action.nai, action.mobility_header, action.ar_address,
                    self.hmks.get(action.nai), authorized=action.nai not in self.prohibited,
                )  # fmt: skip
                decision = handle_request(request, self.policy, self.replay, now, self.hks_random)
                queue += self.ar.receive_radius_answer(action.ref, ar_answer(decision), now, now)
            elif isinstance(action, SendHKResp):
                out += node.receive_datagram(action.wire, AR_ID, now, now)
        return out


class Harness:
    """Drives a LoadRun as run_load does, over the Network, with the clock in `now`."""

    def __init__(self, load: LoadRun, nodes: list[MobileNode], network: Network) -> None:
        self.load, self.nodes, self.network = load, nodes, network
        self.now = T0
        self.hkreqs: list[tuple[float, bytes, int]] = []  # (when, NAI, Message ID)

    def dispatch(self, node: MobileNode, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Datagram):
                if not self.network.lose_everything:
                    self.network.pending.append((node, output.data))
            elif self.load.on_event(node, output, self.now):
                for started, more in self.load.start(self.now, self.now):
                    self.dispatch(started, more)

    def deliver(self, pick: Callable[[int], int] = lambda n: 0) -> None:
        """Carry pending HKReqs (and their answers) until none is left."""
        while self.network.pending:
            node, data = self.network.pending.pop(pick(len(self.network.pending)))
            self.dispatch(node, self.network.answer(node, data, self.now))

    def run(self, pick: Callable[[int], int] = lambda n: 0, advance: bool = True) -> None:
        """Start the run; deliver; when quiet, move the clock to the next timer (the
        nodes', the AR's or the load's) if `advance`, until the run is done."""
        for node, outputs in self.load.start(self.now, self.now):
            self.dispatch(node, outputs)
        while not self.load.done():
            self.deliver(pick)
            if self.load.done():
                break
            timers = [t for n in self.nodes if (t := n.next_timer()) is not None]
            for source in (self.network.ar.next_timer(), self.load.next_timer()):
                if source is not None:
                    timers.append(source)
            due = min(timers)
            if due > self.now and not advance:
                return
            self.now = max(self.now, due)
            self.network.ar.on_timer(self.now)
            for node in self.nodes:
                timer = node.next_timer()
                if timer is not None and timer <= self.now:
                    self.dispatch(node, node.on_timer(self.now, self.now))
            for node, outputs in self.load.on_timer(self.now, self.now):
                self.dispatch(node, outputs)


def setup(count: int, total: int, concurrency: int, **options: object) -> tuple[LoadRun, Harness]:
    configs = identities(count)
    nodes = [MobileNode(c, CountingRandom(c.nai)) for c in configs]
    coas = [(COA_BASE + 1 + i).packed for i in range(count)]
    prohibited = options.pop("prohibited", frozenset())
    load = LoadRun(nodes, AR_ID, coas, total, concurrency, **options)  # type: ignore[arg-type]
    return load, Harness(load, nodes, Network(configs, prohibited))  # type: ignore[arg-type]


def test_a_ten_in_flight_over_32_identities_run_5000_at_one_instant() -> None:
    """(a): 5,000 answered at once (the clock never moves) need 157 Message IDs from
    each of the 32 identities; pinned to 10 identities they needed 500 each and hung."""
    load, harness = setup(32, 5000, 10)
    harness.run(advance=False)
    r = load.result
    assert load.done() and harness.now == T0
    assert (r.succeeded, r.failed, r.retransmissions, r.corrections) == (5000, 0, 0, 0)
    assert r.message_id_waits == 0 and r.max_in_flight_per_identity == 1


def test_b_one_in_flight_on_one_identity_waits_for_message_ids_and_goes_on() -> None:
    """(b): after 256 exchanges within the guard the identity has no Message ID; the
    run waits for the first to leave the guard instead of losing its only slot."""
    load, harness = setup(1, 600, 1)
    harness.run(advance=False)  # everything that can happen at T0
    assert load.result.succeeded == 256 and not load.done()
    assert load.next_timer() == T0 + MESSAGE_ID_REUSE_GUARD
    harness.run()
    r = load.result
    assert load.done() and (r.succeeded, r.failed, r.retransmissions) == (600, 0, 0)
    assert r.message_id_waits >= 2
    assert harness.now == T0 + 2 * MESSAGE_ID_REUSE_GUARD  # 256 + 256 + 88


def test_c_two_in_flight_per_identity_reach_the_hks_out_of_order() -> None:
    """(c), the cause: with two of one identity's HKReqs in flight and the later one
    answered first, the HKS refuses the earlier timestamp (§5.2.3)."""
    load, harness = setup(1, 20, 2, per_identity=2)
    harness.run(pick=lambda n: n - 1)  # the newest HKReq overtakes the older
    r = load.result
    assert r.max_in_flight_per_identity == 2
    assert r.errors_received["INVALID_TIMESTAMP"] > 0 and r.corrections > 0


def test_c_one_in_flight_per_identity_is_never_refused_in_any_order() -> None:
    """(c), the fix: one exchange per identity in flight (the default), so the same
    overtaking costs nothing: no error answer, no correction, no retransmission."""
    load, harness = setup(50, 1000, 50)
    harness.run(pick=lambda n: n - 1)
    r = load.result
    assert (r.succeeded, r.failed, r.retransmissions, r.corrections) == (1000, 0, 0, 0)
    assert not r.errors_received and r.max_in_flight_per_identity == 1


def test_more_in_flight_than_identities_is_refused_saying_what_to_change() -> None:
    with pytest.raises(ValueError, match="50 in flight at 1 per identity needs 50 identities; "
                       "there are 32"):  # fmt: skip
        setup(32, 100, 50)


def test_unanswered_exchanges_fail_with_their_cause_and_the_run_ends() -> None:
    load, harness = setup(4, 8, 4)
    harness.network.lose_everything = True
    harness.run()
    r = load.result
    assert load.done() and r.failed == 8 and r.succeeded == 0
    assert r.retransmissions == 8 * 3  # N_HO_KEYTRIES copies after the first
    ((cause, count),) = r.failures.items()
    assert count == 8 and cause.startswith("-: ")  # no status was ever received


def test_a_prohibited_identity_leaves_the_pool_and_the_others_carry_the_run() -> None:
    load, harness = setup(2, 10, 1, prohibited=frozenset({b"load-0@example.net"}))
    harness.run()
    r = load.result
    assert load.done() and (r.succeeded, r.failed) == (9, 1)
    (cause,) = r.failures
    assert cause == "ADMINISTRATIVELY_PROHIBITED: no more HKReqs via this AR (§6.2.2.1)"


def test_when_no_identity_can_start_the_rest_count_as_not_started() -> None:
    load, harness = setup(1, 10, 1, prohibited=frozenset({b"load-0@example.net"}))
    harness.run()
    r = load.result
    assert load.done() and (r.succeeded, r.failed, r.not_started) == (0, 10, 9)
    assert sum(n for cause, n in r.failures.items() if cause.startswith("not started")) == 9


def test_progress_reports_come_at_their_interval_of_the_run_clock() -> None:
    reports: list[dict[str, object]] = []
    _, harness = setup(1, 600, 1, progress=reports.append, progress_interval=1.0)
    harness.run()
    guard = int(MESSAGE_ID_REUSE_GUARD)  # the run waits twice for Message IDs
    assert [r["elapsed_s"] for r in reports] == [float(s) for s in range(1, 2 * guard + 1)]
    assert reports[guard - 1]["ended"] == 256 and reports[2 * guard - 1]["ended"] == 512
    assert progress_line(reports[-1]).startswith(f"load: 512/600 ended after {2 * guard}.0 s")


def test_the_json_result_has_every_figure() -> None:
    load, harness = setup(4, 40, 4)
    harness.run()
    figures = load.result.as_json()
    assert figures["succeeded"] == 40 and figures["failed"] == 0
    assert set(figures["latency_ms"]) == {"p50", "p90", "p99", "p999", "max", "mean"}
    for name in ("keys_per_s", "retransmissions", "corrections", "failures", "errors_received",
                 "discarded", "message_id_waits", "max_in_flight_per_identity",
                 "generator_cpu_us_per_exchange", "hkreqs_sent"):  # fmt: skip
        assert name in figures, name
