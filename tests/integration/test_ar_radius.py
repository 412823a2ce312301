"""Issue 4, must-show 4 and 5, through the hkp-ar process: fail-over past an unreachable
server, restarts, and the HK as FreeRADIUS encrypts it (RFC 2548). The timing of
retransmission and fail-over, and forged replies, are in test_ar_radius_timing.py (a
manual clock)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import pytest

from hkp_radius.constants import Status
from hkp_support.freeradius import FreeRadiusInstance
from tests.ar_helpers import COA, NAI, build_hkreq, decode_hkresp, verified_hkresp, wall_stamp

from .ar_fixtures import ArProcess, MobileNodeSocket, wait_until

pytestmark = pytest.mark.integration


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


def test_hk_from_freeradius_decrypts_to_the_derived_hk(
    hkp_ar: ArProcess, mn_socket: MobileNodeSocket
) -> None:
    """P8: the HKP-Handover-Key FreeRADIUS sends, decrypted by the AR, is the HK the MN
    derives (also for the returning-MN check, which uses the stored key)."""
    response, hk = verified_hkresp(mn_socket.exchange(build_hkreq(message_id=48)), message_id=48)
    assert [k.hk for k in hkp_ar.wait_stored(response.spi)] == [hk]
    assert NAI in {k.nai for k in hkp_ar.stored_keys()}
