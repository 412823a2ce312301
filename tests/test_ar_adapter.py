"""hkp-ar's adapter owns what it starts (issue 8): shutdown cancels and awaits its CoA
tasks, RadiusClient.close ends its requests and awaits what it opened, log lines are written off the
event loop, and the key store never closes its connection under a live writer thread.
In process, with real sockets on loopback and a real SQLite file; no root needed."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Hashable, Iterator
from pathlib import Path

import pytest
from pyrad.dictionary import Dictionary

from ar_proxy import logs
from ar_proxy.config import PACKAGED_DICTIONARY, HomeServer, Realm, load_config
from ar_proxy.daemon import ARDaemon
from ar_proxy.keystore import SqliteKeyStore
from ar_proxy.radius_client import RadiusClient
from ar_proxy.transports import UdpPeer
from hkp_radius.ar.events import SendAccessRequest
from hkp_radius.ar.keys import StoredKey
from tests.ar_clock import ManualClock
from tests.ar_helpers import AR_ID, COA, NAI, build_hkreq, ip6, wall_stamp
from tests.integration.ar_fixtures import Blackhole, config_text


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


class NeverAnswers:
    """A CoA validator that never answers (a stuck lookup): only cancellation ends it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    def decide(self, coa: bytes, nai: bytes, peer: Hashable) -> bool | None:
        return None  # a lookup is needed

    async def validate(self, coa: bytes, nai: bytes, peer: Hashable) -> bool:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return True

    def close(self) -> None:
        pass


def test_stop_cancels_and_awaits_coa_checks(tmp_path: Path, blackhole: Blackhole) -> None:
    config_path = tmp_path / "hkp-ar.conf"
    config_path.write_text(config_text(tmp_path / "keys.sqlite", [("127.0.0.1", blackhole.port)]))

    async def run() -> tuple[NeverAnswers, list[bool]]:
        daemon = ARDaemon(load_config(config_path))
        await daemon.start()
        validator = NeverAnswers()
        daemon.validator = validator
        wire = build_hkreq(coa=ip6("::1"), timestamp=wall_stamp())
        daemon._datagram(wire, UdpPeer(("::1", 5000, 0, 0)), AR_ID)
        await asyncio.wait_for(validator.started.wait(), 5.0)
        tasks = list(daemon._tasks)
        await daemon.stop()
        return validator, [task.done() for task in tasks]  # before asyncio.run's own cleanup

    validator, done = asyncio.run(run())
    assert done == [True] and validator.cancelled


def test_radius_client_close_ends_requests_and_leaves_nothing_running(
    blackhole: Blackhole,
) -> None:
    """Requests in flight are callbacks and response-window timers (issue 14, no task
    per request): close() ends every one without reporting it, cancels its timer and
    awaits the socket being opened, so nothing of the client runs after it returns:
    time moved past every window then fires nothing and reports no timeout."""
    timeouts: list[int] = []

    async def run() -> tuple[int, int, list[bool]]:
        clock = ManualClock()
        client = RadiusClient(
            Dictionary(str(PACKAGED_DICTIONARY)), lambda ref, answer: None,
            lambda ref, reason: timeouts.append(ref), clock=clock,
        )  # fmt: skip
        server = HomeServer("hole", "127.0.0.1", blackhole.port, b"secret", 5.0, 3)
        realm = Realm("example.net", (server,))
        for ref in (1, 2):
            client.send(SendAccessRequest(ref, NAI, build_hkreq(), AR_ID, COA), realm)
        opening = list(client._opening.values())  # the first socket to the server
        await blackhole.receive()
        await blackhole.receive()  # both sent: two response windows running
        armed = clock.waits_started
        client.cancel(1)  # cancelled earlier: its timer is gone already
        await client.close()
        live = sum(1 for timer in clock._timers if not timer.cancelled)
        clock.advance(3600.0)
        return armed, live, clock.waits_started, [task.done() for task in opening]

    armed, live, after, opened = asyncio.run(run())
    assert armed == 2 and live == 0 and after == 2 and opened == [True] and timeouts == []


def test_log_lines_are_written_off_the_event_loop(tmp_path: Path) -> None:
    writers: list[int] = []

    class Recording(logs.ReopeningFileHandler):
        def format(self, record: logging.LogRecord) -> str:
            writers.append(threading.get_ident())
            return super().format(record)

    sink = logs.setup_logging(str(tmp_path / "ar.log"), "info")
    recording = Recording(str(tmp_path / "ar.log"))
    recording.setFormatter(logs.JsonFormatter())
    sink.handler.close()
    sink.handler = recording

    async def on_the_loop() -> int:
        logs.emit(logging.INFO, "exchange", nai="alice@example.net")
        try:
            raise ValueError("boom")
        except ValueError:
            logs.log.exception("internal error")
        logs.emit(logging.INFO, "after")  # held to the end of the iteration, as the first
        return threading.get_ident()

    loop_thread = asyncio.run(on_the_loop())
    sink.stop()
    text = (tmp_path / "ar.log").read_text()
    assert len(writers) == 3 and loop_thread not in writers  # two emit lines, the traceback
    assert '"event": "exchange"' in text and "ValueError: boom" in text
    order = [text.index(s) for s in ('"event": "exchange"', "ValueError: boom", '"after"')]
    assert order == sorted(order)  # in order


def stored_key(spi: int) -> StoredKey:
    return StoredKey(spi, NAI, bytes(20), COA, 2_000_000_000.0, 1, AR_ID, 1 << 63)


def test_key_store_is_never_closed_under_a_live_writer(tmp_path: Path) -> None:
    """A writer blocked by another connection's lock: close(timeout) returns without
    closing the connection; the writer commits once the lock goes and then closes it."""
    path = tmp_path / "keys.sqlite"
    store = SqliteKeyStore(str(path))
    store.start()
    writer = store._thread
    assert writer is not None
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    store.store(stored_key(300))
    assert store.close(timeout=0.05) is False  # the writer waits for the lock
    assert writer.is_alive()
    blocker.execute("COMMIT")
    blocker.close()
    writer.join(10)
    assert not writer.is_alive()
    reopened = SqliteKeyStore(str(path))
    try:
        assert reopened.load() == [stored_key(300)]  # committed, 64-bit timestamp intact
    finally:
        reopened.close()
