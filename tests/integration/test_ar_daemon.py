"""hkp-ar as an operator runs it (issue 16 must-show 6): a taken UDP port stops the
second daemon with exit 3 and a line naming the address and port, the first keeps
serving; SIGHUP reopens the log file (logrotate) and the daemon keeps serving."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from hkp_radius.constants import Status
from tests.ar_helpers import COA, COA2, HMK2, NAI2, build_hkreq, decode_hkresp, wall_stamp

from .ar_fixtures import REPO, ArProcess, MobileNodeSocket, config_text, temp_dir, wait_until

pytestmark = pytest.mark.integration


def test_second_ar_on_a_taken_port_exits_3_and_the_first_keeps_serving(
    start_ar: Callable[..., ArProcess],
) -> None:
    """The port is taken: no SO_REUSEADDR, so no sharing of the first one's traffic."""
    first = start_ar()
    port = first.udp_port
    work = temp_dir("hkp-ar-second-")
    config = work / "hkp-ar.conf"
    config.write_text(
        config_text(work / "keys.sqlite", [("127.0.0.1", 1812)], {"udp": {"port": port}})
    )
    second = subprocess.run(
        [sys.executable, "-m", "ar_proxy", "-c", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert second.returncode == 3, second.stderr
    assert f"[::1]:{port}" in second.stderr and "startup-failed" in second.stderr
    assert "another process holds it" in second.stderr and "Traceback" not in second.stderr
    assert first.running
    mn = MobileNodeSocket(port)
    try:
        reply = mn.exchange(build_hkreq(message_id=81, coa=COA, timestamp=wall_stamp()))
        assert decode_hkresp(reply).status == Status.SUCCESS
    finally:
        mn.close()


def test_sighup_reopens_the_log_file_and_the_daemon_keeps_serving(
    start_ar: Callable[..., ArProcess],
) -> None:
    """docs/ar.md "Log rotation": move the file, send SIGHUP, the new file gets the lines."""
    work = temp_dir("hkp-ar-hup-")
    log = work / "hkp-ar.json"
    ar = start_ar(sections={"log": {"file": log}})
    rotated = work / "hkp-ar.json.1"
    log.rename(rotated)  # logrotate moves the file ...
    assert ar.process is not None
    ar.process.send_signal(signal.SIGHUP)  # ... then signals the daemon
    wait_until(lambda: log.exists() and "log-reopened" in log.read_text(), 10.0,
               "the reopened log file")  # fmt: skip
    ar._offset = 0  # events() reads the new file from its start
    mn = MobileNodeSocket(ar.udp_port)
    try:
        wire = build_hkreq(message_id=82, nai=NAI2, hmk=HMK2, coa=COA2, timestamp=wall_stamp())
        assert decode_hkresp(mn.exchange(wire)).status == Status.SUCCESS
    finally:
        mn.close()
    ar.wait_event(event="exchange", message_id=82, outcome="issued")
    assert ar.running and '"event": "ready"' in rotated.read_text()
    assert 'message_id": 82' not in rotated.read_text()  # new lines go to the new file
    assert ar.stop() == 0
    assert '"event": "stopped"' in log.read_text()
