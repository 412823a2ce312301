"""Issue 4 must-show 4 and P8, with time moved rather than waited for (issue 8 must-show
4): hkp-ar's RADIUS client runs in process on a manual clock, against real sockets, a
real FreeRADIUS HKS, silent home servers and a forging one. Each test asserts the exact
schedule: when a request is retransmitted, when it fails over, when a silent server is
tried first again."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import socket
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from ar_proxy.config import PACKAGED_DICTIONARY, HomeServer, Realm, load_config
from ar_proxy.daemon import ARDaemon
from ar_proxy.radius_client import RadiusClient
from hkp_radius.ar.events import HKSAccept, HKSAnswer, SendAccessRequest
from hkp_support.freeradius import FreeRadiusInstance
from tests.ar_clock import ManualClock
from tests.ar_helpers import AR_ID, COA, NAI, build_hkreq

from .ar_fixtures import AR_SECRET, Blackhole, MobileNodeSocket, config_text, temp_dir

pytestmark = pytest.mark.integration

T = TypeVar("T")
HANG_GUARD = 30.0  # seconds: only a hung test ever reaches it; nothing is timed by it


def run(main: Coroutine[Any, Any, T]) -> T:
    async def guarded() -> T:
        return await asyncio.wait_for(main, HANG_GUARD)

    return asyncio.run(guarded())


@pytest.fixture
def blackholes() -> Iterator[list[Blackhole]]:
    holes = [Blackhole(), Blackhole()]
    yield holes
    for hole in holes:
        hole.close()


class Outcomes:
    """What the client reported, with the manual time at which it did."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.answers: dict[int, tuple[HKSAnswer, float]] = {}
        self.timeouts: dict[int, tuple[str, float]] = {}
        self.changed = asyncio.Event()

    def answer(self, ref: int, answer: HKSAnswer) -> None:
        self.answers[ref] = (answer, self.clock.now())
        self.changed.set()

    def timeout(self, ref: int, reason: str) -> None:
        self.timeouts[ref] = (reason, self.clock.now())
        self.changed.set()

    async def ended(self, ref: int) -> None:
        while ref not in self.answers and ref not in self.timeouts:
            self.changed.clear()
            await self.changed.wait()


def client_on(clock: ManualClock, outcomes: Outcomes) -> RadiusClient:
    dictionary = Dictionary(str(PACKAGED_DICTIONARY))
    return RadiusClient(dictionary, outcomes.answer, outcomes.timeout, clock=clock)


def request(ref: int, message_id: int) -> SendAccessRequest:
    return SendAccessRequest(ref, NAI, build_hkreq(message_id=message_id, coa=COA), AR_ID, COA)


def server(name: str, host: str, port: int, window: float, retries: int) -> HomeServer:
    return HomeServer(name, host, port, AR_SECRET, window, retries, revive_interval=30.0)


def issued(outcomes: Outcomes, ref: int) -> float:
    answer, at = outcomes.answers[ref]
    assert isinstance(answer, HKSAccept) and answer.handover_key is not None
    return at


def test_silent_first_server_retransmits_then_fails_over_to_the_second(
    ar_hks: FreeRadiusInstance, blackholes: list[Blackhole]
) -> None:
    """Must-show 4 (issue 4): the realm's first server is silent. The same packet goes to
    it `retries + 1` times one response window apart (RFC 5080 §2.2.1), then the request
    goes to the second server, which answers: the key is issued at exactly 2 windows.
    The silent server is then tried last, and first again once revive_interval passes."""
    hole = blackholes[0]

    async def main() -> None:
        clock = ManualClock()
        outcomes = Outcomes(clock)
        client = client_on(clock, outcomes)
        dead = server("dead", "127.0.0.1", hole.port, 0.3, 1)
        live = server("hks", ar_hks.address, ar_hks.port, 0.3, 1)
        realm = Realm("example.net", (dead, live))
        start = clock.now()
        client.send(request(1, 41), realm)
        first = await hole.receive()
        await clock.until_waits(1)
        clock.advance(0.299)
        assert outcomes.answers == {} and hole.drain() == 0  # the window has not ended
        clock.advance(0.001)
        assert await hole.receive() == first  # same Identifier and Request Authenticator
        await clock.until_waits(2)
        clock.advance(0.3)
        await outcomes.ended(1)
        assert issued(outcomes, 1) - start == pytest.approx(0.6)
        # Tried last now: the next request goes straight to the live server.
        client.send(request(2, 42), realm)
        await outcomes.ended(2)
        assert issued(outcomes, 2) == clock.now() and hole.drain() == 0
        clock.advance(30.0)  # revive_interval over: the silent server is first again
        client.send(request(3, 43), realm)
        await hole.receive()
        await client.close()

    run(main())


