"""Issue 15, HKS side (Must show 3): strict identities against the real FreeRADIUS. Each
lenient spelling of User-Name or HKP-AR-Address is discarded and counted; a prohibited
NAI obtains no key through any of them; junk grows the log by a bounded number of lines.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator

import pyrad.packet
import pytest

from hkp_radius.hks.role import DiscardReason
from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance

from .conftest import (
    ALICE,
    ALICE_HMK,
    BARRED,
    BARRED_HMK,
    POLICY_HMK,
    POLICY_PROHIBITED,
    REALM_POLICY,
    requires_freeradius,
    work_dir,
)
from .hks_client import (
    AR_ADDRESS,
    CARE_OF_ADDRESS,
    RawAttributes,
    attributes,
    build_hkreq,
    fire,
    now_ntp,
    raw_request,
)

pytestmark = requires_freeradius

# spelling: (User-Names, HKP-AR-Addresses, the reason the HKS counts it under)
SPELLINGS: dict[str, tuple[list[str], list[str], DiscardReason]] = {
    "trailing NUL": (["{nai}\0"], ["2001:db8::1"], DiscardReason.USER_NAME_MISMATCH),
    "second User-Name": (["{nai}", "{nai}"], ["2001:db8::1"], DiscardReason.USER_NAME_NOT_ONE),
    "second, other User-Name": (
        ["{nai}", "{other}"],
        ["2001:db8::1"],
        DiscardReason.USER_NAME_NOT_ONE,
    ),
    "another MN's User-Name": (["{other}"], ["2001:db8::1"], DiscardReason.USER_NAME_MISMATCH),
    "AR address ::": (["{nai}"], ["::"], DiscardReason.AR_ADDRESS_NOT_GLOBAL),
    "multicast AR address": (["{nai}"], ["ff02::1"], DiscardReason.AR_ADDRESS_NOT_GLOBAL),
    "link-local AR address": (["{nai}"], ["fe80::1"], DiscardReason.AR_ADDRESS_NOT_GLOBAL),
    "loopback AR address": (["{nai}"], ["::1"], DiscardReason.AR_ADDRESS_NOT_GLOBAL),
    "two AR addresses": (
        ["{nai}"],
        ["2001:db8::1", "2001:db8::1"],
        DiscardReason.AR_ADDRESS_NOT_ONE,
    ),
}
KEY_ATTRIBUTES = {ra.HANDOVER_KEY, ra.HKS_NONCE, ra.KEY_LIFETIME, ra.STATUS_CODE}
SUMMARY_PART = re.compile(r"(Discard|Reject) ([A-Z_]+)[^;]*?: (\d+) \(last")


def summary_counts(log: str) -> Counter[str]:
    """Sum the counts of every summary line the module wrote, by outcome."""
    counts: Counter[str] = Counter()
    for line in log.splitlines():
        if "hkp_hks:" in line and "without a key" in line:
            for kind, name, count in SUMMARY_PART.findall(line):
                counts[f"{kind} {name}"] += int(count)
    return counts


@pytest.fixture(scope="module")
def hks() -> Iterator[FreeRadiusInstance]:
    """The shipped module settings (timestamps required, 10 s log summaries), the realm
    policy of the strict tests and a NAI the users file prohibits."""
    path = work_dir("identities")
    instance = FreeRadiusInstance(
        path,
        users={
            ALICE.decode(): ALICE_HMK,
            BARRED.decode(): BARRED_HMK,
            POLICY_PROHIBITED.decode(): POLICY_HMK,
        },
        require_timestamp=None,
        prohibited_users=[BARRED.decode()],
        authorization_policy=REALM_POLICY,
        module_settings={"log_summary_interval": "3600"},  # all in the flush at stop
    )
    with instance:
        yield instance
    shutil.rmtree(path, ignore_errors=True)


def spelled(client: object, nai: bytes, hmk: bytes, spelling: str, message_id: int) -> object:
    user_names, ar_addresses, _ = SPELLINGS[spelling]
    built = build_hkreq(nai, hmk, timestamp=now_ntp(), message_id=message_id)
    packet = client.CreateAuthPacket(code=pyrad.packet.AccessRequest)  # type: ignore[attr-defined]
    other = (ALICE if nai != ALICE else POLICY_PROHIBITED).decode()  # a provisioned MN
    for user_name in user_names:
        packet.AddAttribute(ra.USER_NAME, user_name.format(nai=nai.decode(), other=other))
    for chunk in ra.split_mobility_header(built.wire):
        packet.AddAttribute(ra.MOBILITY_HEADER, chunk)
    for address in ar_addresses:
        packet.AddAttribute(ra.AR_ADDRESS, address)
    packet.AddAttribute(ra.CARE_OF_ADDRESS, ra.ipv6_text(CARE_OF_ADDRESS))
    return client.SendPacket(packet)  # type: ignore[attr-defined]


def test_each_spelling_is_discarded_and_counted_and_no_prohibited_nai_gets_a_key(hks):
    client = hks.client()
    expected: Counter[str] = Counter()
    message_id = 100
    for nai, hmk in ((ALICE, ALICE_HMK), (POLICY_PROHIBITED, POLICY_HMK), (BARRED, BARRED_HMK)):
        for spelling, (_, _, reason) in SPELLINGS.items():
            message_id += 1
            reply = spelled(client, nai, hmk, spelling, message_id)
            found = attributes(reply)
            assert reply.code == pyrad.packet.AccessReject, (nai, spelling)
            assert not KEY_ATTRIBUTES & set(found), (nai, spelling)
            assert ra.RESPONSE_HEADER not in found, (nai, spelling)  # silent towards the MN
            if reason.name.startswith("AR_ADDRESS"):  # the AR's fault: it is told (§6.4)
                assert any("HKP-AR-Address" in m for m in found[ra.REPLY_MESSAGE]), spelling
            expected[f"Discard {reason.name}"] += 1
    # the prohibited NAIs spelt strictly get ADMINISTRATIVELY_PROHIBITED, alice her key
    for nai, hmk, code in (
        (POLICY_PROHIBITED, POLICY_HMK, pyrad.packet.AccessReject),
        (BARRED, BARRED_HMK, pyrad.packet.AccessReject),
        (ALICE, ALICE_HMK, pyrad.packet.AccessAccept),
    ):
        message_id += 1
        built = build_hkreq(nai, hmk, timestamp=now_ntp(), message_id=message_id)
        packet = client.CreateAuthPacket(code=pyrad.packet.AccessRequest)
        for name, value in ra.access_request_attributes(
            built.wire, nai, AR_ADDRESS, CARE_OF_ADDRESS
        ):
            packet.AddAttribute(name, value)
        reply = client.SendPacket(packet)
        assert reply.code == code, nai
        if code == pyrad.packet.AccessReject:
            assert ra.parse_reject(attributes(reply)).status == 131  # ADMINISTRATIVELY_PROHIBITED
    hks.stop()  # the pending summary is written at shutdown
    counts = summary_counts(hks.log_text())
    for key, count in expected.items():
        assert counts[key] == count, (key, counts)
    assert counts["Reject ADMINISTRATIVELY_PROHIBITED"] == 2
    hks.start()  # for whoever uses the fixture next


def junk(count: int) -> list[RawAttributes]:
    """Access-Requests as a flooding AR client would forward them: random NAIs, HKReqs
    with MACs made of random keys; a tenth of them for alice, equally unverifiable."""
    requests = []
    for i in range(count):
        nai = ALICE if i % 10 == 0 else f"junk{os.urandom(4).hex()}@example.net".encode()
        built = build_hkreq(nai, ALICE_HMK, timestamp=now_ntp(), sign_with=os.urandom(20))
        requests.append(raw_request(nai, built.wire))
    return requests


def test_junk_grows_the_log_by_a_bounded_number_of_lines():
    path = work_dir("junklog")
    interval = 10.0  # the shipped log_summary_interval
    instance = FreeRadiusInstance(path, users={ALICE.decode(): ALICE_HMK}, require_timestamp=None)
    try:
        with instance:
            requests = junk(3000)
            before = len(instance.log_text().splitlines())
            started = time.monotonic()
            codes = fire(instance, requests)
            elapsed = time.monotonic() - started
            assert codes.get(pyrad.packet.AccessReject) == len(requests), codes
            grown = len(instance.log_text().splitlines()) - before
            # at most one summary line per interval, and one at once after a quiet one
            assert grown <= 1 + elapsed / interval + 1, (grown, elapsed)
        counts = summary_counts(instance.log_text())  # after the flush at stop
        assert counts["Discard UNKNOWN_NAI"] + counts["Discard BAD_MAC"] == len(requests)
        assert counts["Discard BAD_MAC"] == len(requests) // 10
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)
