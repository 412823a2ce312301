"""Issue 14: an Access-Accept leaves only once its replay record is committed
(replay_commit = post-auth: the module stages, its thread commits in groups, the perl
instance hkp_hks_commit_wait holds the reply). The replay database's write lock is
held by another connection, so the commit cannot happen: the answer is a reject
without key material, and the timestamp, never stored, is accepted afterwards."""

from __future__ import annotations

import shutil
import sqlite3

import pyrad.packet

from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance

from .conftest import ALICE, ALICE_HMK, requires_freeradius, work_dir
from .hks_client import attributes, build_hkreq, now_ntp, send

pytestmark = requires_freeradius

BUSY_TIMEOUT = 5.0  # freeradius_module.replay_sqlite.BUSY_TIMEOUT_SECONDS


def test_no_accept_before_its_commit_and_a_failed_commit_is_a_reject_without_keys():
    path = work_dir("commit-wait")
    instance = FreeRadiusInstance(path, users={ALICE.decode(): ALICE_HMK}, require_timestamp=True)
    try:
        with instance:
            warm = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(-1.0), message_id=1)
            assert send(instance.client(), warm).code == pyrad.packet.AccessAccept
            blocker = sqlite3.connect(str(instance.replay_db_path), isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # the module's commit cannot take the lock
            built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), message_id=2)
            try:
                reply = send(instance.client(timeout=4 * BUSY_TIMEOUT), built)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert reply.code == pyrad.packet.AccessReject
            answered = attributes(reply)
            assert ra.HANDOVER_KEY not in answered and ra.HKS_NONCE not in answered
            assert "replay commit failed" in instance.log_text()
            # Nothing was stored: the same HKReq (the AR's retransmission) is accepted.
            assert send(instance.client(), built).code == pyrad.packet.AccessAccept
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)
