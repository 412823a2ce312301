"""Issue 11 must-show 4 and the watchdog of must-show 3, in process: hkp-ar's RadSec
client (ar_proxy/radsec.py) on a manual clock, over real TLS on loopback, against a
TLS server this test controls (it holds replies until told to answer), so that the
256-in-flight limit and Status-Server silence detection are shown exactly."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from ar_proxy.config import PACKAGED_DICTIONARY, HomeServer, TlsSettings
from ar_proxy.radsec import IDS_PER_CONNECTION, RadSecClient, RadSecError
from hkp_support.certs import RadSecCerts, make_radsec_certs
from tests.ar_clock import ManualClock

from .ar_fixtures import temp_dir

pytestmark = pytest.mark.integration

T = TypeVar("T")
HANG_GUARD = 30.0  # seconds: only a hung test ever reaches it; nothing is timed by it
SECRET = b"radsec"
WINDOW = 1.0  # the home server's response_window on the manual clock


def run(main: Coroutine[Any, Any, T]) -> T:
    async def guarded() -> T:
        return await asyncio.wait_for(main, HANG_GUARD)

    return asyncio.run(guarded())


@pytest.fixture(scope="module")
def certs() -> Iterator[RadSecCerts]:
    directory = temp_dir("hkp-radsec-unit-")
    yield make_radsec_certs(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    return Dictionary(str(PACKAGED_DICTIONARY))


class HeldServer:
    """A RadSec server that records every packet and answers only when told to
    (`answer`), Status-Server too unless `answer_probes`."""

    def __init__(self, certs: RadSecCerts, dictionary: Dictionary, answer_probes: bool) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certs.server.certificate, certs.server.key)
        self.context.load_verify_locations(certs.server.ca)
        self.context.verify_mode = ssl.CERT_REQUIRED  # RFC 6614 §2.3: mutual
        self.dictionary = dictionary
        self.answer_probes = answer_probes
        self.received: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.changed = asyncio.Condition()
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while True:
                header = await reader.readexactly(4)
                data = header + await reader.readexactly(int.from_bytes(header[2:4]) - 4)
                async with self.changed:
                    self.received.append(data)
                    self.changed.notify_all()
                if data[0] == rpacket.StatusServer and self.answer_probes:
                    self.answer(len(self.received) - 1)
        except (asyncio.IncompleteReadError, OSError):
            return

    async def until_received(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.received) >= count)

    def answer(self, index: int) -> None:
        request = rpacket.AuthPacket(
            packet=self.received[index], secret=SECRET, dict=self.dictionary
        )
        reply = request.CreateReply()
        reply.code = rpacket.AccessAccept
        if request.code != rpacket.StatusServer:
            reply.add_message_authenticator()  # P8; FreeRADIUS leaves probes unsigned
        self.writers[-1].write(reply.ReplyPacket())

    async def close(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.server.close()
        await self.server.wait_closed()


def home_server(certs: RadSecCerts, port: int, retries: int = 2) -> HomeServer:
    tls = TlsSettings(
        ca_file=str(certs.client.ca),
        certificate_file=str(certs.client.certificate),
        private_key_file=str(certs.client.key),
        server_name=certs.server_name,
        keepalive_interval=3600.0,
    )
    return HomeServer(
        "held", "127.0.0.1", port, SECRET, response_window=WINDOW, retries=retries,
        proto="tls", tls=tls,
    )  # fmt: skip


def builder(dictionary: Dictionary, user: str) -> Any:
    def build(identifier: int) -> rpacket.AuthPacket:
        packet = rpacket.AuthPacket(
            code=rpacket.AccessRequest, id=identifier, secret=SECRET, dict=dictionary
        )
        packet.add_message_authenticator()
        packet.AddAttribute("User-Name", user)
        return packet

    return build


def test_256_in_flight_complete_and_the_257th_waits(
    certs: RadSecCerts, dictionary: Dictionary
) -> None:
    """Must show 4: 257 requests on one connection: 256 go out, with the 256 distinct
    Identifiers; the 257th waits (sent nothing, collides with nothing) until a reply
    frees an Identifier, then goes out with that one; every request gets its own reply."""

    async def main() -> None:
        clock = ManualClock()
        server = HeldServer(certs, dictionary, answer_probes=True)
        await server.start()
        client = RadSecClient(dictionary, clock)
        target = home_server(certs, server.port)
        tasks = [
            asyncio.ensure_future(client.exchange(target, builder(dictionary, f"mn{n}")))
            for n in range(IDS_PER_CONNECTION + 1)
        ]
        try:
            await server.until_received(IDS_PER_CONNECTION)
            connection = client.connection(target)
            assert connection is not None
            assert len(connection.waiting) == IDS_PER_CONNECTION
            assert connection.waiting_for_id == 1
            identifiers = [packet[1] for packet in server.received]
            assert sorted(identifiers) == list(range(IDS_PER_CONNECTION))
            assert not any(task.done() for task in tasks)

            freed = server.received[100][1]
            server.answer(100)
            await server.until_received(IDS_PER_CONNECTION + 1)
            last = server.received[IDS_PER_CONNECTION]
            assert last[1] == freed  # the Identifier just freed, and only now
            assert connection.waiting_for_id == 0
            assert len(connection.waiting) == IDS_PER_CONNECTION  # 255 old + the 257th

            for index in range(len(server.received)):
                if index != 100:
                    server.answer(index)
            results = await asyncio.gather(*tasks)
            for n, result in enumerate(results):
                assert result is not None, n
                request, reply = result
                assert reply.code == rpacket.AccessAccept and reply.id == request.id
                assert request["User-Name"] == [f"mn{n}"]
            assert len(server.received) == IDS_PER_CONNECTION + 1  # nothing retransmitted
            assert connection.closed is None
        finally:
            await client.close()
            await server.close()

    run(main())


def test_silent_connection_is_found_by_status_server_and_closed(
    certs: RadSecCerts, dictionary: Dictionary, caplog: pytest.LogCaptureFixture
) -> None:
    """Must show 3 (the watchdog): a request goes out and nothing comes back. One
    response window later the client sends a Status-Server (not a retransmission:
    RFC 6613); unanswered for one more window, the connection is declared silent and
    closed, and the request fails (the RADIUS client then fails over). A server that
    answers the probe keeps its connection, and its request waits for its own reply."""

    async def main() -> None:
        clock = ManualClock()
        silent = HeldServer(certs, dictionary, answer_probes=False)
        alive = HeldServer(certs, dictionary, answer_probes=True)
        for server in (silent, alive):
            await server.start()
        client = RadSecClient(dictionary, clock)
        to_silent, to_alive = home_server(certs, silent.port), home_server(certs, alive.port)
        to_alive = HomeServer(**{**to_alive.__dict__, "name": "alive"})
        try:
            stuck = asyncio.ensure_future(client.exchange(to_silent, builder(dictionary, "a")))
            slow = asyncio.ensure_future(client.exchange(to_alive, builder(dictionary, "b")))
            await silent.until_received(1)
            await alive.until_received(1)
            assert [p[0] for p in silent.received] == [rpacket.AccessRequest]

            clock.advance(WINDOW)  # one window of silence: the probe
            await silent.until_received(2)
            await alive.until_received(2)
            assert silent.received[1][0] == rpacket.StatusServer
            assert silent.received[1][1] != silent.received[0][1]  # its own Identifier
            assert not stuck.done()

            clock.advance(WINDOW)  # the probe unanswered too: silent, closed
            with pytest.raises(RadSecError, match="silent: nothing received for 2 s"):
                await stuck
            assert client.connection(to_silent) is None
            assert not slow.done()  # alive answered its probe: it keeps waiting
            connection = client.connection(to_alive)
            assert connection is not None and connection.closed is None
            alive.answer(0)
            result = await slow
            assert result is not None and result[1].code == rpacket.AccessAccept
            assert len([p for p in silent.received if p[0] == rpacket.AccessRequest]) == 1
        finally:
            await client.close()
            for server in (silent, alive):
                await server.close()

    with caplog.at_level(logging.INFO, logger="hkp-ar"):
        run(main())
    silent_lines = [r for r in caplog.records if getattr(r, "fields", {}).get("action") == "silent"]
    assert len(silent_lines) == 1 and silent_lines[0].fields["server"] == "held"  # type: ignore[attr-defined]


def test_forged_reply_dropped_and_a_broken_frame_closes_the_connection(
    certs: RadSecCerts, dictionary: Dictionary
) -> None:
    """A reply whose Response Authenticator does not verify is dropped (the request
    still waits); a frame whose Length cannot be RADIUS (RFC 6613: the stream cannot be
    resynchronised) closes the connection, and the request fails with the reason."""

    async def main() -> None:
        clock = ManualClock()
        server = HeldServer(certs, dictionary, answer_probes=True)
        await server.start()
        client = RadSecClient(dictionary, clock)
        target = home_server(certs, server.port)
        task = asyncio.ensure_future(client.exchange(target, builder(dictionary, "x")))
        try:
            await server.until_received(1)
            request = server.received[0]
            forged = bytes((rpacket.AccessAccept, request[1])) + (20).to_bytes(2) + bytes(16)
            server.writers[-1].write(forged)
            connection = client.connection(target)
            assert connection is not None
            await _until(lambda: connection.packets == 1)
            assert not task.done() and connection.closed is None
            server.writers[-1].write(bytes((2, request[1], 0, 3)))  # Length 3
            with pytest.raises(RadSecError, match="packet of length 3: not RADIUS"):
                await task
            assert connection.closed is not None
        finally:
            await client.close()
            await server.close()

    run(main())


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0)  # yields to the loop: the reader runs; no time passes
