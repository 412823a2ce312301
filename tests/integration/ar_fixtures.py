"""Fixtures for the AR tests: a real FreeRADIUS HKS (freeradius_module.instance) and
real `hkp-ar` processes (`python3 -m ar_proxy -c CONFIG`), plus an MN's UDP socket.

    ar_hks        module-scoped FreeRadiusInstance knowing NAI/HMK and NAI2/HMK2
    start_ar      factory: start_ar(**settings) -> ArProcess (stopped at teardown)
    hkp_ar        an ArProcess with default settings in front of ar_hks
    hks_and_ar    (FreeRadiusInstance, ArProcess): their endpoints for MN/lab tests

Waits are on conditions with deadlines: the "ready" log line, an "exchange" line.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ar_proxy import keystore
from hkp_radius.ar.keys import StoredKey
from hkp_support.freeradius import FREERADIUS, FreeRadiusInstance
from hkp_support.process import terminate
from tests.ar_helpers import HMK, HMK2, NAI, NAI2

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 15.0
EXCHANGE_TIMEOUT = 10.0
POLL = 0.02  # polling interval of deadline-bound waits
AR_SECRET = b"hkp-test-secret"


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """hkp-ar's /metrics at `address`: {(sample name, sorted labels): value}, and the
    whole text under ("text", ())."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    samples[("text", ())] = text  # type: ignore[assignment]
    return samples


def require_root_and_freeradius() -> None:
    if os.geteuid() != 0:
        pytest.fail("the AR integration tests need root (CI runs them as root)")
    if not os.path.exists(FREERADIUS):
        pytest.fail(f"{FREERADIUS} is missing: run scripts/install.sh")


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)  # polling interval of a deadline-bound wait


class Blackhole:
    """A UDP socket that takes RADIUS packets and never answers: a dead home server
    that still counts what it was sent."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    async def receive(self) -> bytes:
        """The next packet sent here, awaited on the running event loop."""
        return await asyncio.get_running_loop().sock_recv(self.sock, 4096)

    def drain(self) -> int:
        count = 0
        while True:
            try:
                self.sock.recv(4096)
            except BlockingIOError:
                return count
            count += 1

    def close(self) -> None:
        self.sock.close()


def config_text(
    key_store: Path,
    servers: list[tuple[str, int]],
    sections: dict[str, dict[str, Any]] | None = None,
    secret: bytes = AR_SECRET,
    response_window: float = 0.5,
    retries: int = 1,
) -> str:
    chosen: dict[str, dict[str, Any]] = {
        "ar": {"address": "2001:db8::1", "key_store": key_store, "nas_identifier": "ar-test"},
        "udp": {"enabled": "yes", "listen": "::1", "port": 0},
        "coa_validation": {"mode": "permissive"},
        "log": {"level": "debug"},
    }
    for name, values in (sections or {}).items():
        chosen.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in chosen.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {value}" for key, value in values.items()]
    names = []
    for index, (host, port) in enumerate(servers):
        names.append(f"hks{index}")
        lines += [
            f"[home_server hks{index}]",
            f"ipaddr = {host}",
            f"port = {port}",
            f"secret = {secret.decode()}",
            f"response_window = {response_window}",
            f"retries = {retries}",
        ]
    lines += ["[realm example.net]", f"home_servers = {' '.join(names)}"]
    return "\n".join(lines) + "\n"


class ArProcess:
    """One `hkp-ar` subprocess, its JSON log and its key store."""

    def __init__(
        self, work: Path, config: str, netns: str | None = None, log_file: Path | None = None
    ) -> None:
        self.work = work
        self.config_path = work / "hkp-ar.conf"
        self.config_path.write_text(config)
        # With [log] file the JSON lines go there and standard error to hkp-ar.out.
        self.log_path = log_file or work / "hkp-ar.log"
        self.output_path = work / "hkp-ar.out" if log_file else self.log_path
        self.key_store = work / "keys.sqlite"
        self.netns = netns
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self._offset = 0

    def start(self) -> ArProcess:
        self._log = open(self.output_path, "ab")
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ar_proxy", "-c", str(self.config_path)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.ready = wait_until(self._ready_line, READY_TIMEOUT, "hkp-ar's ready line")
        return self

    def _ready_line(self) -> dict[str, Any] | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"hkp-ar exited with {self.process.returncode}:\n{self.log_text()}"
            )
        for event in self.events(since_start=True):
            if event.get("event") == "ready":
                return event
        return None

    @property
    def udp_port(self) -> int:
        return int(str(self.ready["udp"]).rpartition(":")[2])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.process is None:
            return 0
        code = terminate(self.process)
        self.process = None
        self._log.close()
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, since_start: bool = False, name: str | None = None) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        text = self.log_path.read_bytes()[self._offset if since_start else 0 :].decode(
            errors="replace"
        )
        found = []
        for line in text.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def wait_event(self, timeout: float = EXCHANGE_TIMEOUT, **match: Any) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for event in self.events(since_start=True):
                if all(event.get(k) == v for k, v in match.items()):
                    return event
            return None

        return wait_until(find, timeout, f"a log line matching {match}")  # type: ignore[no-any-return]

    def wait_stored(self, spi: int, coa: bytes | str | None = "any") -> list[StoredKey]:
        """Wait until the key store holds `spi` (bound to `coa` unless "any")."""

        def find() -> list[StoredKey]:
            return [
                k for k in self.stored_keys()
                if k.spi == spi and (coa == "any" or k.care_of_address == coa)
            ]  # fmt: skip

        return wait_until(find, EXCHANGE_TIMEOUT, f"SPI {spi} in the key store")  # type: ignore[no-any-return]

    def stored_keys(self) -> list[StoredKey]:
        if not self.key_store.exists():
            return []
        with sqlite3.connect(self.key_store) as db:
            rows = db.execute(keystore.SELECT).fetchall()
        return [keystore.key_from_row(tuple(row)) for row in rows]


class MobileNodeSocket:
    """The MN's end of the UDP encapsulation (P9)."""

    def __init__(self, port: int, host: str = "::1") -> None:
        self.address = (host, port)
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.bind(("::1", 0))

    def send(self, wire: bytes) -> None:
        self.sock.sendto(wire, self.address)

    def receive(self, timeout: float = EXCHANGE_TIMEOUT) -> bytes:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096)

    def exchange(self, wire: bytes, timeout: float = EXCHANGE_TIMEOUT) -> bytes:
        self.send(wire)
        return self.receive(timeout)

    def pending(self) -> list[bytes]:
        """Whatever has arrived, without waiting."""
        self.sock.setblocking(False)
        found = []
        try:
            while True:
                found.append(self.sock.recv(4096))
        except BlockingIOError:
            return found
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture(scope="module")
def ar_hks() -> Iterator[FreeRadiusInstance]:
    require_root_and_freeradius()
    path = temp_dir("hkp-ar-hks-")
    instance = FreeRadiusInstance(
        path, secret=AR_SECRET, users={NAI.decode(): HMK, NAI2.decode(): HMK2}
    )
    with instance:
        yield instance
    shutil.rmtree(path, ignore_errors=True)


