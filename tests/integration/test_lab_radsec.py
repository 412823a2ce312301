"""Issue 11: hkp-lab uses RadSec between its AR and HKS by default and says so;
--udp-radius is the old way, and says that."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from hkp_support.certs import KEY_MODE

from .mn_lab import needs_root_and_freeradius
from .test_lab import lab

pytestmark = [pytest.mark.integration, needs_root_and_freeradius]


@pytest.mark.parametrize(
    ("args", "printed"),
    [
        ((), "AR-HKS: RadSec (RADIUS over TLS, RFC 6614), certificates of a lab CA"),
        (("--udp-radius",), "AR-HKS: RADIUS over UDP (--udp-radius)"),
    ],
)
def test_lab_up_says_which_radius_and_its_ar_uses_it(args: tuple[str, ...], printed: str) -> None:
    directory = Path(tempfile.mkdtemp(prefix="hkp-labtls-", dir="/tmp"))
    try:
        up = lab("up", "--dir", str(directory), *args)
        assert up.returncode == 0, up.stdout + up.stderr
        assert printed in up.stderr
        hks = json.loads(up.stdout)["hks"]
        config = (directory / "ar" / "hkp-ar.conf").read_text()
        if args:
            assert hks["radius"] == "udp" and "proto = tls" not in config
            assert not (directory / "pki").exists()
        else:
            assert hks["radius"] == "radsec" and "proto = tls" in config
            assert f"port = {hks['radsec_port']}" in config and "[tls]" in config
            for key in (directory / "pki").glob("*.key"):  # CA, HKS and AR keys
                assert key.stat().st_mode & 0o777 == KEY_MODE, key
            # the AR's TLS connection is up once it has asked (the lab's own MN run
            # is tests/integration/test_lab.py::test_run_prints_an_account_and_exits_0)
    finally:
        down = lab("down", "--dir", str(directory))
        assert down.returncode == 0, down.stderr
        shutil.rmtree(directory, ignore_errors=True)