def test_all_servers_silent_the_request_times_out_after_both_budgets(
    blackholes: list[Blackhole],
) -> None:
    """Two silent servers with one retry each: four transmissions, a window apart; the
    request ends as a timeout at exactly 4 windows, naming the realm."""

    async def main() -> None:
        clock = ManualClock()
        outcomes = Outcomes(clock)
        client = client_on(clock, outcomes)
        servers = tuple(
            server(f"hole{i}", "127.0.0.1", hole.port, 0.2, 1) for i, hole in enumerate(blackholes)
        )
        start = clock.now()
        client.send(request(1, 43), Realm("example.net", servers))
        for index, hole in ((0, blackholes[0]), (1, blackholes[0]), (2, blackholes[1])):
            await hole.receive()
            await clock.until_waits(index + 1)
            clock.advance(0.2)
        await blackholes[1].receive()
        await clock.until_waits(4)
        assert outcomes.timeouts == {}
        clock.advance(0.2)
        await outcomes.ended(1)
        reason, at = outcomes.timeouts[1]
        assert at - start == pytest.approx(0.8) and "realm example.net" in reason
        assert [hole.drain() for hole in blackholes] == [0, 0]
        await client.close()

    run(main())


class ExchangeLog(logging.Handler):
    """hkp-ar's `exchange` events, as the in-process daemon emits them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", {})
        if fields.get("event") == "exchange":
            self.events.append(fields)
            self.changed.set()

    async def next(self) -> dict[str, Any]:
        while not self.events:
            self.changed.clear()
            await self.changed.wait()
        return self.events.pop(0)


def test_all_servers_silent_mn_gets_nothing_and_ar_keeps_no_state(
    tmp_path: Path, blackholes: list[Blackhole]
) -> None:
    """Must-show 4; §6.3: "it MUST remove all state associated with the MN and MUST NOT
    send a response to the MN". The whole daemon in process, its RADIUS on the manual
    clock: after both servers' budgets the exchange ends `hks-silent`, the MN got nothing,
    no key is held, and the same HKReq again is a new request sent to the HKS."""
    config_path = tmp_path / "hkp-ar.conf"
    servers = [("127.0.0.1", hole.port) for hole in blackholes]
    config_path.write_text(
        config_text(tmp_path / "keys.sqlite", servers, response_window=0.2, retries=1)
    )
    exchanges = ExchangeLog()
    logger = logging.getLogger("hkp-ar")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(exchanges)

    async def main() -> tuple[dict[str, Any], list[dict[str, object]]]:
        clock = ManualClock()
        daemon = ARDaemon(load_config(config_path), radius_clock=clock)
        await daemon.start()
        assert daemon.udp is not None
        mn = MobileNodeSocket(int(daemon.udp.bound.rsplit(":", 1)[1]))
        try:
            wire = build_hkreq(message_id=43, coa=COA)
            mn.send(wire)
            for index, hole in enumerate((blackholes[0],) * 2 + (blackholes[1],) * 2):
                await hole.receive()
                await clock.until_waits(index + 1)
                clock.advance(0.2)
            event = await exchanges.next()
            assert mn.pending() == []
            keys = daemon.keys()
            mn.send(wire)  # no state left: a new Access-Request, not a cached answer
            await blackholes[0].receive()
            return event, keys
        finally:
            mn.close()
            await daemon.stop()

    try:
        event, keys = run(main())
    finally:
        logger.removeHandler(exchanges)
        logger.setLevel(level)
    assert event["outcome"] == "hks-silent" and event["message_id"] == 43
    assert keys == []


class ForgingServer:
    """A home server that answers every Access-Request with three forged Access-Accepts:
    a bad Response Authenticator; no Message-Authenticator; a bad Message-Authenticator
    (with a Response Authenticator that matches it)."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.dictionary = Dictionary(str(PACKAGED_DICTIONARY))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.forged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _sign(self, raw: bytes, request_authenticator: bytes) -> bytes:
        digest = hashlib.md5(raw[:4] + request_authenticator + raw[20:] + self.secret).digest()
        return raw[:4] + digest + raw[20:]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            request = rpacket.AuthPacket(packet=data, secret=self.secret, dict=self.dictionary)
            signed = request.CreateReply()
            signed.AddAttribute("HKP-HKS-Nonce", bytes(16))
            good = signed.ReplyPacket()
            bad_response_auth = good[:4] + bytes(16) + good[20:]
            unsigned = request.CreateReply(message_authenticator=False)
            unsigned.AddAttribute("HKP-HKS-Nonce", bytes(16))
            no_ma = unsigned.ReplyPacket()
            at = good.index(bytes((80, 18)), 20) + 2  # Message-Authenticator value
            bad_ma = self._sign(good[:at] + bytes(16) + good[at + 16 :], request.authenticator)
            for forged in (bad_response_auth, no_ma, bad_ma):
                self.sock.sendto(forged, peer)
                self.forged += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Dropped(logging.Handler):
    """Counts the RADIUS client's "reply dropped" warnings as they are logged."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "failed the Response Authenticator" in record.getMessage():
            self.count += 1
            self.changed.set()

    async def until(self, count: int) -> None:
        while self.count < count:
            self.changed.clear()
            await self.changed.wait()


def test_replies_without_valid_authenticators_are_ignored(ar_hks: FreeRadiusInstance) -> None:
    """P8: "always with Message-Authenticator" on replies, Response Authenticator checked:
    the three forged replies from the first server are dropped and do not end its
    response window; when the window ends, the second server answers."""
    forger = ForgingServer(AR_SECRET)
    dropped = Dropped()
    logging.getLogger("hkp-ar.radius").addHandler(dropped)

    async def main() -> None:
        clock = ManualClock()
        outcomes = Outcomes(clock)
        client = client_on(clock, outcomes)
        realm = Realm(
            "example.net",
            (
                server("forger", "127.0.0.1", forger.port, 0.5, 0),
                server("hks", ar_hks.address, ar_hks.port, 0.5, 0),
            ),
        )
        start = clock.now()
        client.send(request(1, 47), realm)
        await dropped.until(3)
        assert outcomes.answers == {} and outcomes.timeouts == {}
        await clock.until_waits(1)
        clock.advance(0.5)
        await outcomes.ended(1)
        assert issued(outcomes, 1) - start == pytest.approx(0.5)
        await client.close()

    try:
        run(main())
    finally:
        logging.getLogger("hkp-ar.radius").removeHandler(dropped)
        forger.close()
    assert forger.forged == 3 and dropped.count == 3


class RadiusLog(logging.Handler):
    """The RADIUS client's records: warnings kept, and an event once the kernel has
    reported ICMP port unreachable on a lane (its debug record)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.warnings: list[str] = []
        self.refused = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.warnings.append(record.getMessage())
        elif "Connection refused" in record.getMessage():
            self.refused.set()


