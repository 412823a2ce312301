"""Issue 4, must-show 4 and 5: realms with fail-over, silent HKSs, restarts; and the
RADIUS details of P8 (Message-Authenticator, Response Authenticator, RFC 2548)."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from ar_proxy.config import PACKAGED_DICTIONARY
from hkp_radius.constants import Status
from hkp_support.freeradius import FreeRadiusInstance
from tests.ar_helpers import COA, NAI, build_hkreq, decode_hkresp, verified_hkresp, wall_stamp

from .ar_fixtures import ArProcess, Blackhole, MobileNodeSocket, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def blackholes() -> Iterator[list[Blackhole]]:
    holes = [Blackhole(), Blackhole()]
    yield holes
    for hole in holes:
        hole.close()


def test_first_server_down_success_through_second_within_budget(
    start_ar: Callable[..., ArProcess], ar_hks: FreeRadiusInstance, blackholes: list[Blackhole]
) -> None:
    """Must-show 4: the realm's first home server is silent; the second answers."""
    dead = ("127.0.0.1", blackholes[0].port)
    ar = start_ar(servers=[dead, (ar_hks.address, ar_hks.port)], response_window=0.3, retries=1)
    mn = MobileNodeSocket(ar.udp_port)
    try:
        reply = mn.exchange(build_hkreq(message_id=41, coa=COA), timeout=5.0)
        verified_hkresp(reply, message_id=41)
        event = ar.wait_event(event="exchange", outcome="issued", message_id=41)
        budget_ms = 0.3 * 2 * 1000  # first server: (retries + 1) x response_window
        assert budget_ms * 0.9 <= event["ms"] <= budget_ms + 1500
        assert blackholes[0].drain() == 2  # sent, retransmitted once, then failed over
        # The silent server is now tried last (revive_interval): the next one is quick.
        verified_hkresp(mn.exchange(build_hkreq(message_id=42, coa=COA)), message_id=42)
        assert ar.wait_event(event="exchange", message_id=42)["ms"] < budget_ms
    finally:
        mn.close()


def test_unreachable_first_server_fails_over_to_second(
    start_ar: Callable[..., ArProcess], ar_hks: FreeRadiusInstance
) -> None:
    """Fail-over also past a home server whose socket cannot even be opened (a
    link-local address without a scope: EINVAL), without an internal error."""
    ar = start_ar(servers=[("fe80::1", 1812), (ar_hks.address, ar_hks.port)])
    mn = MobileNodeSocket(ar.udp_port)
    try:
        reply = mn.exchange(build_hkreq(message_id=49, coa=COA), timeout=5.0)
        verified_hkresp(reply, message_id=49)
        ar.wait_event(event="exchange", outcome="issued", message_id=49)
        assert not [e for e in ar.events() if e.get("level") == "error"]
    finally:
        mn.close()


def test_all_servers_down_mn_gets_nothing_and_ar_keeps_no_state(
    start_ar: Callable[..., ArProcess], blackholes: list[Blackhole]
) -> None:
    """Must-show 4; §6.3: "it MUST remove all state associated with the MN and MUST NOT
    send a response to the MN"."""
    servers = [("127.0.0.1", hole.port) for hole in blackholes]
    ar = start_ar(servers=servers, response_window=0.2, retries=1)
    mn = MobileNodeSocket(ar.udp_port)
    try:
        wire = build_hkreq(message_id=43, coa=COA)
        mn.send(wire)
        ar.wait_event(event="exchange", outcome="hks-silent", message_id=43)
        assert mn.pending() == [] and ar.stored_keys() == []
        assert [hole.drain() for hole in blackholes] == [2, 2]
        # No state left: the same request again is new (sent to the HKS again), not a
        # retransmission the AR would discard while pending or answer from a cache.
        mn.send(wire)
        wait_until(
            lambda: blackholes[0].drain() or blackholes[1].drain(), 5.0, "a new Access-Request"
        )
    finally:
        mn.close()


