"""Issue 10, Must show 3: the shipped LDAP example (raddb/mods-available/hkp_ldap and
the hkp schema of mods-config/ldap/hkp/) against a real slapd started here: an HMK
stored in LDAP yields a key; HKP-Authorization from LDAP refuses an MN; the HMK stays
out of the -X log (suppress_secrets = yes) and out of anonymous reach."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyrad.packet

from hkp_radius.constants import Status
from hkp_radius.wire import radius_attrs as ra
from hkp_support import credentials
from hkp_support.slapd import LDAPSEARCH, SlapdServer

from .conftest import ALICE, ALICE_HMK, BARRED, BARRED_HMK, requires_freeradius
from .credential_checks import (
    EXAMPLE_HMK,
    EXAMPLE_NAI,
    credential_hks,
    expect_key,
    log_of_one_key,
    no_hmk_in,
)
from .hks_client import attributes, build_hkreq, now_ntp, send

pytestmark = requires_freeradius


def test_an_hmk_stored_in_ldap_yields_a_key(shared_dir: Path) -> None:
    users = {ALICE.decode(): ALICE_HMK, BARRED.decode(): BARRED_HMK}
    slapd = SlapdServer(
        shared_dir / "ldap",
        users=users,
        prohibited=frozenset({BARRED.decode()}),
        extra_ldif=credentials.LDAP_EXAMPLE.read_text(),  # the shipped example entry
    )
    with slapd as ldap:
        # The HKS's account reads the HMK; an anonymous client does not.
        assert f"hkpHandoverMasterKey: 0x{ALICE_HMK.hex()}" in ldap.search(
            f"(uid={ALICE.decode()})", "hkpHandoverMasterKey"
        )
        anonymous = subprocess.run(
            [LDAPSEARCH, "-x", "-LLL", "-H", ldap.uri, "-b", ldap.base_dn,
             f"(uid={ALICE.decode()})", "hkpHandoverMasterKey"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert "hkpHandoverMasterKey" not in anonymous.stdout
        module = credentials.ldap_module(ldap.uri, ldap.bind_dn, ldap.bind_password, ldap.base_dn)
        instance = credential_hks(shared_dir / "hks", "hkp_ldap", module, listed="hkp_ldap_quiet")
        with instance:
            built = build_hkreq(ALICE, ALICE_HMK, message_id=1, timestamp=now_ntp())
            expect_key(send(instance.client(), built), built, ALICE_HMK)
            example = build_hkreq(EXAMPLE_NAI, EXAMPLE_HMK, message_id=5, timestamp=now_ntp())
            expect_key(send(instance.client(), example), example, EXAMPLE_HMK)
            barred = build_hkreq(BARRED, BARRED_HMK, message_id=2, timestamp=now_ntp())
            refused = send(instance.client(), barred)
            assert refused.code == pyrad.packet.AccessReject
            status = ra.parse_reject(attributes(refused)).status
            assert status == Status.ADMINISTRATIVELY_PROHIBITED
            unknown = build_hkreq(b"nobody@example.net", ALICE_HMK, message_id=3)
            assert send(instance.client(), unknown).code == pyrad.packet.AccessReject
        log = instance.log_text()
        # Why the policy: hkp_ldap listed directly prints the HMK at -X even with
        # suppress_secrets = yes (rlm_ldap 3.2.1's map debug line).
        direct = credential_hks(shared_dir / "direct", "hkp_ldap", module)
        assert ALICE_HMK.hex() in log_of_one_key(direct, ALICE, ALICE_HMK, message_id=4)
    assert "hkp_ldap_quiet" in log and "rlm_ldap (hkp_ldap)" in log
    no_hmk_in(log, ALICE_HMK, BARRED_HMK, EXAMPLE_HMK)
    assert ldap.bind_password not in log
