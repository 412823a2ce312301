"""The whole path: MN datagrams over UDP to a real hkp-ar, RADIUS to a real FreeRADIUS
with the HKS module, at several concurrencies, with CPU per process.

    python3 benchmarks/whole_path.py [-n 5000] [-c 10,50] [--users 2000] [--json]
                                                       (root: FreeRADIUS runs as freerad)

One private FreeRADIUS (hkp_support.freeradius, replay state on disk under /var/tmp)
and one `hkp-ar` (python3 -m ar_proxy, UDP on [::1], key store on disk). The MN side is
benchmarks/udpload.py: pre-built signed HKReqs (one identity per request slot in turn,
`--users` identities, each with its own CoA, timestamps increasing per identity),
`-c` sockets with one exchange in flight each, retransmission after 1 s (counted), a
failure after two. Per concurrency: keys/s (Success HKResps per second), latency p50 and
p99, failures, retransmissions, and CPU per exchange of hkp-ar, FreeRADIUS and the
generator (utime+stime from /proc). Prints; never asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common
import udpload

from hkp_lab.lab import STAGING_ADMISSION
from hkp_radius.errors import DecodeError
from hkp_radius.wire import ntp
from hkp_radius.wire.messages import decode_message
from hkp_support.freeradius import FreeRadiusInstance

REPO = Path(__file__).resolve().parent.parent
SECRET = b"hkp-bench-secret"
READY_TIMEOUT = 20.0


def identity(i: int) -> tuple[str, bytes]:
    return f"path{i}@example.net", hashlib.sha256(b"path%d" % i).digest() * 2


def care_of_address(i: int) -> bytes:
    return bytes.fromhex("20010db800020000") + i.to_bytes(8, "big")


def build_requests(count: int, users: int, offset: int) -> list[bytes]:
    """HKReqs as MNs send them (draft §6.2.1, P2, P3); `offset` keeps Message IDs and
    timestamps fresh across rounds."""
    now = ntp.to_ntp(time.time())
    wires = []
    for k in range(count):
        i = k + offset
        user = i % users
        nai, hmk = identity(user)
        nonce = hashlib.sha256(b"%d" % i).digest()[:16]
        wires.append(
            bench_common.signed_hkreq(
                nai, hmk, (i // users) % 256, care_of_address(user), nonce, now + k * 4096
            )
        )
    return wires


def message_id(wire: bytes) -> int | None:
    try:
        message = decode_message(wire)
    except DecodeError:
        return None
    return message.message_id


def ar_config(work: Path, hks: FreeRadiusInstance) -> str:
    return "\n".join(
        [
            "[ar]",
            "address = 2001:db8::1",
            f"key_store = {work / 'keys.sqlite'}",
            "nas_identifier = hkp-bench",
            "[udp]",
            "enabled = yes",
            "listen = ::1",
            "port = 0",
            "[coa_validation]",
            "mode = permissive",
            "[log]",
            "level = info",
            # One source (the generator on ::1) staging load: the lab's admission limits;
            # the defaults drop it as a flood (issue 15).
            *STAGING_ADMISSION,
            "[home_server hks]",
            f"ipaddr = {hks.address}",
            f"port = {hks.port}",
            f"secret = {SECRET.decode()}",
            "response_window = 2",
            "retries = 1",
            "[realm example.net]",
            "home_servers = hks",
            "",
        ]
    )


class Ar:
    """A `python3 -m ar_proxy` subprocess; ready once its JSON "ready" line is logged."""

    def __init__(self, work: Path, config: str, repo: Path = REPO) -> None:
        self.work = work
        self.repo = repo  # the checkout whose hkp-ar runs (A/B against another branch)
        (work / "hkp-ar.conf").write_text(config)
        self.log_path = work / "hkp-ar.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    def start(self) -> Ar:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ar_proxy", "-c", str(self.work / "hkp-ar.conf")],
                cwd=self.repo, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hkp-ar did not start:\n{self.log_path.read_text()[-2000:]}")
            for line in self.log_path.read_text().splitlines():
                if '"ready"' in line:
                    self.ready = json.loads(line)
            time.sleep(0.05)  # polling interval of a deadline-bound wait (start-up only)
        return self

    @property
    def port(self) -> int:
        return int(str(self.ready["udp"]).rpartition(":")[2])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


def round_of(ar: Ar, hks: FreeRadiusInstance, count: int, users: int, concurrency: int,
             offset: int) -> dict[str, Any]:  # fmt: skip
    requests = build_requests(count, users, offset)
    expected = {id(wire): message_id(wire) for wire in requests}
    by_bytes = {wire: expected[id(wire)] for wire in requests}
    assert ar.process is not None and hks.process is not None
    ar_pid, hks_pid = ar.process.pid, hks.process.pid
    ar0, hks0 = udpload.cpu_seconds(ar_pid), udpload.cpu_seconds(hks_pid)
    threads0 = udpload.thread_cpu_seconds(ar_pid)
    result = udpload.run(
        requests, ("::1", ar.port), concurrency, keep_answers=True,
        matches=lambda request, answer: message_id(answer) == by_bytes[request],
        lane=lambda i: i % users,  # one lane per identity: its timestamps reach the HKS in order
    )  # fmt: skip
    ar_cpu = udpload.cpu_seconds(ar_pid) - ar0
    threads = bench_common.cpu_us_per_exchange(threads0, udpload.thread_cpu_seconds(ar_pid), count)
    hks_cpu = udpload.cpu_seconds(hks_pid) - hks0
    exchanges = max(1, result.answered)
    return {
        "concurrency": concurrency,
        "exchanges": count,
        **bench_common.hkresp_figures(result),
        "cpu_us_per_exchange": {
            "hkp-ar": ar_cpu / exchanges * 1e6,
            "freeradius": hks_cpu / exchanges * 1e6,
            "generator": result.own_cpu / exchanges * 1e6,
        },
        "hkp_ar_threads_us_per_exchange": {k: round(v, 1) for k, v in sorted(threads.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="exchanges per concurrency")
    parser.add_argument("-c", default="10,50", help="concurrencies, comma-separated")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--dir", default="/var/tmp", help="parent of the work dirs (not tmpfs)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--ar-repo", type=Path, default=REPO, help="this checkout's hkp-ar (A/B)")
    args = parser.parse_args(argv)
    root = bench_common.work_root("hkp-path-", args.dir)
    (root / "ar").mkdir()
    users = dict(identity(i) for i in range(args.users))
    hks = FreeRadiusInstance(root / "hks", secret=SECRET, users=users, require_timestamp=True,
                             timestamp_window=3600)  # fmt: skip
    ar: Ar | None = None
    figures = []
    try:
        hks.start()
        ar = Ar(root / "ar", ar_config(root / "ar", hks), args.ar_repo.resolve()).start()
        offset = 0
        for concurrency in (int(c) for c in args.c.split(",")):
            f = round_of(ar, hks, args.n, args.users, concurrency, offset)
            offset += args.n
            figures.append(f)
            cpu = f["cpu_us_per_exchange"]
            print(
                f"{concurrency:4} in flight: {f['keys_per_s']:7,.0f} keys/s, "
                f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, failed {f['failed']}, "
                f"retransmissions {f['retransmissions']}, statuses {f['statuses']}; CPU per "
                f"exchange: hkp-ar {cpu['hkp-ar']:.0f} us, FreeRADIUS {cpu['freeradius']:.0f} us, "
                f"generator {cpu['generator']:.0f} us",
                flush=True,
            )
            split = ", ".join(
                f"{k} {v:.0f} us" for k, v in f["hkp_ar_threads_us_per_exchange"].items()
            )
            print(f"      hkp-ar by thread: {split}", flush=True)
        calibration = udpload.calibration_ms()
    finally:
        if ar is not None:
            ar.stop()
        hks.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"calibration: a fixed pure-Python loop took {calibration:.0f} ms CPU here now "
          "(compare runs on different machines after dividing by it)")  # fmt: skip
    print("Goal at 50 in flight: >= 5,000 keys/s, p99 <= 10 ms, 0 failed, "
          "0 retransmissions, hkp-ar <= 150 us CPU per exchange")  # fmt: skip
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
