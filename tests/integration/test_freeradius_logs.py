"""Issue 3, point 8: no HMK, HIK or HK in anything the server logs, at its normal
level (-f, log file) and its debug level (-X)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

import pyrad.packet
import pytest

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm
from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance

from .conftest import requires_freeradius, work_dir
from .hks_client import (
    AR_ADDRESS,
    attributes,
    build_hkreq,
    handover_key_values,
    now_ntp,
    send,
)

pytestmark = requires_freeradius

NAI = b"logged@example.net"
HMK = bytes(range(150, 214))
SHORT_NAI = b"tiny@example.net"
SHORT_HMK = bytes(range(200, 232))


@dataclass(frozen=True)
class Exchange:
    """What one run of `exercise` involved: every key, and the HK as it went on the wire."""

    keys: list[bytes] = field(repr=False)
    hk: bytes = field(repr=False)
    hk_on_wire: bytes


def exercise(instance: FreeRadiusInstance) -> Exchange:
    """An accept, an error, a discard and a short-HMK discard."""
    client = instance.client()
    accepted = build_hkreq(NAI, HMK, timestamp=now_ntp())
    reply = send(client, accepted)
    assert reply.code == pyrad.packet.AccessAccept
    grant = ra.parse_accept(attributes(reply))
    hk = crypto.derive_hk(HMK, PRF.HMAC_SHA1, accepted.mn_nonce, grant.hks_nonce, NAI, AR_ADDRESS)
    assert grant.handover_key == hk
    [hk_on_wire] = handover_key_values(client, reply.raw_packet)
    stale = build_hkreq(NAI, HMK, timestamp=now_ntp(-100), message_id=3)
    assert send(client, stale).code == pyrad.packet.AccessReject
    forged = build_hkreq(NAI, HMK, timestamp=now_ntp(), sign_with=bytes(20), message_id=4)
    assert send(client, forged).code == pyrad.packet.AccessReject
    short = build_hkreq(SHORT_NAI, bytes(64), timestamp=now_ntp())
    assert send(client, short).code == pyrad.packet.AccessReject
    hiks = [crypto.derive_hik(HMK, PRF.HMAC_SHA1, m, MacAlgorithm.HMAC_SHA1) for m in (7, 3, 4)]
    return Exchange([HMK, SHORT_HMK, hk, *hiks], hk, hk_on_wire)


def leaked(log: str, keys: list[bytes]) -> list[str]:
    """The keys whose hex appears in the log in any form FreeRADIUS or Python prints
    octets (lower or upper case, with or without 0x, whole or cut short): the first
    16 hex digits, searched in the lower-cased log, cover them all."""
    text = log.lower()
    return [key.hex()[:8] + "..." for key in keys if key.hex()[:16] in text]


@pytest.mark.parametrize("debug", [False, True], ids=["normal", "debug"])
def test_no_key_material_in_logs(debug):
    path = work_dir("logs")
    users = {NAI.decode(): HMK, SHORT_NAI.decode(): SHORT_HMK}
    instance = FreeRadiusInstance(path, users=users, debug=debug)
    try:
        with instance:
            exchange = exercise(instance)
        log = instance.log_text()
        assert "hkp_hks: Accept" in log  # the log is the real one, and has content
        if debug:
            assert "Received Access-Request" in log
            assert "HKP-HMK" in log or "Matched entry" in log
        assert leaked(log, exchange.keys) == []
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)


def test_debug_log_shows_the_hk_only_as_ciphertext_and_never_the_radius_secret():
    """At -X rlm_python3 echoes what the module returns: the salt-encrypted HK (in
    control:HKP-Staged-Key until its replay record is committed), the same octets as on
    the wire. The plaintext HK is nowhere; nor is the RADIUS secret that,
    with the public Request Authenticator, would decrypt it (policy hkp_hks_salt_inputs
    silences the request's debug output while copying it)."""
    path = work_dir("logs")
    instance = FreeRadiusInstance(path, users={NAI.decode(): HMK}, debug=True)
    try:
        with instance:
            exchange = exercise(instance)
        log = instance.log_text()
        assert leaked(log, [exchange.hk]) == []
        # replay_commit = post-auth: the key waits in the control list for the commit
        echo = f"authenticate - 'config:HKP-Staged-Key' := '0x{exchange.hk_on_wire.hex()}'"
        assert echo in log.splitlines()
        assert "HKP-Handover-Key-Salted = <<< secret >>>" in log  # the packet dump
        assert instance.secret.decode() not in log
        assert "client:secret" not in log
        # the request's debug output came back after the secret was copied
        assert "policy hkp_hks_salt_inputs {" in log and "[hkp_hks] = ok" in log
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)
