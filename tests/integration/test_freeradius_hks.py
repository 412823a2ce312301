"""Issue 3, points 2, 3, 5 and 6: the HKS inside a real FreeRADIUS, over real sockets."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pyrad.client
import pyrad.packet
import pytest

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, Status
from hkp_radius.errors import DecodeError
from hkp_radius.wire import ntp
from hkp_radius.wire import radius_attrs as ra
from hkp_radius.wire.messages import HKResp, decode_message

from .conftest import (
    ALICE,
    ALICE_HMK,
    BARRED,
    BARRED_HMK,
    LONG_HMK,
    LONG_NAI,
    POLICY_HMK,
    POLICY_PROHIBITED,
    SHORT,
    SHORT_HMK,
    requires_freeradius,
)
from .hks_client import (
    AR_ADDRESS,
    CARE_OF_ADDRESS,
    BuiltRequest,
    access_request,
    attributes,
    build_hkreq,
    now_ntp,
    send,
)

pytestmark = requires_freeradius
STOCK_DICTIONARY = "/usr/share/freeradius/dictionary"

KEY_ATTRIBUTES = (ra.HANDOVER_KEY, ra.HKS_NONCE, ra.KEY_LIFETIME, ra.PRF_ATTRIBUTE, ra.TIMESTAMP)


def expect_accept(reply: object, built: BuiltRequest, hmk: bytes) -> ra.HKSGrant:
    assert reply.code == pyrad.packet.AccessAccept  # type: ignore[attr-defined]
    grant = ra.parse_accept(attributes(reply))
    expected = crypto.derive_hk(
        hmk, built.prf, built.mn_nonce, grant.hks_nonce, built.nai, AR_ADDRESS
    )
    assert grant.handover_key == expected
    assert len(grant.hks_nonce) == 16
    assert grant.lifetime == 3600
    assert grant.prf == built.prf
    assert grant.timestamp == built.timestamp
    return grant


def expect_discard(reply: object) -> None:
    assert reply.code == pyrad.packet.AccessReject  # type: ignore[attr-defined]
    found = attributes(reply)
    assert ra.STATUS_CODE not in found and ra.RESPONSE_HEADER not in found
    assert not set(KEY_ATTRIBUTES) & set(found)


def expect_error(reply: object, built: BuiltRequest, hmk: bytes, status: Status) -> HKResp:
    """P7: an Access-Reject with the complete HKResp, signed with the HIK."""
    assert reply.code == pyrad.packet.AccessReject  # type: ignore[attr-defined]
    found = attributes(reply)
    assert not set(KEY_ATTRIBUTES) & set(found), "a reject carries no key material"
    refusal = ra.parse_reject(found)
    assert refusal.status == status
    assert refusal.response_header is not None
    response = decode_message(refusal.response_header)
    assert isinstance(response, HKResp)
    assert response.status == status
    assert response.message_id == built.message_id
    assert (response.spi, response.lifetime) == (0, 0)
    mac = response.mac(MacSubtype.MN_HKS)
    assert mac is not None
    hik = crypto.derive_hik(hmk, built.prf, built.message_id, mac.algorithm)
    assert crypto.verify_mac(refusal.response_header, response, MacSubtype.MN_HKS, hik)
    return response


def test_accept_with_pyrad(strict_hks):
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp())
    reply = send(strict_hks.client(), built)
    expect_accept(reply, built, ALICE_HMK)


def server_dictionary_dir(instance, base: Path) -> Path:
    """A `radclient -D` directory with FreeRADIUS's own dictionaries as the HKS loads
    them: the stock ones, then the instance's raddb/dictionary (dictionary.hkp and
    dictionary.hkp.internal, with its HKP-Handover-Key-Salted alias)."""
    base.mkdir(exist_ok=True)
    (base / "dictionary").write_text(
        f"$INCLUDE {STOCK_DICTIONARY}\n$INCLUDE {instance.raddb_dir}/dictionary\n"
    )
    return base


@pytest.mark.parametrize("dictionaries", ["client", "server"])
def test_accept_with_radclient(strict_hks, dictionaries, tmp_path):
    """radclient decrypts HKP-Handover-Key with the AR's small dictionary and with the
    server's own (vendor attribute 4 still decodes as HKP-Handover-Key, encrypt=2,
    although the module returns it under the alias)."""
    if dictionaries == "client":
        dictionary_dir = strict_hks.dictionary_dir
    else:
        dictionary_dir = server_dictionary_dir(strict_hks, tmp_path / "dictionary")
    message_id = 9 if dictionaries == "client" else 10
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), message_id=message_id)
    request = ", ".join(
        [
            f'User-Name = "{ALICE.decode()}"',
            f"HKP-Mobility-Header = {ra.to_hex(built.wire)}",
            f"HKP-AR-Address = {ra.ipv6_text(AR_ADDRESS)}",
            f"HKP-Care-of-Address = {ra.ipv6_text(CARE_OF_ADDRESS)}",
            "Message-Authenticator = 0x00",
        ]
    )
    result = subprocess.run(
        [
            "radclient",
            "-D",
            str(dictionary_dir),
            "-x",
            "-r",
            "1",
            "-t",
            "3",
            f"{strict_hks.address}:{strict_hks.port}",
            "auth",
            strict_hks.secret.decode(),
        ],
        input=request,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    received = result.stdout.split("Received Access-Accept", 1)[1]
    values = dict(re.findall(r"^\s*(HKP-[\w-]+) = (\S+)$", received, re.MULTILINE))
    hks_nonce = ra.from_hex(values[ra.HKS_NONCE])
    expected = crypto.derive_hk(
        ALICE_HMK, PRF.HMAC_SHA1, built.mn_nonce, hks_nonce, ALICE, AR_ADDRESS
    )
    assert ra.from_hex(values[ra.HANDOVER_KEY]) == expected
    assert "Salted" not in received
    assert values[ra.KEY_LIFETIME] == "3600"
    assert values[ra.PRF_ATTRIBUTE] == "HMAC-SHA1"
    assert ra.from_hex(values[ra.TIMESTAMP]) == built.timestamp.to_bytes(8, "big")
    assert "Message-Authenticator" in received


def test_bad_mac_is_discarded(strict_hks):
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), sign_with=bytes(20))
    expect_discard(send(strict_hks.client(), built))


def test_missing_mac_is_discarded(strict_hks):
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), with_mac=False)
    expect_discard(send(strict_hks.client(), built))


def test_unknown_nai_is_discarded(strict_hks):
    built = build_hkreq(b"nobody@example.net", ALICE_HMK, timestamp=now_ntp())
    expect_discard(send(strict_hks.client(), built))


def test_short_hmk_is_discarded_and_logged(strict_hks):
    built = build_hkreq(SHORT, bytes(64), timestamp=now_ntp())  # MN side cannot derive either
    expect_discard(send(strict_hks.client(), built))
    assert "shorter than 64 octets" in strict_hks.log_text()
    assert SHORT_HMK.hex() not in strict_hks.log_text()


def test_disallowed_prf(strict_hks):
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), prf=PRF.HMAC_SHA256)
    response = expect_error(
        send(strict_hks.client(), built), built, ALICE_HMK, Status.INVALID_PRF_ALG
    )
    assert response.prf == PRF.HMAC_SHA1  # the PRF the server requires


def test_disallowed_mac_algorithm(strict_hks):
    built = build_hkreq(
        ALICE, ALICE_HMK, timestamp=now_ntp(), mac_algorithm=MacAlgorithm.HMAC_SHA256
    )
    response = expect_error(
        send(strict_hks.client(), built), built, ALICE_HMK, Status.INVALID_MAC_ALG
    )
    assert response.mac(MacSubtype.MN_HKS).algorithm == MacAlgorithm.HMAC_SHA1


@pytest.mark.parametrize("algorithm", [0, 9, 15])
def test_unknown_mac_algorithm_is_discarded(strict_hks, algorithm):
    """R91 departs (PROFILE P7, docs/decisions.md): a MAC Algorithm Type nobody
    implements cannot be verified, so no signed INVALID_MAC_ALG, no answer at all."""
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), mac_algorithm=algorithm)
    expect_discard(send(strict_hks.client(), built))


def test_timestamp_required(strict_hks):
    built = build_hkreq(ALICE, ALICE_HMK)
    expect_error(send(strict_hks.client(), built), built, ALICE_HMK, Status.TIMESTAMP_REQD)


@pytest.mark.parametrize("offset", [-60.0, +60.0])
def test_stale_or_future_timestamp(strict_hks, offset):
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(offset))
    response = expect_error(
        send(strict_hks.client(), built), built, ALICE_HMK, Status.INVALID_TIMESTAMP
    )
    echoed = response.timestamp
    assert echoed is not None
    assert echoed & 0xFFFFFFFF == built.timestamp & 0xFFFFFFFF  # the MN's low 32 bits
    assert abs(ntp.ntp_seconds(echoed) - ntp.ntp_seconds(now_ntp())) <= 5  # our high 32


def test_replayed_timestamp(strict_hks):
    timestamp = now_ntp()
    first = build_hkreq(ALICE, ALICE_HMK, timestamp=timestamp)
    expect_accept(send(strict_hks.client(), first), first, ALICE_HMK)
    again = build_hkreq(ALICE, ALICE_HMK, timestamp=timestamp, message_id=8)
    expect_error(send(strict_hks.client(), again), again, ALICE_HMK, Status.INVALID_TIMESTAMP)


def test_prohibited_by_users_file(strict_hks):
    built = build_hkreq(BARRED, BARRED_HMK, timestamp=now_ntp())
    reply = send(strict_hks.client(), built)
    expect_error(reply, built, BARRED_HMK, Status.ADMINISTRATIVELY_PROHIBITED)


def test_prohibited_by_unlang_policy(strict_hks):
    built = build_hkreq(POLICY_PROHIBITED, POLICY_HMK, timestamp=now_ntp())
    reply = send(strict_hks.client(), built)
    expect_error(reply, built, POLICY_HMK, Status.ADMINISTRATIVELY_PROHIBITED)


def test_prohibited_needs_authentication_first(strict_hks):
    built = build_hkreq(BARRED, BARRED_HMK, timestamp=now_ntp(), sign_with=bytes(20))
    expect_discard(send(strict_hks.client(), built))


def test_long_nai_split_over_attributes(strict_hks):
    built = build_hkreq(LONG_NAI, LONG_HMK, timestamp=now_ntp())
    assert len(ra.split_mobility_header(built.wire)) >= 2
    expect_accept(send(strict_hks.client(), built), built, LONG_HMK)


def test_missing_ar_address_is_an_error_to_the_ar(strict_hks):
    """Draft §6.4: "If the IP address of the AR was not available, the server MUST return
    an error to the AR, indicating that the IP-Address is required." An Access-Reject
    with a Reply-Message naming HKP-AR-Address, nothing for the MN, no key."""
    client = strict_hks.client()
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp())
    packet = client.CreateAuthPacket(code=pyrad.packet.AccessRequest)
    for name, value in ra.access_request_attributes(
        built.wire, built.nai, AR_ADDRESS, CARE_OF_ADDRESS, nas_identifier="ar-test"
    ):
        if name != ra.AR_ADDRESS:
            packet.AddAttribute(name, value)
    reply = client.SendPacket(packet)
    expect_discard(reply)
    messages = attributes(reply).get(ra.REPLY_MESSAGE, [])
    assert any("HKP-AR-Address" in m for m in messages), messages


def test_request_without_message_authenticator_is_dropped(strict_hks):
    """BlastRADIUS (require_message_authenticator = yes): FreeRADIUS drops a request
    without Message-Authenticator. Synchronised on the next request from the same socket:
    FreeRADIUS reads the socket in order, so once the signed request behind it is
    answered, the unsigned one was read first and got nothing."""
    client = strict_hks.client()
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp())
    unsigned = access_request(client, built, message_authenticator=False)
    assert not unsigned.message_authenticator
    later = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), message_id=11)
    signed = access_request(client, later)
    signed.id = (unsigned.id + 1) % 256
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((strict_hks.address, strict_hks.port))
        sock.settimeout(10.0)  # a hang guard: the signed request is answered at once
        sock.send(unsigned.RequestPacket())
        sock.send(signed.RequestPacket())
        raw = sock.recv(4096)
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(4096)  # nothing for the unsigned request, before or after
    reply = signed.CreateReply(packet=raw)
    assert reply.id == signed.id and signed.VerifyReply(reply, raw, enforce_ma=True)
    reply.request_authenticator = signed.authenticator  # as pyrad's Client sets it
    expect_accept(reply, later, ALICE_HMK)


@pytest.mark.parametrize("kind", ["accept", "error", "discard"])
def test_every_reply_is_signed(strict_hks, kind):
    """With enforce_ma pyrad drops a reply without a valid Message-Authenticator, so any
    reply at all proves it carried one that verified."""
    client = strict_hks.client()
    client.enforce_ma = True
    built = {
        "accept": lambda: build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), message_id=12),
        "error": lambda: build_hkreq(ALICE, ALICE_HMK, message_id=13),
        "discard": lambda: build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), sign_with=bytes(20)),
    }[kind]()
    reply = client.SendPacket(access_request(client, built))
    assert reply.message_authenticator
    expected = pyrad.packet.AccessAccept if kind == "accept" else pyrad.packet.AccessReject
    assert reply.code == expected


def test_hmk_protects_nothing_in_real_replies(strict_hks):
    """R12: in real replies every MAC verifies with the HIK and never with the HMK (or
    its 20- or 32-octet prefix), and the HK on the wire is the derived one, sealed with
    the RADIUS secret: the HMK itself opens nothing."""
    from hkp_radius.crypto import salt

    from .hks_client import handover_key_values

    client = strict_hks.client()
    cases = [
        (ALICE, ALICE_HMK, {"prf": PRF.HMAC_SHA256}),
        (ALICE, ALICE_HMK, {"mac_algorithm": MacAlgorithm.HMAC_SHA256}),
        (ALICE, ALICE_HMK, {}),  # no timestamp: TIMESTAMP_REQD
        (ALICE, ALICE_HMK, {"timestamp": now_ntp(-60)}),
        (BARRED, BARRED_HMK, {"timestamp": now_ntp()}),
    ]
    statuses = set()
    for message_id, (nai, hmk, options) in enumerate(cases, start=30):
        built = build_hkreq(nai, hmk, message_id=message_id, **options)
        refusal = ra.parse_reject(attributes(send(client, built)))
        assert refusal.status is not None and refusal.response_header is not None
        statuses.add(refusal.status)
        response = decode_message(refusal.response_header)
        mac = response.mac(MacSubtype.MN_HKS)
        hik = crypto.derive_hik(hmk, built.prf, message_id, mac.algorithm)
        assert crypto.verify_mac(refusal.response_header, response, MacSubtype.MN_HKS, hik)
        for direct in (hmk, hmk[:20], hmk[:32]):
            assert not crypto.verify_mac(
                refusal.response_header, response, MacSubtype.MN_HKS, direct
            )
    assert len(statuses) == 5
    built = build_hkreq(ALICE, ALICE_HMK, timestamp=now_ntp(), message_id=40)
    request = access_request(client, built)
    reply = client.SendPacket(request)
    grant = expect_accept(reply, built, ALICE_HMK)
    assert ALICE_HMK[:16] not in grant.handover_key and grant.handover_key not in ALICE_HMK
    [sealed] = handover_key_values(client, reply.raw_packet)
    assert salt.salt_decrypt(sealed, strict_hks.secret, request.authenticator) == grant.handover_key
    with pytest.raises(DecodeError):
        salt.salt_decrypt(sealed, ALICE_HMK, request.authenticator)