def silence_diagnosis(host: str, port: int, secret: bytes, expect_refused: bool) -> list[str]:
    """One request to one home server that does not answer it; the window is ended on
    the manual clock once the request was sent (and, for a closed port, once the kernel
    said so). Returns the client's warnings."""
    records = RadiusLog()
    logger = logging.getLogger("hkp-ar.radius")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(records)

    async def main() -> None:
        clock = ManualClock()
        outcomes = Outcomes(clock)
        client = client_on(clock, outcomes)
        home = HomeServer("hks0", host, port, secret, 0.5, 0, revive_interval=30.0)
        client.send(request(1, 93), Realm("example.net", (home,)))
        await clock.until_waits(1)
        if expect_refused:
            await records.refused.wait()
        clock.advance(0.5)
        await outcomes.ended(1)
        assert 1 in outcomes.timeouts
        await client.close()

    try:
        run(main())
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    return [line for line in records.warnings if "home server hks0" in line]


def test_wrong_secret_and_stopped_freeradius_are_told_apart(ar_hks: FreeRadiusInstance) -> None:
    """Issue 13 must-show 5: a running FreeRADIUS that drops our requests (another
    shared secret) and a stopped one (its port closed) give two different warnings, each
    saying what to check; the secret itself is never logged."""
    (wrong,) = silence_diagnosis(ar_hks.address, ar_hks.port, b"not-" + AR_SECRET, False)
    assert "port is not closed" in wrong and "wrong shared secret" in wrong
    assert "[home_server hks0] secret" in wrong
    assert "not-" not in wrong  # the secret itself is never logged

    work = temp_dir("hkp-ar-stopped-")
    try:
        stopped = FreeRadiusInstance(work, secret=AR_SECRET, users={NAI.decode(): bytes(64)})
        stopped.start()
        address, port = stopped.address, stopped.port
        assert stopped.stop() == 0  # a real FreeRADIUS that has stopped: its port is closed
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (down,) = silence_diagnosis(address, port, AR_SECRET, True)
    assert "is down: its port is closed" in down and "FreeRADIUS runs there" in down
    assert f"listens on port {port}" in down
