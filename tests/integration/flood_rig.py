"""The flood rig of issue 15 (tests and benchmarks/flood.py): a network namespace whose
loopback holds every address, a real FreeRADIUS HKS on the host's 127.0.0.1, a real
`hkp-ar` whose UDP socket lives in the namespace ([ar] netns), `hkp-flood` subprocesses
and MNs (the mn_client library) sending from chosen addresses inside the namespace.

Addresses (documented in docs/flood.md): the AR 2001:db8:15::1; the flood's /64
2001:db8:15:1::/64 (::1 ... ::100); the legitimate MN that holds a key sends from
2001:db8:15:3::1, the new MN from 2001:db8:15:2::1: three /64s, three receive queues
of the AR (ar_proxy.steering.queue_of: 0, 2 and 3 of 16; the tests check it).
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ar_proxy.control import query
from hkp_flood import LoopbackNamespace, inside
from hkp_radius.mn import KeyEstablished, Kind, MNConfig, MobileNode
from hkp_support.freeradius import FreeRadiusInstance
from hkp_support.process import terminate
from mn_client import UdpTransport, run_exchange, starter, system_random

REPO = Path(__file__).resolve().parents[2]
AR_IP = "2001:db8:15::1"
FLOOD_PREFIX = "2001:db8:15:1::/64"
FLOOD_SOURCES = 256
KNOWN_IP = "2001:db8:15:3::1"
NEW_IP = "2001:db8:15:2::1"  # another /64
SECRET = b"hkp-flood-secret"
# The flood runs unthrottled but at the lowest CPU priority: on loopback its sending
# (and the kernel's delivery, done in the sender's context) would take the CPU that a
# remote attacker's flood never takes from the AR (docs/decisions.md).
FLOOD_NICE = 19
KNOWN_NAI, KNOWN_HMK = b"known@example.net", bytes(range(64))
NEW_NAI, NEW_HMK = b"new@example.net", bytes(range(1, 65))
GREEDY_NAI, GREEDY_HMK = b"greedy@example.net", bytes(range(2, 66))
OTHER_NAI, OTHER_HMK = b"other@example.net", bytes(range(3, 67))
USERS = {
    n.decode(): h
    for n, h in ((KNOWN_NAI, KNOWN_HMK), (NEW_NAI, NEW_HMK), (GREEDY_NAI, GREEDY_HMK),
                 (OTHER_NAI, OTHER_HMK))
}  # fmt: skip


def addresses() -> list[str]:
    network = ipaddress.IPv6Network(FLOOD_PREFIX)
    flood = [str(network.network_address + 1 + i) for i in range(FLOOD_SOURCES)]
    return [AR_IP, KNOWN_IP, NEW_IP, "2001:db8:15:2::2", "2001:db8:15:3::2", *flood]


def ar_config(work: Path, hks: FreeRadiusInstance, namespace: str, extra: str = "") -> str:
    return f"""[ar]
