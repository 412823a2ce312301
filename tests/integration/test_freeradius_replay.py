"""Issue 3, point 4: the replay state survives a FreeRADIUS restart (SQLite)."""

from __future__ import annotations

import shutil

import pyrad.packet

from hkp_radius.constants import Status
from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance

from .conftest import ALICE, ALICE_HMK, requires_freeradius, work_dir
from .hks_client import attributes, build_hkreq, now_ntp, send

pytestmark = requires_freeradius


def test_replay_after_restart_is_refused():
    path = work_dir("replay")
    instance = FreeRadiusInstance(path, users={ALICE.decode(): ALICE_HMK}, require_timestamp=True)
    try:
        timestamp = now_ntp()
        first = build_hkreq(ALICE, ALICE_HMK, timestamp=timestamp)
        with instance:
            assert send(instance.client(), first).code == pyrad.packet.AccessAccept
        assert instance.exit_code == 0, instance.log_tail()  # a clean shutdown
        assert instance.replay_db_path.exists()
        with instance:  # a new FreeRADIUS process, same work dir
            replayed = send(instance.client(), first)
            assert replayed.code == pyrad.packet.AccessReject
            assert ra.parse_reject(attributes(replayed)).status == Status.INVALID_TIMESTAMP
            later = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(0.5), message_id=8)
            assert send(instance.client(), later).code == pyrad.packet.AccessAccept
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)
