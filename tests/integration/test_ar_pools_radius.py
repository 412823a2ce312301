"""Issue 10, Must show 4 (in process): hkp-ar's RADIUS client with pools, on a manual
clock, against two real FreeRADIUS HKS processes: load-balance spreads requests over
both; keyed-balance sends each NAI to one server; a server marked dead gets no request
until it has answered its Status-Server probes (a real FreeRADIUS, stopped then started
again on its port)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import pytest
from pyrad.dictionary import Dictionary

from ar_proxy.config import PACKAGED_DICTIONARY, HomeServer, Realm
from ar_proxy.radius_client import RadiusClient
from hkp_radius.ar.events import HKSAccept, HKSAnswer, SendAccessRequest
from hkp_support.freeradius import FreeRadiusInstance
from tests.ar_clock import ManualClock
from tests.ar_helpers import AR_ID, COA, HMK, HMK2, NAI, NAI2, build_hkreq

from .ar_fixtures import AR_SECRET, require_root_and_freeradius, temp_dir
from .test_ar_radius_timing import run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_hks() -> Iterator[list[FreeRadiusInstance]]:
    require_root_and_freeradius()
    paths = [temp_dir("hkp-pool-hks-") for _ in range(2)]
    instances = [
        FreeRadiusInstance(
            path,
            secret=AR_SECRET,
            users={NAI.decode(): HMK, NAI2.decode(): HMK2},
            module_settings={"log_summary_interval": "0"},
        )
        for path in paths
    ]
    try:
        for instance in instances:
            instance.start()
        yield instances
    finally:
        for instance in instances:
            instance.stop()
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)


class Recorder:
    """Answers by ref, and which server answered each (the client's on_result)."""

    def __init__(self) -> None:
        self.answers: dict[int, HKSAnswer] = {}
        self.timeouts: dict[int, str] = {}
        self.results: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def answer(self, ref: int, answer: HKSAnswer) -> None:
        self.answers[ref] = answer
        self.changed.set()

    def timeout(self, ref: int, reason: str) -> None:
        self.timeouts[ref] = reason
        self.changed.set()

    def result(self, server: str, result: str) -> None:
        self.results.append((server, result))
        self.changed.set()

    async def until(self, condition: object) -> None:
        while not condition():  # type: ignore[operator]
            self.changed.clear()
            await self.changed.wait()

    def answered_by(self) -> list[str]:
        return [server for server, result in self.results if result == "answered"]


async def sleeper_at(clock: ManualClock, deadline: float) -> None:
    """Return once something waits on `clock` until `deadline` (the timer is armed)."""
    while not any(abs(at - deadline) < 1e-9 for at, _ in clock._sleepers):
        clock._changed.clear()
        await clock._changed.wait()


def client(clock: ManualClock, recorder: Recorder) -> RadiusClient:
    return RadiusClient(
        Dictionary(str(PACKAGED_DICTIONARY)), recorder.answer, recorder.timeout,
        on_result=recorder.result, clock=clock,
    )  # fmt: skip


def home(name: str, instance: FreeRadiusInstance, probed: bool = False) -> HomeServer:
    return HomeServer(
        name, instance.address, instance.port, AR_SECRET, 0.5, 1,
        status_check="status-server" if probed else "none",
        check_interval=5.0, check_timeout=1.0, num_answers_to_alive=2,
    )  # fmt: skip


def request(ref: int, nai: bytes = NAI) -> SendAccessRequest:
    hmk = HMK if nai == NAI else HMK2
    wire = build_hkreq(message_id=ref % 256, nai=nai, hmk=hmk, coa=COA)
    return SendAccessRequest(ref, nai, wire, AR_ID, COA)


async def one(
    radius: RadiusClient, recorder: Recorder, ref: int, realm: Realm, nai: bytes = NAI
) -> None:
    radius.send(request(ref, nai), realm)
    await recorder.until(lambda: ref in recorder.answers or ref in recorder.timeouts)
    answer = recorder.answers[ref]
    assert isinstance(answer, HKSAccept) and answer.handover_key is not None


def test_load_balance_spreads_requests_over_both_servers(
    two_hks: list[FreeRadiusInstance],
) -> None:
    a, b = two_hks
    before = [instance.log_text().count("Accept") for instance in two_hks]

    async def main() -> list[str]:
        clock, recorder = ManualClock(), Recorder()
        radius = client(clock, recorder)
        realm = Realm("example.net", (home("a", a), home("b", b)), "load-balance")
        for ref in range(1, 11):
            await one(radius, recorder, ref, realm)
        await radius.close()
        return recorder.answered_by()

    answered = run(main())
    assert answered.count("a") == answered.count("b") == 5
    after = [instance.log_text().count("Accept") for instance in two_hks]
    assert [n - m for n, m in zip(after, before, strict=True)] == [5, 5]  # both HKS issued


def test_keyed_balance_sends_each_nai_to_one_server(two_hks: list[FreeRadiusInstance]) -> None:
    a, b = two_hks

    async def main() -> dict[bytes, set[str]]:
        clock, recorder = ManualClock(), Recorder()
        radius = client(clock, recorder)
        realm = Realm("example.net", (home("a", a), home("b", b)), "keyed-balance")
        servers: dict[bytes, set[str]] = {NAI: set(), NAI2: set()}
        for ref in range(1, 13):
            nai = NAI if ref % 2 else NAI2
            await one(radius, recorder, ref, realm, nai)
            servers[nai].add(recorder.answered_by()[-1])
        await radius.close()
        return servers

    servers = run(main())
    assert all(len(names) == 1 for names in servers.values()), servers


def test_a_dead_server_is_probed_before_it_gets_requests_again(
    two_hks: list[FreeRadiusInstance],
) -> None:
    a, b = two_hks

    async def main() -> None:
        clock, recorder = ManualClock(), Recorder()
        radius = client(clock, recorder)
        first = home("a", a, probed=True)
        realm = Realm("example.net", (first, home("b", b)), "fail-over")
        a.stop()  # its port is closed now
        radius.send(request(1), realm)
        for count in (1, 2):  # both transmissions to a go unanswered
            await clock.until_waits(count)
            clock.advance(0.5)
        await recorder.until(lambda: 1 in recorder.answers)
        assert recorder.answered_by() == ["b"]  # failed over
        health = radius.pools.health["a"]
        assert health.dead_since is not None and health.counters["requests"] == 1
        for ref in (2, 3):  # while a is dead: b only, a is sent nothing
            await one(radius, recorder, ref, realm)
        assert recorder.answered_by() == ["b", "b", "b"]
        assert health.counters["requests"] == 1

        async def probe() -> None:
            """Move time to the next probe, once the client has armed its timer."""
            due = radius.pools.next_timer()
            assert due is not None
            await sleeper_at(clock, due)
            clock.advance(due - clock.now())

        await probe()  # the first probe: a is still down, and stays silent
        await sleeper_at(clock, clock.now() + first.check_timeout)
        clock.advance(first.check_timeout)
        await recorder.until(lambda: ("a", "probe_unanswered") in recorder.results)
        a.start()  # FreeRADIUS again, same port
        for count in (1, 2):
            await probe()
            await recorder.until(
                lambda c=count: recorder.results.count(("a", "probe_answered")) == c  # type: ignore[misc]
            )
            if count == 1:  # one answer of the two needed: still no requests
                await one(radius, recorder, 10, realm)
                assert recorder.answered_by()[-1] == "b"
        assert health.dead_since is None and health.counters["revived"] == 1
        assert health.counters["requests"] == 1  # probed, answered, only then used
        await one(radius, recorder, 11, realm)
        assert recorder.answered_by()[-1] == "a"
        await radius.close()

    run(main())
