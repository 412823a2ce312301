"""Issue 10, Must show 4 (whole system): `hkp-lab up --hks 2 --store postgresql` (two
FreeRADIUS HKS on one PostgreSQL, an hkp-ar pooling them), `hkp-mn load` through it, one
HKS killed under load: no exchange fails (each ends within the MN's own retry budget),
the AR marks the server dead, probes it with Status-Server once it runs again, gives it
no request until the probes are answered, and then requests again. Asserted from the
AR's log lines and per-server counters, and the exit status of hkp-mn."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hkp_lab.failover import ar_events
from hkp_support.freeradius import FREERADIUS, status_server, terminate

from .ar_fixtures import require_root_and_freeradius, temp_dir, wait_until

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
STEP = 60.0  # deadline of each wait; nothing is timed by it
KILL_AFTER = 80  # exchanges the AR has logged before the kill


def events(log: Path, name: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in ar_events(log, name) if all(e.get(k) == v for k, v in match.items())]


def load(directory: Path, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "hkp-mn"), "load", "--lab", "--lab-dir", str(directory),
         "-n", str(count), "-c", "16", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finished(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=STEP)
    assert process.returncode == 0, out + err  # hkp-mn load: 0 only when none failed
    figures: dict[str, Any] = json.loads(out)
    return figures


def test_one_hks_killed_under_load_costs_no_exchange_and_is_probed_back() -> None:
    require_root_and_freeradius()
    directory = temp_dir("hkp-lab-pool-")
    revived: subprocess.Popen[bytes] | None = None
    try:
        up = subprocess.run(
            [str(BIN / "hkp-lab"), "up", "--hks", "2", "--store", "postgresql",
             "--dir", str(directory)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        endpoints = json.loads(up.stdout)
        assert endpoints["store"] == "postgresql"
        first, victim = endpoints["hks_servers"]
        ar_log = Path(endpoints["logs"]["ar"])

        running = load(directory, 400)
        wait_until(
            lambda: len(events(ar_log, "exchange")) >= KILL_AFTER or running.poll() is not None,
            STEP, "the AR's exchange lines",
        )  # fmt: skip
        assert running.poll() is None, "the load ended before the kill"
        os.kill(victim["pid"], signal.SIGKILL)
        figures = finished(running)
        assert figures["failed"] == 0 and figures["succeeded"] == 400

        [dead] = events(ar_log, "home_server_state", home_server=victim["name"], state="dead")
        assert dead["requests"] > 0  # load-balance had given it requests before the kill
        assert "probed with Status-Server" in dead["message"]

        # The same FreeRADIUS again, on its port (its raddb is still in the lab's dir).
        raddb = Path(victim["log"]).parent.parent / "raddb"
        revived = subprocess.Popen(
            [FREERADIUS, "-f", "-d", str(raddb)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        secret = endpoints["hks"]["secret"].encode()
        wait_until(lambda: status_server("127.0.0.1", victim["port"], secret), STEP, "FreeRADIUS")
        [alive] = wait_until(
            lambda: events(ar_log, "home_server_state", home_server=victim["name"], state="alive"),
            STEP, "the AR to mark the server alive",
        )  # fmt: skip
        assert "Status-Server answer" in alive["why"]
        assert alive["probe_answers"] >= 2  # num_answers_to_alive of the lab's pool
        assert alive["requests"] == dead["requests"]  # nothing but probes while dead

        accepts = Path(victim["log"]).read_text(errors="replace").count("Accept")
        again = finished(load(directory, 60))
        assert again["failed"] == 0
        assert Path(victim["log"]).read_text(errors="replace").count("Accept") > accepts
    finally:
        subprocess.run(
            [str(BIN / "hkp-lab"), "down", "--dir", str(directory)],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        if revived is not None:
            terminate(revived)
    counters = {e["home_server"]: e for e in events(ar_log, "home_server_counters")}
    assert counters[victim["name"]]["requests"] > alive["requests"]  # traffic again
    assert counters[first["name"]]["unanswered"] == 0
    shutil.rmtree(directory, ignore_errors=True)
