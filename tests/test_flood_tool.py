"""hkp-flood (issue 15): it refuses what would leave the host or run unbounded, and its
junk is well-formed HKReqs (the AR cannot tell them from an MN's) with random NAIs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hkp_flood import FloodRefused, check_bounds, check_target, junk_pool
from hkp_radius.ar.admission import peek_nai
from hkp_radius.constants import MacSubtype
from hkp_radius.wire import HKReq, decode_message


@pytest.mark.parametrize("host", ["::1", "127.0.0.1", "127.3.4.5", "::ffff:127.0.0.2"])
def test_loopback_targets_are_allowed_anywhere(host: str) -> None:
    check_target(host, namespaced=False)


@pytest.mark.parametrize("host", ["2001:db8::1", "192.0.2.1", "fe80::1", "ff02::1"])
def test_other_targets_only_inside_a_namespace(host: str) -> None:
    with pytest.raises(FloodRefused, match="not a loopback address"):
        check_target(host, namespaced=False)
    check_target(host, namespaced=True)


def test_names_are_refused() -> None:
    with pytest.raises(FloodRefused, match="IP address"):
        check_target("localhost", namespaced=True)


@pytest.mark.parametrize(("rate", "duration"), [(None, 0), (None, 601), (0.0, 1), (2e6, 1)])
def test_unbounded_floods_are_refused(rate: float | None, duration: float) -> None:
    with pytest.raises(FloodRefused):
        check_bounds(rate, duration)


def test_cli_refuses_a_remote_target_with_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hkp_flood", "[2001:db8::1]:54135", "--duration", "1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "not a loopback address" in done.stderr


def test_junk_is_well_formed_with_random_nais_and_an_mn_hks_mac() -> None:
    pool = junk_pool(50, 1, "example.net", 1.7e9, bytes(16))
    nais = set()
    for wire in pool:
        message = decode_message(wire)
        assert isinstance(message, HKReq) and message.mac(MacSubtype.MN_HKS) is not None
        assert message.mn_id is not None and message.mn_id.endswith(b"@example.net")
        assert peek_nai(wire) == message.mn_id
        nais.add(message.mn_id)
    assert len(nais) == 50
