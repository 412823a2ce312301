"""Issue 3, point 7: garbage in every HKP attribute neither crashes FreeRADIUS nor
yields a wrong Access-Accept or a wrong key; a valid request afterwards still succeeds.

The cases come from hkp-fuzz's seeded generator alone (issue 9, Must show 4): case
(SEED, i) is rebuilt byte for byte by `hkp-fuzz`, so a failure names the cases to
replay, e.g. `hkp-fuzz replay FILE` on the file the report points at. Each request
carries a valid Message-Authenticator (unless the case is about it), so it reaches the
module; the HKReqs are re-signed with the HMK after mutation, so they reach the checks
behind authentication.
"""

from __future__ import annotations

import shutil

import pyrad.packet

from hkp_fuzz.cases import Setup, cases_for
from hkp_fuzz.radius import load_dictionary
from hkp_fuzz.runner import Options, Run
from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance

from .conftest import requires_freeradius, work_dir
from .hks_client import build_hkreq, now_ntp, send

pytestmark = requires_freeradius

MUTATIONS = 4000
SEED = 20240607
NAI = b"fuzz@example.net"
HMK = bytes(range(7, 71))


def test_mutated_requests_neither_crash_nor_accept() -> None:
    path = work_dir("fuzz")
    instance = FreeRadiusInstance(
        path,
        users={NAI.decode(): HMK},
        require_timestamp=True,
        module_settings={"log_summary_interval": "0"},  # every reason in the log
    )
    try:
        with instance:
            setup = Setup(
                "radius", SEED, NAI, HMK, timestamp=now_ntp(), dictionary=load_dictionary()
            )
            options = Options(instance.address, instance.port, instance.secret, out=path / "out")
            run = Run(setup, options).run(cases_for(setup, MUTATIONS))
            found = [a.to_json() for a in run.anomalies]
            assert not found, f"replay with hkp-fuzz replay FILE: {found}"
            assert run.sent == MUTATIONS and run.stopped == "done"
            assert run.outcomes.get("reject", 0) > MUTATIONS // 2
            assert instance.running, instance.log_tail()
            log = instance.log_text()
            for reason in (
                "is malformed",
                "does not verify",
                "INVALID_TIMESTAMP",
                "User-Name differs",
            ):
                assert reason in log, f"no mutation reached the check: {reason}"
            assert "internal error" not in log
            valid = build_hkreq(NAI, HMK, timestamp=now_ntp(), message_id=99)
            reply = send(instance.client(), valid)
            assert reply.code == pyrad.packet.AccessAccept
            assert ra.HANDOVER_KEY in reply.keys()
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)
