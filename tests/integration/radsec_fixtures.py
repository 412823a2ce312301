"""Fixtures for the RadSec tests (issue 11): a lab PKI, a real FreeRADIUS with the
hkp_hks_tls listener, hkp-ar processes with `proto = tls` home servers, a TLS server that
accepts and never answers, and a tshark capture synchronised on its own output.

    radsec_pki     module-scoped: RadSecCerts plus broken certificates (other CA, expired,
                   wrong name, untrusted client)
    radsec_hks     module-scoped FreeRadiusInstance with RadSec on radsec_port, UDP on port
    start_tls_ar   factory: start_tls_ar(servers=[...], tls={...}) -> ArProcess
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from hkp_support.certs import CertFiles, LabPKI, RadSecCerts, make_radsec_certs
from hkp_support.freeradius import FreeRadiusInstance
from tests.ar_helpers import HMK, HMK2, NAI, NAI2

from .ar_fixtures import ArProcess, StartedArs, require_root_and_freeradius, temp_dir

CAPTURE_TIMEOUT = 15.0
UDP_SECRET = b"hkp-test-secret"  # the instances' UDP listener, for comparisons
MARK_TRIES = 20  # marker datagrams before giving up on tshark
MARK_WAIT = 0.5  # seconds for each marker's line before the next


@dataclass(frozen=True)
class Pki:
    good: RadSecCerts
    other_ca: CertFiles  # a server certificate for the right name from another CA
    expired: CertFiles  # from the right CA, for the right name, expired
    wrong_name: CertFiles  # from the right CA, for another name
    untrusted_client: CertFiles  # a client certificate from another CA
    expired_client: CertFiles  # a client certificate from the right CA, expired
    directory: Path


@pytest.fixture(scope="module")
def radsec_pki() -> Iterator[Pki]:
    directory = temp_dir("hkp-radsec-pki-")
    good = make_radsec_certs(directory / "lab")
    lab = LabPKI.load(directory / "lab")
    other = LabPKI.create(directory / "other", name="some other CA")
    name = good.server_name
    addresses = ["127.0.0.1"]
    yield Pki(
        good=good,
        other_ca=other.issue("hks-other-ca", dns_names=[name], ip_addresses=addresses),
        expired=lab.issue("hks-expired", dns_names=[name], ip_addresses=addresses, expired=True),
        wrong_name=lab.issue("hks-wrong-name", dns_names=["elsewhere.example"]),
        untrusted_client=other.issue("ar-untrusted", client=True),
        expired_client=lab.issue("ar-expired", client=True, expired=True),
        directory=directory,
    )
    shutil.rmtree(directory, ignore_errors=True)


def radsec_instance(path: Path, server: CertFiles, **kw: Any) -> FreeRadiusInstance:
    return FreeRadiusInstance(
        path,
        secret=UDP_SECRET,
        users={NAI.decode(): HMK, NAI2.decode(): HMK2},
        radsec=server,
        **kw,
    )


@pytest.fixture(scope="module")
def radsec_hks(radsec_pki: Pki) -> Iterator[FreeRadiusInstance]:
    require_root_and_freeradius()
    path = temp_dir("hkp-radsec-hks-")
    with radsec_instance(path, radsec_pki.good.server) as instance:
        yield instance
    shutil.rmtree(path, ignore_errors=True)


def tls_config_text(
    key_store: Path,
    servers: list[tuple[str, int]],
    tls: dict[str, Any],
    response_window: float = 0.5,
    retries: int = 1,
    extra: str = "",
    proto: str = "tls",
) -> str:
    lines = [
        "[ar]", "address = 2001:db8::1", f"key_store = {key_store}", "nas_identifier = ar-tls",
        "[udp]", "enabled = yes", "listen = ::1", "port = 0",
        "[coa_validation]", "mode = permissive",
        "[log]", "level = debug",
        "[tls]", *(f"{key} = {value}" for key, value in tls.items()),
    ]  # fmt: skip
    names = []
    for index, (host, port) in enumerate(servers):
        names.append(f"hks{index}")
        lines += [
            f"[home_server hks{index}]", f"proto = {proto}", f"ipaddr = {host}",
            f"port = {port}", f"response_window = {response_window}", f"retries = {retries}",
        ]  # fmt: skip
        if proto == "udp":
            lines.append(f"secret = {UDP_SECRET.decode()}")
    lines += ["[realm example.net]", f"home_servers = {' '.join(names)}"]
    return "\n".join(lines) + "\n" + extra


def tls_settings(pki: Pki, client: CertFiles | None = None, **changes: Any) -> dict[str, Any]:
    chosen = client or pki.good.client
    settings: dict[str, Any] = {
        "ca_file": pki.good.server.ca,
        "certificate_file": chosen.certificate,
        "private_key_file": chosen.key,
        "server_name": pki.good.server_name,
    }
    settings.update(changes)
    return settings


@pytest.fixture
def start_tls_ar(
    radsec_hks: FreeRadiusInstance, radsec_pki: Pki
) -> Iterator[Callable[..., ArProcess]]:
    ars = StartedArs()

    def start(
        servers: list[tuple[str, int]] | None = None,
        tls: dict[str, Any] | None = None,
        **kw: Any,
    ) -> ArProcess:
        work = ars.work_dir("hkp-ar-tls-")
        assert radsec_hks.radsec_port is not None
        port = radsec_hks.port if kw.get("proto") == "udp" else radsec_hks.radsec_port
        targets = servers if servers is not None else [(radsec_hks.address, port)]
        text = tls_config_text(
            work / "keys.sqlite",
            targets,
            tls if tls is not None else tls_settings(radsec_pki),
            **kw,
        )
        return ars.start(ArProcess(work, text))

    yield start
    ars.close()


class SilentTlsServer:
    """A TLS server (the lab's HKS certificate) that completes handshakes, reads what it
    is sent and never answers: a home server that has hung."""

    def __init__(self, server: CertFiles) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(server.certificate, server.key)
        self.context.load_verify_locations(server.ca)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.codes: list[int] = []  # the RADIUS Code of each packet received
        self.lock = threading.Lock()
        self.accepted = threading.Event()
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            self._connections.append(raw)
            thread = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                self._connections.append(tls)  # wrap_socket took over raw's descriptor
                self.accepted.set()
                buffer = b""
                while True:
                    data = tls.recv(4096)
                    if not data:
                        return
                    buffer += data
                    while len(buffer) >= 4 and len(buffer) >= int.from_bytes(buffer[2:4]):
                        length = max(4, int.from_bytes(buffer[2:4]))
                        with self.lock:
                            self.codes.append(buffer[0])
                        buffer = buffer[length:]
        except (OSError, ValueError):
            return

    def close(self) -> None:
        self._stopping = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        except OSError:
            pass
        self.listener.close()
        for raw in self._connections:
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raw.close()
        self._thread.join(5)
        for thread in self._threads:
            thread.join(5)


class Capture:
    """tshark on lo for `capture_filter`, into a pcap, printing a line per packet (-P).
    Synchronised on tshark's own output, never on time: a marker datagram (to a port of
    our own, in the filter) is sent and its line awaited at the start (the capture is
    live) and at the stop (every earlier packet has been read from the ring); then
    SIGINT and tshark's clean exit (the pcap is complete)."""

    def __init__(self, path: Path, capture_filter: str) -> None:
        self.path = path
        self.marker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.marker.bind(("127.0.0.1", 0))
        self.marker_port: int = self.marker.getsockname()[1]
        self.process = subprocess.Popen(
            ["tshark", "-l", "-P", "-i", "lo", "-w", str(path), "-F", "pcap",
             "-f", f"({capture_filter}) or udp port {self.marker_port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors)),
        ]
        for reader in self._readers:
            reader.start()
        self._wait(lambda: any("Capturing on" in line for line in self.errors), "capturing")
        self.mark()

    def _read(self, stream: IO[bytes] | None, into: list[str]) -> None:
        assert stream is not None
        for line in iter(stream.readline, b""):
            with self._changed:
                into.append(line.decode(errors="replace"))
                self._changed.notify_all()
        with self._changed:
            into.append("")  # end of stream
            self._changed.notify_all()

    def _wait(
        self, condition: Callable[[], bool], what: str, timeout: float = CAPTURE_TIMEOUT
    ) -> bool:
        with self._changed:
            if self._changed.wait_for(condition, timeout):
                return True
        if what:
            self.process.kill()
            raise AssertionError(f"tshark: no {what}: {''.join(self.errors)}")
        return False

    def _marks(self) -> int:
        pattern = f"{self.marker_port} → {self.marker_port} "
        return sum(1 for line in self.lines if pattern in line)

    def mark(self) -> None:
        """A marker datagram, and wait until tshark has printed it (resent a few times:
        the first may precede the moment the filter is attached)."""
        seen = self._marks()
        for _ in range(MARK_TRIES):
            self.marker.sendto(b"capture-marker", ("127.0.0.1", self.marker_port))
            if self._wait(lambda: self._marks() > seen, "", MARK_WAIT):
                return
        self._wait(lambda: self._marks() > seen, "marker line")

    def stop(self) -> bytes:
        """Mark, SIGINT, wait for tshark's exit (status 0); the pcap's bytes."""
        self.mark()
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(CAPTURE_TIMEOUT)
        for reader in self._readers:
            reader.join(CAPTURE_TIMEOUT)
        self.marker.close()
        assert code == 0, "".join(self.errors)
        return self.path.read_bytes()