class StartedArs:
    """What an AR factory fixture started: its hkp-ar processes and the work dirs it
    made, all stopped and removed at teardown (`close`)."""

    def __init__(self) -> None:
        self.processes: list[ArProcess] = []
        self.dirs: list[Path] = []

    def work_dir(self, prefix: str) -> Path:
        path = temp_dir(prefix)
        self.dirs.append(path)
        return path

    def start(self, process: ArProcess) -> ArProcess:
        self.processes.append(process)
        return process.start()

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_ar(ar_hks: FreeRadiusInstance) -> Iterator[Callable[..., ArProcess]]:
    ars = StartedArs()

    def start(
        servers: list[tuple[str, int]] | None = None,
        sections: dict[str, dict[str, Any]] | None = None,
        work: Path | None = None,
        **kw: Any,
    ) -> ArProcess:
        if work is None:
            work = ars.work_dir("hkp-ar-")
        targets = servers if servers is not None else [(ar_hks.address, ar_hks.port)]
        log_file = (sections or {}).get("log", {}).get("file")
        process = ArProcess(
            work,
            config_text(work / "keys.sqlite", targets, sections, **kw),
            log_file=Path(log_file) if log_file else None,
        )
        return ars.start(process)

    yield start
    ars.close()


@pytest.fixture
def hkp_ar(start_ar: Callable[..., ArProcess]) -> ArProcess:
    return start_ar()


@pytest.fixture
def hks_and_ar(
    ar_hks: FreeRadiusInstance, hkp_ar: ArProcess
) -> tuple[FreeRadiusInstance, ArProcess]:
    """For MN and lab tests: the HKS and an AR in front of it (UDP on [::1]:hkp_ar.udp_port,
    AR-ID 2001:db8::1, users NAI/HMK and NAI2/HMK2 of tests.ar_helpers)."""
    return ar_hks, hkp_ar


@pytest.fixture
def mn_socket(hkp_ar: ArProcess) -> Iterator[MobileNodeSocket]:
    sock = MobileNodeSocket(hkp_ar.udp_port)
    yield sock
    sock.close()
