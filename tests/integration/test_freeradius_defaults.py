"""The HKS as shipped (issue 16, Must show 5, second half): mods-available/hkp_hks
with no setting changed requires timestamps, so an HKReq without one gets a signed
TIMESTAMP_REQD from the real FreeRADIUS, and one with a fresh timestamp its key."""

from __future__ import annotations

import shutil

import pyrad.packet

from hkp_radius import crypto
from hkp_radius.constants import MacSubtype, Status
from hkp_radius.wire import radius_attrs as ra
from hkp_radius.wire.messages import HKResp, decode_message
from hkp_support.freeradius import FreeRadiusInstance

from .conftest import ALICE, ALICE_HMK, requires_freeradius, work_dir
from .hks_client import attributes, build_hkreq, now_ntp, send

pytestmark = requires_freeradius


def test_shipped_defaults_answer_a_request_without_timestamp_with_signed_timestamp_reqd():
    path = work_dir("defaults")
    # require_timestamp=None: the module's config { } exactly as shipped
    instance = FreeRadiusInstance(path, users={ALICE.decode(): ALICE_HMK}, require_timestamp=None)
    try:
        with instance:
            module = (instance.raddb_dir / "mods-enabled" / "hkp_hks").read_text()
            assert "require_timestamp = yes" in module
            built = build_hkreq(ALICE, ALICE_HMK, message_id=21)
            reply = send(instance.client(), built)
            assert reply.code == pyrad.packet.AccessReject
            refusal = ra.parse_reject(attributes(reply))
            assert refusal.status == Status.TIMESTAMP_REQD and refusal.response_header
            response = decode_message(refusal.response_header)
            assert isinstance(response, HKResp) and response.status == Status.TIMESTAMP_REQD
            assert response.message_id == 21 and response.timestamp is None
            hik = crypto.derive_hik(ALICE_HMK, built.prf, 21, built.mac_algorithm)
            assert crypto.verify_mac(refusal.response_header, response, MacSubtype.MN_HKS, hik)
            with_timestamp = build_hkreq(ALICE, ALICE_HMK, message_id=22, timestamp=now_ntp())
            assert send(instance.client(), with_timestamp).code == pyrad.packet.AccessAccept
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)