address = {AR_IP}
key_store = {work / "keys.sqlite"}
nas_identifier = ar-flood
netns = {namespace}
[udp]
listen = {AR_IP}
port = 0
[coa_validation]
mode = permissive
[log]
level = info
file = {work / "hkp-ar.log"}
[control]
socket = {work / "control.sock"}
{extra}
[home_server hks]
ipaddr = {hks.address}
port = {hks.port}
secret = {SECRET.decode()}
response_window = 1
retries = 1
[realm example.net]
home_servers = hks
"""


class Ar:
    """One hkp-ar process of the rig."""

    def __init__(self, work: Path, config: str) -> None:
        self.work = work
        (work / "hkp-ar.conf").write_text(config)
        self.log = work / "hkp-ar.log"
        self.out = open(work / "hkp-ar.out", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ar_proxy", "-c", str(work / "hkp-ar.conf")],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.port = int(str(self.wait_event("ready")["udp"]).rpartition(":")[2])

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        for line in text.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                found.append(event)
        return found

    def lines(self) -> int:
        return len(self.log.read_text(errors="replace").splitlines()) if self.log.exists() else 0

    def wait_event(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(name)
            if found:
                return found[-1]
            if self.process.poll() is not None:
                raise AssertionError(f"hkp-ar exited: {(self.work / 'hkp-ar.out').read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {name!r} line from hkp-ar in {timeout} s")
            time.sleep(0.02)  # polling interval of a deadline-bound wait

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = query(str(self.work / "control.sock"), "status")
        return answer

    def keys(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = query(str(self.work / "control.sock"), "keys")
        return answer

    def stop(self) -> None:
        terminate(self.process, 15)
        self.out.close()


@dataclass
class Rig:
    work: Path
    namespace: str
    hks: FreeRadiusInstance
    ar: Ar | None = None
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_ar(self, extra: str = "") -> Ar:
        self.ar = Ar(self.work, ar_config(self.work, self.hks, self.namespace, extra))
        return self.ar

    def mn(self, nai: bytes, hmk: bytes, source: str) -> MobileClient:
        assert self.ar is not None
        return MobileClient(self.namespace, nai, hmk, source, self.ar.port)

    def flood(self, duration: float, rate: str, sources: int, pool: int = 4096) -> Flood:
        assert self.ar is not None
        command = [
            sys.executable, "-m", "hkp_flood", f"[{AR_IP}]:{self.ar.port}",
            "--netns", self.namespace, "--duration", str(duration), "--rate", rate,
            "--source-prefix", FLOOD_PREFIX, "--sources", str(sources), "--pool", str(pool),
            "--nice", str(FLOOD_NICE),
        ]  # fmt: skip
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE)
        self.started.append(process)
        return Flood(process)


class Flood:
    """A running hkp-flood: `wait_started` returns once it sends (its first line)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def wait_started(self) -> None:
        assert self.process.stdout is not None
        line = json.loads(self.process.stdout.readline() or b"{}")
        assert line.get("event") == "started", line

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def figures(self) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, out
        figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return figures


class MobileClient:
    """A legitimate MN: one identity, one UDP socket bound to its address in the
    namespace; `request()` runs one full exchange and returns its figures."""

    def __init__(self, namespace: str, nai: bytes, hmk: bytes, source: str, port: int) -> None:
        self.ar_id = ipaddress.IPv6Address(AR_IP).packed
        self.node = MobileNode(MNConfig(nai=nai, hmk=hmk), system_random)
        with inside(namespace):
            self.transport = UdpTransport({self.ar_id: (AR_IP, port)}, source=source)
        self.coa = ipaddress.IPv6Address(source).packed
        self.latencies: list[float] = []  # the MN's own monotonic times, successes only
        self.failures = 0

    def request(self) -> bool:
        result = run_exchange(
            self.node, self.transport, starter(self.node, Kind.REQUEST, self.ar_id, self.coa)
        )
        final = result.final
        if isinstance(final, KeyEstablished):
            self.latencies.append(final.elapsed)
            return True
        self.failures += 1
        return False

    @property
    def total(self) -> int:
        return len(self.latencies) + self.failures

    @property
    def success_rate(self) -> float:
        return len(self.latencies) / self.total if self.total else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("inf")

    def close(self) -> None:
        self.transport.close()


def make_rig(work: Path) -> Iterator[Rig]:
    """A namespace, an HKS (the shipped summary interval) and the rig; all removed."""
    namespace = LoopbackNamespace(addresses())
    hks = FreeRadiusInstance(work / "hks", secret=SECRET, users=USERS)
    rig = Rig(work, namespace.name, hks)
    with namespace:
        try:
            hks.start()
            yield rig
        finally:
            for process in rig.started:
                if process.poll() is None:
                    process.kill()
                process.wait(10)
            if rig.ar is not None:
                rig.ar.stop()
            hks.stop()
            shutil.rmtree(work, ignore_errors=True)
