"""What an operator reads off a running hkp-ar about RadSec and admission control:
RadSec failures in `hkp_ar_radius_results_total`, each RadSec connection's state in
`hkp-ar status`, and admission drops by reason as a Prometheus counter."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from ar_proxy.control import format_status, query
from hkp_support.freeradius import FreeRadiusInstance
from tests.ar_helpers import COA, build_hkreq, verified_hkresp

from .ar_fixtures import ArProcess, MobileNodeSocket, scrape, temp_dir, wait_until
from .radsec_fixtures import Pki, radsec_instance

pytestmark = pytest.mark.integration
METRICS = {"enabled": "yes", "listen": "127.0.0.1", "port": 0}


def sections_text(sections: dict[str, dict[str, object]]) -> str:
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())
        for name, values in sections.items()
    )


def test_radsec_failures_are_counted_and_status_shows_each_connection(
    radsec_pki: Pki,
    radsec_hks: FreeRadiusInstance,
    start_tls_ar: Callable[..., ArProcess],
    shared_dir: Path,
) -> None:
    """The realm's first RadSec server shows a certificate from another CA, the second
    is the real HKS: the MN gets its key over the second; the metric counts the first's
    failure (no_connection) and the second's answer; `hkp-ar status` shows the first
    failed, with why, and the second connected."""
    path = temp_dir("hkp-radsec-other-")
    control = shared_dir / "control.sock"
    try:
        with radsec_instance(path, radsec_pki.other_ca) as other:
            assert other.radsec_port is not None and radsec_hks.radsec_port is not None
            ar = start_tls_ar(
                servers=[(other.address, other.radsec_port),
                         (radsec_hks.address, radsec_hks.radsec_port)],
                extra=sections_text({"metrics": METRICS, "control": {"socket": control}}),
            )  # fmt: skip
            mn = MobileNodeSocket(ar.udp_port)
            try:
                verified_hkresp(mn.exchange(build_hkreq(message_id=61, coa=COA)), message_id=61)
            finally:
                mn.close()
            ar.wait_event(event="exchange", message_id=61, outcome="issued")
            samples = scrape(str(ar.ready["metrics"]))
            status = query(str(control), "status")
    finally:
        shutil.rmtree(path, ignore_errors=True)
    results = "hkp_ar_radius_results_total"
    assert samples[(results, (("home_server", "hks0"), ("result", "no_connection")))] == 1
    assert samples[(results, (("home_server", "hks1"), ("result", "answered")))] == 1
    assert status["radius"]["hks0"]["no_connection"] == 1
    first, second = status["radsec"]["hks0"], status["radsec"]["hks1"]
    assert first["state"] == "failed" and "certificate refused" in first["reason"], first
    assert first["address"] == f"{other.address}:{other.radsec_port}"
    assert second["state"] == "connected" and second["packets"] >= 1, second
    assert second["in_flight"] == 0
    text = format_status(status)
    assert "radsec hks0 (" in text and "): failed (certificate refused" in text, text
    assert "): connected, 0 in flight" in text, text


def test_admission_drops_are_prometheus_counters_by_reason(
    start_ar: Callable[..., ArProcess], shared_dir: Path
) -> None:
    """Datagrams over one source's allowance are dropped by admission control: the
    Prometheus counter hkp_ar_admission_dropped_total{reason="source rate"} counts them,
    as `hkp-ar status` does."""
    control = shared_dir / "control.sock"
    ar = start_ar(
        sections={
            # one token, refilled only after 1,000 s: exactly the first datagram passes
            "admission": {"source_rate": 0.001, "source_burst": 1},
            "metrics": METRICS,
            "control": {"socket": control},
        }
    )
    address = str(ar.ready["metrics"])
    key = ("hkp_ar_admission_dropped_total", (("reason", "source rate"),))
    assert key not in scrape(address)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sender:
        sender.connect(("::1", ar.udp_port))
        for _ in range(6):  # one within the burst, then five over it
            sender.send(b"\x00" * 8)
        # the counter may be read while the AR is still taking them in: wait for all five
        wait_until(lambda: scrape(address).get(key) == 5, 10.0, "five drops counted")
    status = query(str(control), "status")
    assert status["admission"]["dropped"]["source rate"] == 5
    assert scrape(address)[key] == 5  # nothing more came
