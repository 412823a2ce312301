"""Issue 15, Must show 2, with real FreeRADIUS and hkp-ar: 10,000 accepted requests from
one NAI leave at most [policy] max_keys_per_nai (2) of its keys at the AR, in memory
(`hkp-ar keys` over the control socket) and in the SQLite key store; another NAI's key
is untouched.

The requests are built with the MN's codec (tests.ar_helpers.build_hkreq: MN-HKS MAC
from the HMK, a fresh nonce each) and sent over UDP, 64 in flight, Message IDs in turn
over 0-255: the MN library itself leaves two seconds before it reuses a Message ID
(MESSAGE_ID_REUSE_GUARD), which holds one identity to 128 requests a second; here the
AR's response cache is 20 ms so that an ID is free again long before it comes round.
Admission control is off: this test is about what accepted requests leave behind, and
10,000 requests in seconds from one NAI are far beyond its nai_rate
(tests/integration/test_ar_flood.py and tests/test_ar_admission.py cover that).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from ar_proxy import keystore
from ar_proxy.control import query
from hkp_radius.ar.config import MAX_KEYS_PER_NAI
from hkp_radius.constants import SPI_MIN, Status
from tests.ar_helpers import HMK, HMK2, NAI, NAI2, build_hkreq, decode_hkresp

from .ar_fixtures import ArProcess, require_root_and_freeradius

pytestmark = pytest.mark.integration

REQUESTS = 10_000
IN_FLIGHT = 64
LOST_AFTER = 2.0  # s without any answer: what is out is lost
AR_ID = ipaddress.IPv6Address("2001:db8::1").packed  # ar_fixtures.config_text's [ar] address
GREEDY_COA = ipaddress.IPv6Address("2001:db8:15::10").packed
OTHER_COA = ipaddress.IPv6Address("2001:db8:15::20").packed


def stored(path: Path) -> list[keystore.StoredKey]:
    with sqlite3.connect(path) as db:
        rows = db.execute(keystore.SELECT).fetchall()
    return [keystore.key_from_row(tuple(row)) for row in rows]


def load(ar: ArProcess, nai: bytes, hmk: bytes, coa: bytes, total: int) -> tuple[int, int]:
    """New-key requests of `nai`, IN_FLIGHT at a time, until `total` got a Success
    HKResp with an SPI (accepted: a key issued). Returns (accepted, sent); a request
    without an answer in LOST_AFTER seconds counts as lost (UDP)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.connect(("::1", ar.udp_port))
    sock.settimeout(LOST_AFTER)
    accepted = sent = outstanding = 0
    try:
        while accepted < total and sent < 2 * total:
            while outstanding < min(IN_FLIGHT, total - accepted) and sent < 2 * total:
                sock.send(build_hkreq(message_id=sent % 256, nai=nai, hmk=hmk, coa=coa,
                                      nonce=os.urandom(16)))  # fmt: skip
                sent += 1
                outstanding += 1
            try:
                reply = decode_hkresp(sock.recv(4096))
            except TimeoutError:
                outstanding = 0  # lost; the next window starts afresh
                continue
            outstanding -= 1
            accepted += reply.status == Status.SUCCESS and reply.spi >= SPI_MIN
    finally:
        sock.close()
    return accepted, sent


def test_ten_thousand_keys_for_one_nai_leave_at_most_the_bound(
    start_ar: Callable[..., ArProcess], tmp_path: Path
) -> None:
    require_root_and_freeradius()
    control = tmp_path / "control.sock"
    ar = start_ar(
        sections={
            "admission": {"enabled": "no"},
            "policy": {"response_cache_time": 0.02},
            "log": {"level": "info"},
            "control": {"socket": control},
        }
    )
    assert load(ar, NAI2, HMK2, OTHER_COA, 1)[0] == 1
    (other,) = [k for k in query(str(control), "keys") if k["nai"] == NAI2.decode()]

    accepted, sent = load(ar, NAI, HMK, GREEDY_COA, REQUESTS)
    assert accepted == REQUESTS, (accepted, sent)  # each one issued a key

    held = query(str(control), "keys")
    greedy = [k for k in held if k["nai"] == NAI.decode()]
    assert 1 <= len(greedy) <= MAX_KEYS_PER_NAI == 2
    (still,) = [k for k in held if k["nai"] == NAI2.decode()]  # untouched:
    assert (still["spi"], still["coa"], still["expires_at"]) == (
        other["spi"],
        other["coa"],
        other["expires_at"],
    )
    status = query(str(control), "status")
    assert status["keys"] == len(greedy) + 1
    assert status["exchanges"].get("issued", 0) >= accepted + 1

    # every HKResp promising a key waited for its key store commit, the retirements
    # included (they come before it): the file says the same now
    on_disk = stored(ar.key_store)
    assert sorted(k.spi for k in on_disk if k.nai == NAI) == sorted(k["spi"] for k in greedy)
    assert [k.spi for k in on_disk if k.nai == NAI2] == [other["spi"]]
    retired = [e for e in ar.events(name="key-deleted") if "retired" in str(e.get("reason"))]
    assert len(retired) >= accepted - MAX_KEYS_PER_NAI
