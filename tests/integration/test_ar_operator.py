"""Issue 13, points 2, 3 and 5: hkp-ar as an operator runs it. The shipped systemd unit
passes systemd-analyze verify; the daemon signals readiness to a socket standing in for
systemd's notify socket; the shipped logrotate file rotates a running AR's log (SIGHUP);
`hkp-ar status` / `keys` over the control socket show its keys without key material;
the Prometheus endpoint's counters move with an exchange; a wrong RADIUS secret and a
stopped FreeRADIUS give different log lines, each saying what to check."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hkp_radius.constants import Status
from tests.ar_helpers import COA, NAI, build_hkreq, decode_hkresp, wall_stamp

from .ar_fixtures import (
    REPO,
    ArProcess,
    MobileNodeSocket,
    scrape,
    temp_dir,
    wait_until,
)

pytestmark = pytest.mark.integration
UNIT = REPO / "systemd" / "hkp-ar.service"
LOGROTATE = REPO / "systemd" / "hkp-ar.logrotate"
HKP_AR = Path(sys.executable).parent / "hkp-ar"


@pytest.fixture
def work() -> Iterator[Path]:
    path = temp_dir("hkp-ar-op-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ---- point 2: the service -----------------------------------------------------------


def test_the_shipped_unit_passes_systemd_analyze_verify(work: Path) -> None:
    assert shutil.which("systemd-analyze"), "scripts/install.sh installs systemd"
    text = UNIT.read_text()
    assert "Type=notify" in text and "ExecReload=/bin/kill -HUP $MAINPID" in text
    unit = work / "hkp-ar.service"  # the installed path of hkp-ar on this machine
    unit.write_text(text.replace("/usr/local/bin/hkp-ar", str(HKP_AR)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "hkp-ar" in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr
    # the check can fail: a unit whose ExecStart does not exist is refused
    unit.write_text(text.replace("/usr/local/bin/hkp-ar", str(work / "missing")))
    broken = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert broken.returncode != 0


def test_readiness_goes_to_the_notify_socket(
    start_ar: Callable[..., ArProcess], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sd_notify(3): one datagram to $NOTIFY_SOCKET with READY=1 once every socket is
    bound (the UDP port answers by then), STOPPING=1 when it stops."""
    path = work / "notify.sock"
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(path))
    systemd.settimeout(15.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        ar = start_ar()
        ready = systemd.recv(4096).decode().split("\n")
        assert "READY=1" in ready and f"MAINPID={ar.ready['pid']}" in ready
        mn = MobileNodeSocket(ar.udp_port)  # ready means serving
        try:
            reply = mn.exchange(build_hkreq(message_id=91, coa=COA, timestamp=wall_stamp()))
            assert decode_hkresp(reply).status == Status.SUCCESS
        finally:
            mn.close()
        assert ar.stop() == 0
        assert systemd.recv(4096) == b"STOPPING=1"
    finally:
        systemd.close()


def test_the_shipped_logrotate_file_rotates_a_running_ar(
    start_ar: Callable[..., ArProcess], work: Path
) -> None:
    """logrotate with the shipped snippet (paths and user moved to a temp dir, its
    postrotate's `systemctl reload` = SIGHUP to this AR): the AR writes the new file."""
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    log = work / "hkp-ar.log"
    ar = start_ar(sections={"log": {"file": log}})
    assert ar.process is not None
    text = (
        LOGROTATE.read_text()
        .replace("/var/log/hkp-ar", str(work))
        .replace("hkp-ar hkp-ar", "root root")
        .replace("systemctl reload hkp-ar.service", f"kill -HUP {ar.process.pid}")
    )
    assert text != LOGROTATE.read_text()
    config = work / "logrotate.conf"
    config.write_text(text)
    os.chmod(config, 0o644)
    result = subprocess.run(
        [logrotate, "-f", "-s", str(work / "state"), str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (work / "hkp-ar.log.1").exists()
    wait_until(lambda: log.exists() and "log-reopened" in log.read_text(), 10.0,
               "the reopened log file")  # fmt: skip
    assert ar.running


# ---- point 3: status, keys, metrics -------------------------------------------------


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ar_proxy", *args],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_status_keys_and_metrics_of_a_running_ar(
    start_ar: Callable[..., ArProcess], work: Path
) -> None:
    control = work / "control.sock"
    ar = start_ar(
        sections={"control": {"socket": control, "mode": "0660"},
                  "metrics": {"enabled": "yes", "listen": "127.0.0.1", "port": 0}}
    )  # fmt: skip
    assert stat.S_IMODE(control.stat().st_mode) == 0o660
    metrics = str(ar.ready["metrics"])
    before = scrape(metrics)
    assert before[("hkp_ar_keys", ())] == 0
    assert ("hkp_ar_exchanges_total", (("outcome", "issued"),)) not in before
    status = json.loads(admin("status", "-c", str(ar.config_path), "--json").stdout)
    assert status["keys"] == 0 and status["exchanges"] == {} and status["pid"] == ar.ready["pid"]

    mn = MobileNodeSocket(ar.udp_port)
    try:
        reply = decode_hkresp(
            mn.exchange(build_hkreq(message_id=92, coa=COA, timestamp=wall_stamp()))
        )
        assert reply.status == Status.SUCCESS
    finally:
        mn.close()
    ar.wait_event(event="exchange", message_id=92, outcome="issued")
    (stored,) = ar.wait_stored(reply.spi)

    status = json.loads(admin("status", "-s", str(control), "--json").stdout)
    assert status["keys"] == 1 and status["exchanges"] == {"issued": 1}
    assert status["radius"] == {"hks0": {"answered": 1}}
    keys = json.loads(admin("keys", "-c", str(ar.config_path), "--json").stdout)
    assert [(k["nai"], k["spi"], k["coa"]) for k in keys] == [
        (NAI.decode(), reply.spi, "2001:db8::100")
    ]
    assert 0 < keys[0]["remaining_s"] <= 3600
    text_status = admin("status", "-s", str(control))
    text_keys = admin("keys", "-s", str(control))
    assert text_status.returncode == 0 and "exchanges: issued 1" in text_status.stdout
    assert text_keys.returncode == 0 and str(reply.spi) in text_keys.stdout
    for output in (json.dumps(status), json.dumps(keys), text_status.stdout, text_keys.stdout):
        assert stored.hk.hex() not in output.lower() and "hk" not in json.loads(json.dumps(keys))[0]

    after = scrape(metrics)
    assert after[("hkp_ar_exchanges_total", (("outcome", "issued"),))] == 1
    assert after[("hkp_ar_exchange_seconds_count", ())] == 1
    assert after[("hkp_ar_keys", ())] == 1
    key = ("hkp_ar_radius_results_total", (("home_server", "hks0"), ("result", "answered")))
    assert after[key] == 1
    assert NAI.decode() not in str(after[("text", ())])  # no NAI in any label


def test_admin_commands_say_what_is_wrong(work: Path) -> None:
    missing = admin("status", "-s", str(work / "none.sock"))
    assert missing.returncode == 1 and "is hkp-ar running" in missing.stderr
    version = admin("--version")
    assert version.returncode == 0 and version.stdout.startswith("hkp-ar ")


# Point 5 (wrong secret vs stopped FreeRADIUS) is in test_ar_radius_timing.py, on a manual
# clock: the silence is established by moving time, not by waiting the budget out.


def test_check_warns_about_placeholder_and_short_secrets(work: Path) -> None:
    example = (REPO / "ar_proxy" / "hkp-ar.conf.example").read_text()
    config = work / "hkp-ar.conf"
    config.write_text(example.replace("/var/lib/hkp-ar/keys.sqlite", str(work / "k.sqlite")))
    result = admin("-c", str(config), "--check")
    assert result.returncode == 0, result.stderr
    assert "[home_server hks1] secret is a placeholder" in result.stderr
    config.write_text(config.read_text().replace("secret = change-me", "secret = short", 1))
    result = admin("-c", str(config), "--check")
    assert "[home_server hks1] secret is 5 octets" in result.stderr
    assert "short" not in result.stderr  # the secret itself is never printed
