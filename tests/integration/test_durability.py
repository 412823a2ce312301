"""Issue 14, must-show 3: kill -9 between accept and reply loses nothing a peer was told.

The HKS (a real FreeRADIUS with the module) and the AR (a real hkp-ar) are killed with
SIGKILL while many exchanges are in flight, at an event: the k-th answer received (HKS)
or the k-th Access-Accept handed to the AR by a relay standing in the RADIUS path (AR),
so that the other exchanges are somewhere between the accept and the reply. After a
restart on the same files, everything a peer was told is still known (docs/hks.md and
docs/ar.md, "durability"): every timestamp the HKS answered Access-Accept for is
refused as a replay, and every key an MN received an HKResp for is in the AR's store
with the HK the MN derives. Exchanges that were never answered may go either way.
"""

from __future__ import annotations

import hashlib
import select
import shutil
import signal
import socket
import time
from pathlib import Path

import pyrad.packet

from hkp_radius.constants import Status
from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance
from tests.ar_helpers import build_hkreq, decode_hkresp, expected_hk, ip6, wall_stamp

from .ar_fixtures import AR_SECRET, ArProcess, config_text, require_root_and_freeradius, temp_dir
from .conftest import requires_freeradius
from .hks_client import attributes, encode, now_ntp, raw_request, send
from .hks_client import build_hkreq as build_access_hkreq

pytestmark = requires_freeradius

USERS = 48  # exchanges in flight at once, one identity each
KILL_AFTER = 12  # answers seen before the kill
DEADLINE = 30.0  # for the whole burst (a deadline, never a measurement)


def identities() -> dict[str, bytes]:
    return {
        f"crash{i}@example.net": hashlib.sha256(b"crash-hmk%d" % i).digest() * 2
        for i in range(USERS)
    }


def test_hks_killed_mid_burst_forgets_no_accepted_timestamp() -> None:
    require_root_and_freeradius()
    users = identities()
    path = temp_dir("hkp-crash-hks-")
    instance = FreeRadiusInstance(path, users=users, require_timestamp=True)
    try:
        built = {
            identifier: build_access_hkreq(nai.encode(), hmk, timestamp=now_ntp())
            for identifier, (nai, hmk) in enumerate(users.items())
        }
        accepted: list[int] = []
        with instance:
            assert instance.process is not None
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for identifier, request in built.items():
                    wire = encode(
                        identifier, raw_request(request.nai, request.wire), instance.secret
                    )
                    sock.sendto(wire, (instance.address, instance.port))
                deadline = time.monotonic() + DEADLINE
                while len(accepted) < KILL_AFTER:
                    assert time.monotonic() < deadline, "the HKS did not answer the burst"
                    ready, _, _ = select.select([sock], [], [], 1.0)
                    if ready:
                        reply = sock.recv(4096)
                        assert reply[0] == pyrad.packet.AccessAccept, instance.log_tail()
                        accepted.append(reply[1])
                instance.process.send_signal(signal.SIGKILL)  # the event: k answers seen
                instance.process.wait()
                sock.setblocking(False)
                try:  # answers that were already on their way count as told
                    while True:
                        reply = sock.recv(4096)
                        if reply[0] == pyrad.packet.AccessAccept:
                            accepted.append(reply[1])
                except BlockingIOError:
                    pass
        assert instance.exit_code == -signal.SIGKILL
        assert len(accepted) < USERS, "every exchange finished before the kill: no race shown"
        with instance:  # a new FreeRADIUS process on the same replay database
            client = instance.client()
            for identifier in accepted:
                replayed = send(client, built[identifier])
                assert replayed.code == pyrad.packet.AccessReject, built[identifier].nai
                reject = ra.parse_reject(attributes(replayed))
                assert reject.status == Status.INVALID_TIMESTAMP
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)