def test_restart_keeps_keys_until_lifetime_ends(start_ar: Callable[..., ArProcess]) -> None:
    """Must-show 5 (issue 4), R67: after hkp-ar restarts, a V request for a key it issued
    still verifies; a key whose lifetime ended while the AR was down is deleted at start
    and the same MN gets HK_VERIFY_FAILED. The lifetime's end is injected (the stored
    wall-clock expiry moved into the past), not waited for: the role's expiry timer is
    shown with injected time in tests/test_ar_role.py::test_keys_deleted_when_lifetime_ends."""
    ar = start_ar()
    mn = MobileNodeSocket(ar.udp_port)
    try:
        request = build_hkreq(message_id=44, coa=COA, timestamp=wall_stamp())
        response, hk = verified_hkresp(mn.exchange(request), message_id=44)
        ar.wait_stored(response.spi)
        assert ar.stop() == 0  # SIGTERM: clean exit, writes committed
        assert ar.events(name="stopped")
        ar.start()
        assert ar.ready["keys"] == 1
        mn.close()
        mn = MobileNodeSocket(ar.udp_port)
        returning = build_hkreq(
            message_id=45, verify=True, with_hks_mac=False, hk=hk, coa=COA, timestamp=wall_stamp()
        )
        verified = decode_hkresp(mn.exchange(returning))
        assert (
            verified.verify and verified.spi == response.spi and verified.status == Status.SUCCESS
        )
        stored = ar.wait_stored(response.spi)[0]
        assert stored.last_timestamp is not None  # P6: the accepted V's timestamp, persisted
        assert ar.stop() == 0
        with sqlite3.connect(ar.key_store) as db:  # the lifetime ends while the AR is down
            db.execute("UPDATE handover_keys SET expires_at = ?", (time.time() - 1,))
        ar.start()
        assert ar.ready["keys"] == 0
        ar.wait_event(event="key-deleted", spi=response.spi, reason="expired")
        again = build_hkreq(
            message_id=46, verify=True, with_hks_mac=False, hk=hk, coa=COA, timestamp=wall_stamp()
        )
        mn.close()
        mn = MobileNodeSocket(ar.udp_port)
        assert decode_hkresp(mn.exchange(again)).status == Status.HK_VERIFY_FAILED
        wait_until(lambda: ar.stored_keys() == [], 5.0, "the key gone from the store")
    finally:
        mn.close()


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


def test_replies_without_valid_authenticators_are_ignored(
    start_ar: Callable[..., ArProcess], ar_hks: FreeRadiusInstance
) -> None:
    """P8: "always with Message-Authenticator" on replies, Response Authenticator checked:
    three forged replies from the first server are dropped; the second server answers."""
    forger = ForgingServer(ar_hks.secret)
    try:
        servers = [("127.0.0.1", forger.port), (ar_hks.address, ar_hks.port)]
        ar = start_ar(servers=servers, response_window=0.5, retries=0)
        mn = MobileNodeSocket(ar.udp_port)
        try:
            verified_hkresp(mn.exchange(build_hkreq(message_id=47, coa=COA)), message_id=47)
            event = ar.wait_event(event="exchange", outcome="issued", message_id=47)
            assert event["ms"] >= 450  # the forged replies did not end the first attempt
            dropped = [
                e
                for e in ar.events()
                if "failed the Response Authenticator" in e.get("message", "")
            ]
            assert forger.forged == 3 and len(dropped) == 3
        finally:
            mn.close()
    finally:
        forger.close()


def test_hk_from_freeradius_decrypts_to_the_derived_hk(
    hkp_ar: ArProcess, mn_socket: MobileNodeSocket
) -> None:
    """P8: the HKP-Handover-Key FreeRADIUS sends, decrypted by the AR, is the HK the MN
    derives (also for the returning-MN check, which uses the stored key)."""
    response, hk = verified_hkresp(mn_socket.exchange(build_hkreq(message_id=48)), message_id=48)
    assert [k.hk for k in hkp_ar.wait_stored(response.spi)] == [hk]
    assert NAI in {k.nai for k in hkp_ar.stored_keys()}
