"""Issue 11: RadSec (RFC 6614) between hkp-ar and a real FreeRADIUS RadSec listener
(sites-available/hkp_hks_tls), certificates from hkp_support.certs."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pyrad import packet as rpacket

from hkp_radius.constants import Status
from hkp_radius.mn import MNConfig
from hkp_support.freeradius import FreeRadiusInstance
from mn_client import LoadResult, UdpTransport, run_load
from tests.ar_helpers import (
    AR_ID,
    COA,
    HMK,
    HMK2,
    NAI,
    NAI2,
    build_hkreq,
    ip6,
    mn_nonce,
    verified_hkresp,
)

from .ar_fixtures import ArProcess, MobileNodeSocket, temp_dir, wait_until
from .radsec_fixtures import Capture, Pki, SilentTlsServer, radsec_instance, tls_settings

pytestmark = pytest.mark.integration


def _payloads(pcap: bytes, path: Path, proto: str, port: int) -> bytes:
    """The concatenated TCP or UDP payloads to or from `port` in a pcap."""
    from scapy.layers.inet import TCP, UDP
    from scapy.utils import rdpcap

    path.write_bytes(pcap)
    layer = TCP if proto == "tcp" else UDP
    data = b""
    for packet in rdpcap(str(path)):
        if layer in packet and port in (packet[layer].sport, packet[layer].dport):
            data += bytes(packet[layer].payload)
    return data


def test_exchange_over_radsec_shows_nothing_in_clear(
    start_tls_ar: Callable[..., ArProcess], radsec_hks: FreeRadiusInstance
) -> None:
    """Must show 1: MN -> AR -> HKS over RadSec -> AR -> MN; a capture of the AR-HKS
    traffic holds TLS records only: no NAI, no HKReq, nonce or HK in clear. The same
    capture of RADIUS over UDP holds them all, so the check can fail."""
    assert radsec_hks.radsec_port is not None
    work = temp_dir("hkp-radsec-cap-")
    tls_ar = start_tls_ar()
    udp_ar = start_tls_ar(proto="udp")  # the control: the same HKS over RADIUS/UDP
    capture = Capture(
        work / "capture.pcap",
        f"tcp port {radsec_hks.radsec_port} or udp port {radsec_hks.port}",
    )
    seen: dict[str, dict[str, bytes]] = {}
    try:
        for name, ar, message_id in (("tls", tls_ar, 21), ("udp", udp_ar, 22)):
            mn = MobileNodeSocket(ar.udp_port)
            try:
                request = build_hkreq(message_id=message_id, coa=COA)
                response, hk = verified_hkresp(mn.exchange(request), message_id=message_id)
            finally:
                mn.close()
            assert response.status == Status.SUCCESS and response.hks_nonce is not None
            ar.wait_event(event="exchange", outcome="issued", message_id=message_id)
            seen[name] = {
                "NAI": NAI,
                "HKReq": request,
                "MN nonce": mn_nonce(message_id),
                "HKS nonce": response.hks_nonce,
                "HK": hk,
            }
    finally:
        pcap = capture.stop()
    connected = tls_ar.wait_event(event="radsec", action="connected")
    assert connected["reason"].startswith("TLSv1.")
    stream = _payloads(pcap, work / "tls.pcap", "tcp", radsec_hks.radsec_port)
    assert len(stream) > 500, "no RadSec traffic captured"
    assert stream[0] == 0x16 and stream[1] == 0x03  # a TLS handshake record opens it
    for what, value in seen["tls"].items():
        assert value not in stream, f"{what} in clear on the RadSec connection"
    datagrams = _payloads(pcap, work / "udp.pcap", "udp", radsec_hks.port)
    for what, value in seen["udp"].items():
        if what == "HK":  # RADIUS/UDP hides the HK (RFC 2548 salt encryption), only that
            assert value not in datagrams
            continue
        assert value in datagrams, f"the control failed: {what} not seen over UDP"
    shutil.rmtree(work, ignore_errors=True)


def _no_key_issued(ar: ArProcess, hks: FreeRadiusInstance, message_id: int) -> None:
    """An HKReq the AR cannot take to the HKS: dropped (the MN retries), nothing stored,
    nothing sent to the MN, and the HKS issued nothing."""
    before = len(hks.log_text())
    mn = MobileNodeSocket(ar.udp_port)
    try:
        mn.send(build_hkreq(message_id=message_id, coa=COA))
        ar.wait_event(event="exchange", message_id=message_id, outcome="hks-silent")
        assert mn.pending() == []  # the AR logs an exchange after its answer, if any
    finally:
        mn.close()
    assert ar.stored_keys() == []
    assert "Accept '" not in hks.log_text()[before:]


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [
        ("other_ca", "a CA that is not in [tls] ca_file"),
        ("expired", "certificate has expired"),
        ("wrong_name", "Hostname mismatch"),
    ],
)
def test_ar_refuses_a_bad_server_certificate(
    certificate: str, reason: str, radsec_pki: Pki, start_tls_ar: Callable[..., ArProcess]
) -> None:
    """Must show 2: an HKS whose certificate is from another CA, expired, or for another
    name: the AR refuses the connection, logs why (one "radsec" line, action refused),
    and no key is issued."""
    path = temp_dir("hkp-radsec-bad-")
    with radsec_instance(path, getattr(radsec_pki, certificate)) as hks:
        assert hks.radsec_port is not None
        ar = start_tls_ar(servers=[(hks.address, hks.radsec_port)])
        _no_key_issued(ar, hks, message_id=30)
        refused = ar.wait_event(event="radsec", action="refused")
        assert reason in refused["reason"] and "certificate refused" in refused["reason"]
        assert refused["server"] == "hks0" and refused["address"].endswith(f":{hks.radsec_port}")
        assert not ar.events(name="radsec", since_start=True)[0]["action"] == "connected"
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(
    ("certificate", "hks_says"),
    [
        ("untrusted_client", "error 20 : unable to get local issuer certificate"),
        ("expired_client", "error 10 : certificate has expired"),
    ],
)
def test_hks_refuses_a_bad_client_certificate(
    certificate: str,
    hks_says: str,
    radsec_pki: Pki,
    radsec_hks: FreeRadiusInstance,
    start_tls_ar: Callable[..., ArProcess],
) -> None:
    """Must show 2: an AR whose client certificate is from a CA the HKS does not trust,
    or expired: FreeRADIUS refuses it in the handshake and says why in its log; the AR
    logs the refusal; no key is issued."""
    before = len(radsec_hks.log_text())
    client = getattr(radsec_pki, certificate)
    ar = start_tls_ar(tls=tls_settings(radsec_pki, client=client))
    _no_key_issued(ar, radsec_hks, message_id=31)
    refused = ar.wait_event(event="radsec", action="refused")
    assert "does not accept this AR's certificate" in refused["reason"], refused
    hks_log = radsec_hks.log_text()[before:]
    assert hks_says in hks_log, hks_log


def test_silent_connection_detected_by_status_server_fails_over(
    radsec_pki: Pki, radsec_hks: FreeRadiusInstance, start_tls_ar: Callable[..., ArProcess]
) -> None:
    """Must show 3: the realm's first home server completes the TLS handshake and then
    never answers. hkp-ar sends the request once (no retransmission over TCP), probes the
    silent connection with Status-Server, declares it silent, and fails over to the real
    HKS: the MN gets its key."""
    assert radsec_hks.radsec_port is not None
    silent = SilentTlsServer(radsec_pki.good.server)
    try:
        ar = start_tls_ar(
            servers=[("127.0.0.1", silent.port), (radsec_hks.address, radsec_hks.radsec_port)],
            response_window=0.3,
            retries=2,  # a request waits 3 windows; the watchdog needs 2
        )
        mn = MobileNodeSocket(ar.udp_port)
        try:
            reply = mn.exchange(build_hkreq(message_id=40, coa=COA))
        finally:
            mn.close()
        verified_hkresp(reply, message_id=40)
        issued = ar.wait_event(event="exchange", outcome="issued", message_id=40)
        line = ar.wait_event(event="radsec", action="silent", server="hks0")
        assert "no answer to Status-Server" in line["reason"]
        with silent.lock:
            codes = list(silent.codes)
        assert codes == [rpacket.AccessRequest, rpacket.StatusServer]  # once, then a probe
        assert issued["ms"] >= 2 * 0.3 * 1000 * 0.9  # it did wait out the watchdog
    finally:
        silent.close()


def test_hks_restarted_mid_load_ar_reconnects_and_retries_succeed(
    radsec_hks: FreeRadiusInstance, start_tls_ar: Callable[..., ArProcess]
) -> None:
    """Must show 3: MNs keep asking for keys while the HKS (FreeRADIUS) is restarted.
    The connection is lost, requests in flight then are dropped (the MNs retransmit),
    hkp-ar reconnects once the HKS is back, and every exchange ends with a key."""
    ar = start_tls_ar()
    total = 60
    configs = [MNConfig(nai=NAI, hmk=HMK), MNConfig(nai=NAI2, hmk=HMK2)]
    figures: list[LoadResult] = []
    failure: list[BaseException] = []

    def load() -> None:
        try:
            figures.append(
                run_load(
                    configs,
                    lambda: UdpTransport({AR_ID: ("::1", ar.udp_port)}),
                    AR_ID,
                    total,
                    2,  # one exchange per identity in flight (the load generator's rule)
                    [ip6("2001:db8::a1"), ip6("2001:db8::a2")],
                )
            )
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        wait_until(lambda: len(ar.events(name="exchange")) >= 10, 20.0, "10 exchanges")
        radsec_hks.restart()  # SIGTERM, wait for the exit, start, wait for Status-Server
    finally:
        thread.join(120)
    assert not failure, failure
    assert figures and figures[0].succeeded == total, figures[0].lines() if figures else None
    events = ar.events(name="radsec")
    actions = [event["action"] for event in events]
    assert actions.count("connected") >= 2 and "closed" in actions, actions
    outcomes = [event["outcome"] for event in ar.events(name="exchange")]
    assert "hks-silent" in outcomes  # some requests were lost to the restart ...
    assert figures[0].transmissions > total  # ... and their MNs' retransmissions succeeded
