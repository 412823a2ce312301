"""Issue 10, Must show 1 and 5: two FreeRADIUS HKS processes share their replay state in
a real PostgreSQL (started by the test); a replay accepted by one is refused by the
other; concurrent replays to both are accepted exactly once; with the database stopped
no request is accepted, the log says why, and the HKS recovers when it returns."""

from __future__ import annotations

import select
import shutil
import socket
import time
from collections.abc import Iterator

import pyrad.packet
import pytest

from hkp_radius.constants import Status
from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance
from hkp_support.hks_group import HKSGroup

from .conftest import ALICE, ALICE_HMK, requires_freeradius, work_dir
from .hks_client import attributes, build_hkreq, encode, now_ntp, raw_request, send

pytestmark = requires_freeradius

ROUNDS = 12
REPLY_TIMEOUT = 10.0  # generous upper bound for one answer; normally milliseconds


@pytest.fixture(scope="module")
def group() -> Iterator[HKSGroup]:
    path = work_dir("shared")
    hks_group = HKSGroup(
        path,
        2,
        users={ALICE.decode(): ALICE_HMK},
        require_timestamp=True,
        module_settings={"log_summary_interval": "0"},
    )
    try:
        with hks_group:
            yield hks_group
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _status(reply: object) -> Status:
    return ra.parse_reject(attributes(reply)).status


def test_a_replay_accepted_by_one_server_is_refused_by_the_other(group: HKSGroup) -> None:
    a, b = group.servers
    first = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), message_id=1)
    assert send(a.client(), first).code == pyrad.packet.AccessAccept
    replayed = send(b.client(), first)
    assert replayed.code == pyrad.packet.AccessReject
    assert _status(replayed) == Status.INVALID_TIMESTAMP
    # ... and the other way round.
    second = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(0.5), message_id=2)
    assert send(b.client(), second).code == pyrad.packet.AccessAccept
    replayed = send(a.client(), second)
    assert replayed.code == pyrad.packet.AccessReject
    assert _status(replayed) == Status.INVALID_TIMESTAMP
    stored = group.postgres.psql(
        f"SELECT count(*) FROM hkp_replay WHERE nai = '\\x{ALICE.hex()}'::bytea"
    )
    assert stored.strip() == "1"


def _both_at_once(servers: list[FreeRadiusInstance], wire: list[tuple[int, bytes]]) -> list[int]:
    """Send one request to every server back to back; every reply's code."""
    sockets = []
    for identifier, server in enumerate(servers):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect((server.address, server.port))
        sockets.append((sock, encode(identifier, wire, server.secret)))
    for sock, packet in sockets:
        sock.send(packet)
    codes = []
    deadline = time.monotonic() + REPLY_TIMEOUT
    waiting = [sock for sock, _ in sockets]
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select(waiting, [], [], deadline - time.monotonic())
        for sock in ready:
            codes.append(sock.recv(4096)[0])
            waiting.remove(sock)
    for sock, _ in sockets:
        sock.close()
    assert not waiting, "a server did not answer"
    return codes


def test_concurrent_copies_to_both_servers_are_accepted_exactly_once(group: HKSGroup) -> None:
    base = now_ntp(1.0)
    for round_number in range(ROUNDS):
        built = build_hkreq(
            ALICE, ALICE_HMK, timestamp=base + round_number * 2**24, message_id=10 + round_number
        )
        codes = _both_at_once(group.servers, raw_request(ALICE, built.wire))
        assert sorted(codes) == [pyrad.packet.AccessAccept, pyrad.packet.AccessReject], codes


def test_database_stopped_no_accept_logged_and_recovered(group: HKSGroup) -> None:
    a = group.servers[0]
    before = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(2.0), message_id=40)
    assert send(a.client(), before).code == pyrad.packet.AccessAccept
    group.postgres.stop()  # returns once the server has exited
    try:
        during = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(2.5), message_id=41)
        reply = send(a.client(), during)
        assert reply.code == pyrad.packet.AccessReject
        assert ra.HANDOVER_KEY_SALTED not in attributes(reply)
        assert "request discarded: replay state in PostgreSQL" in a.log_text()
        assert "unavailable" in a.log_text()
    finally:
        group.postgres.start()  # returns once it accepts connections
    # The refused request recorded nothing: the very same HKReq is accepted now, once
    # (the HKS connected again by itself).
    assert send(a.client(), during).code == pyrad.packet.AccessAccept
    replayed = send(group.servers[1].client(), during)
    assert _status(replayed) == Status.INVALID_TIMESTAMP


def test_an_unreachable_database_stops_start_up() -> None:
    """A wrong connection string shows at start-up, not as discards (docs/hks.md)."""
    from hkp_support.postgresql import free_tcp_port

    path = work_dir("nodb")
    instance = FreeRadiusInstance(
        path,
        users={ALICE.decode(): ALICE_HMK},
        replay_postgresql=f"host=127.0.0.1 port={free_tcp_port()} dbname=hkp user=hkp",
    )
    try:
        with pytest.raises(RuntimeError, match="exited at start-up") as caught:
            instance.start()
        assert "hkp_hks: cannot start: replay_postgresql" in str(caught.value)
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)
