"""The hkp_hks module salt-encrypts the HK itself (docs/decisions.md ## HKS). On the wire
that must be exactly what FreeRADIUS's own encrypt=2 produces: here FreeRADIUS
encrypts known values in the same Access-Accept, and everything is compared octet for
octet and decoded by pyrad."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pyrad.packet
import pytest

from hkp_radius import crypto
from hkp_radius.constants import PRF
from hkp_radius.crypto import salt
from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance

from .conftest import requires_freeradius, work_dir
from .hks_client import AR_ADDRESS, access_request, build_hkreq, handover_key_values, now_ntp

pytestmark = requires_freeradius

NAI = b"vector@example.net"
HMK = bytes(range(30, 94))
# One block (length octet + 15) and three blocks (1 + 33 -> 48 octets).
KNOWN = (bytes(range(0xA0, 0xAF)), b"FreeRADIUS encrypt=2 test vector!")
# FreeRADIUS encrypts these itself (HKP-Handover-Key, encrypt=2) in the same reply.
POLICY = f"""
	if (&User-Name == "{NAI.decode()}") {{
		update reply {{
			&HKP-Handover-Key := 0x{KNOWN[0].hex()}
			&HKP-Handover-Key += 0x{KNOWN[1].hex()}
		}}
	}}
"""


@pytest.fixture(scope="module")
def hks() -> Iterator[FreeRadiusInstance]:
    path = work_dir("salt")
    instance = FreeRadiusInstance(path, users={NAI.decode(): HMK}, authorization_policy=POLICY)
    with instance:
        yield instance
    shutil.rmtree(path, ignore_errors=True)


def test_module_output_is_freeradius_encrypt2_on_the_wire(hks):
    client = hks.client()
    built = build_hkreq(NAI, HMK, timestamp=now_ntp())
    request = access_request(client, built)
    reply = client.SendPacket(request)
    assert reply.code == pyrad.packet.AccessAccept
    values = handover_key_values(client, reply.raw_packet)
    assert len(values) == 3  # two encrypted by FreeRADIUS, one by the module
    decrypted = [salt.salt_decrypt(v, hks.secret, request.authenticator) for v in values]
    hks_nonce = reply[ra.HKS_NONCE][0]
    hk = crypto.derive_hk(HMK, PRF.HMAC_SHA1, built.mn_nonce, hks_nonce, NAI, AR_ADDRESS)
    assert sorted(decrypted) == sorted([*KNOWN, hk])
    for value, plaintext in zip(values, decrypted, strict=True):
        # same salt, same octets: FreeRADIUS's layout and ours are one and the same
        assert salt.salt_encrypt(plaintext, hks.secret, request.authenticator, value[:2]) == value
    # pyrad (the AR's decoder) reads all three as HKP-Handover-Key and decrypts them
    assert sorted(reply[ra.HANDOVER_KEY]) == sorted([*KNOWN, hk])


def test_each_reply_gets_a_fresh_salt(hks):
    client = hks.client()
    salts = set()
    for message_id in range(20, 28):
        built = build_hkreq(NAI, HMK, timestamp=now_ntp(), message_id=message_id)
        reply = client.SendPacket(access_request(client, built))
        assert reply.code == pyrad.packet.AccessAccept
        module_values = [
            v
            for v in handover_key_values(client, reply.raw_packet)
            if salt.salt_decrypt(v, hks.secret, reply.request_authenticator) not in KNOWN
        ]
        assert len(module_values) == 1
        salts.add(module_values[0][:2])
        assert module_values[0][0] & 0x80
    assert len(salts) >= 7  # 15 random bits each: two collisions among 8 is ~1e-7


def test_secret_that_looks_like_hex():
    """The secret reaches the module exactly: one that begins with "0x" is not read as
    hex (the "s:" prefix in policy hkp_hks_salt_inputs), quotes and spaces survive."""
    path = work_dir("salt-secret")
    secret = b'0x4142 "odd" secret'
    instance = FreeRadiusInstance(path, users={NAI.decode(): HMK}, secret=secret)
    try:
        with instance:
            client = instance.client()
            built = build_hkreq(NAI, HMK, timestamp=now_ntp())
            reply = client.SendPacket(access_request(client, built))
            assert reply.code == pyrad.packet.AccessAccept
            [hk] = reply[ra.HANDOVER_KEY]
            hks_nonce = reply[ra.HKS_NONCE][0]
            assert hk == crypto.derive_hk(
                HMK, PRF.HMAC_SHA1, built.mn_nonce, hks_nonce, NAI, AR_ADDRESS
            )
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)