class Relay:
    """A UDP relay between the AR and the HKS: it forwards every packet and counts the
    answers it hands to the AR, so that a test can act right after the k-th."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the AR talks here
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # towards the HKS
        self.back.connect(server)
        self.port: int = self.front.getsockname()[1]
        self.ar: tuple[str, int] | None = None
        self.answers = 0

    def pump(self, ready: list[socket.socket]) -> None:
        if self.front in ready:
            data, self.ar = self.front.recvfrom(4096)
            self.back.send(data)
        if self.back in ready:
            data = self.back.recv(4096)
            if self.ar is not None:
                self.front.sendto(data, self.ar)
                self.answers += 1

    def close(self) -> None:
        self.front.close()
        self.back.close()


def test_ar_killed_between_accept_and_reply_keeps_every_key_it_announced() -> None:
    require_root_and_freeradius()
    users = identities()
    hks_dir, ar_dir = temp_dir("hkp-crash-arhks-"), temp_dir("hkp-crash-ar-")
    hks = FreeRadiusInstance(hks_dir, secret=AR_SECRET, users=users)
    relay: Relay | None = None
    ar: ArProcess | None = None
    try:
        hks.start()
        relay = Relay((hks.address, hks.port))
        config = config_text(ar_dir / "keys.sqlite", [("127.0.0.1", relay.port)])
        ar = ArProcess(ar_dir, config).start()
        assert ar.process is not None
        requests = {
            message_id: (nai.encode(), hmk) for message_id, (nai, hmk) in enumerate(users.items())
        }
        told: dict[bytes, tuple[int, bytes]] = {}  # NAI -> (SPI, HK) the MN received
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as mn:
            mn.bind(("::1", 0))
            for message_id, (nai, hmk) in requests.items():
                wire = build_hkreq(
                    message_id=message_id,
                    nai=nai,
                    hmk=hmk,
                    coa=ip6(f"2001:db8:1::{message_id + 1:x}"),
                    timestamp=wall_stamp(),
                )
                mn.sendto(wire, ("::1", ar.udp_port))

            def receive() -> None:
                response = decode_hkresp(mn.recv(4096))
                assert response.status == Status.SUCCESS, response
                nai, hmk = requests[response.message_id]
                assert response.hks_nonce is not None
                hk = expected_hk(
                    response.hks_nonce, message_id=response.message_id, nai=nai, hmk=hmk
                )
                told[nai] = (response.spi, hk)

            deadline = time.monotonic() + DEADLINE
            while relay.answers < KILL_AFTER:
                assert time.monotonic() < deadline, "the burst did not get answers"
                ready, _, _ = select.select([relay.front, relay.back, mn], [], [], 1.0)
                relay.pump(ready)
                if mn in ready:
                    receive()
            # The event: the k-th Access-Accept was just handed to the AR. Kill it now,
            # with that exchange (and the others in flight) between accept and reply.
            ar.process.send_signal(signal.SIGKILL)
            ar.process.wait()
            mn.setblocking(False)
            try:  # HKResps already on their way count as told
                while True:
                    receive()
            except BlockingIOError:
                pass
        assert ar.stop() == -signal.SIGKILL
        assert len(told) < USERS, "every exchange finished before the kill: no race shown"
        stored = {key.nai: key for key in ar.stored_keys()}
        for nai, (spi, hk) in told.items():
            assert nai in stored, f"{nai!r} was told SPI {spi}; the store lost it"
            assert stored[nai].spi == spi and stored[nai].hk == hk
        restarted = ArProcess(ar_dir, config).start()  # the store as the daemon reads it
        try:
            assert restarted.ready["keys"] >= len(told)
            # Each MN returns with the key it was told (V flag, MN-AR MAC with the HK,
            # §6.2.3): the restarted AR knows it, or it would stay silent (§6.3.1).
            coas = {nai: ip6(f"2001:db8:1::{m + 1:x}") for m, (nai, _) in requests.items()}
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as mn:
                mn.bind(("::1", 0))
                for nai, (spi, hk) in told.items():
                    verify = build_hkreq(
                        message_id=200, nai=nai, coa=coas[nai], verify=True, hk=hk,
                        with_hks_mac=False, timestamp=wall_stamp(),
                    )  # fmt: skip
                    mn.sendto(verify, ("::1", restarted.udp_port))
                    ready, _, _ = select.select([mn], [], [], DEADLINE)
                    assert ready, f"the restarted AR does not know {nai!r}'s key {spi}"
                    answer = decode_hkresp(mn.recv(4096))
                    assert answer.status == Status.SUCCESS and answer.spi == spi, answer
        finally:
            restarted.stop()
    finally:
        if ar is not None:
            ar.stop()
        if relay is not None:
            relay.close()
        hks.stop()
        shutil.rmtree(hks_dir, ignore_errors=True)
        shutil.rmtree(ar_dir, ignore_errors=True)


def test_durability_settings_are_the_documented_ones() -> None:
    """The note in docs/hks.md and docs/ar.md names these; a change must update it."""
    from ar_proxy import keystore
    from freeradius_module import replay_sqlite

    docs = Path(__file__).resolve().parents[2] / "docs"
    for module, page in ((replay_sqlite, "hks.md"), (keystore, "ar.md")):
        assert (module.JOURNAL_MODE, module.SYNCHRONOUS) == ("WAL", "FULL")
        text = (docs / page).read_text()
        assert "journal_mode=WAL" in text and "synchronous=FULL" in text, page
