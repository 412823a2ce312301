"""`hkp-lab run`, `up` and `down`, and `hkp-mn` against a lab, all as subprocesses."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hkp_lab.lab import stop_recorded
from hkp_radius.mn import Datagram, MNConfig, MobileNode

from .mn_lab import needs_root_and_freeradius

pytestmark = [pytest.mark.integration, needs_root_and_freeradius]

REPO = Path(__file__).resolve().parents[2]
HEX_SECRET = re.compile(r"[0-9a-f]{40,}")  # an HMK (128 hex digits) or an HK (40)


def command(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env,
        cwd=REPO, check=False,
    )  # fmt: skip


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return command("-m", "hkp_lab.cli", *args)


def mn(*args: str) -> subprocess.CompletedProcess[str]:
    return command("-m", "mn_client.cli", *args)


def test_run_prints_an_account_and_exits_0() -> None:
    result = lab("run")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "all exchanges as expected" in out and "stopped everything it started" in out
    for expected in (
        "HKS decided: Accept 'alice@lab.example'",
        "AR decided:  issued",
        "held key verified",
        "INVALID_TIMESTAMP (MN-HKS MAC verified)",
        "(retransmission 1)",
        "CoA NULL",
        "ADMINISTRATIVELY_PROHIBITED (MN-HKS MAC verified)",
    ):
        assert expected in out, expected
    assert re.search(
        r"\[1\] ok +[0-9.]+ ms  alice@lab.example request: SPI \d+, lifetime 3600 s", out
    )
    assert not HEX_SECRET.search(out + result.stderr)  # no HMK, no HK
    assert not list(Path("/tmp").glob("hkp-lab-run-*/processes.json"))
    # Issue 16 Must show 5: with the production defaults every direct key is bound to its
    # MN's own address (each lab MN sends from its own 127.0.0.0/8 address).
    direct = 0
    for block in out.split("\n[")[1:]:
        claimed = re.search(r"who: (\S+), CoA (\S+),", block)
        assert claimed, block
        if claimed.group(2) == "NULL" or "AR decided:  issued" not in block:
            continue
        address = ipaddress.IPv6Address(claimed.group(2))
        assert address.ipv4_mapped is not None and address.ipv4_mapped.is_loopback, block
        assert f"CoA {address}" in block.split("AR decided:  issued", 1)[1], block
        direct += 1
    assert direct >= 3  # alice, bob, carol


@pytest.fixture
def lab_up() -> Iterator[tuple[Path, dict[str, Any]]]:
    directory = Path(tempfile.mkdtemp(prefix="hkp-labtest-", dir="/tmp"))
    result = lab("up", "--dir", str(directory))
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield directory, json.loads(result.stdout)
    finally:
        down = lab("down", "--dir", str(directory))
        assert down.returncode == 0, down.stderr
        shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_prints_endpoints_that_work_and_down_stops_everything(
    lab_up: tuple[Path, dict[str, Any]],
) -> None:
    directory, endpoints = lab_up
    ar, hks = endpoints["ar"], endpoints["hks"]
    assert ar["transport"] == "udp" and isinstance(ar["port"], int)
    ipaddress.IPv6Address(ar["ar_id"])
    assert hks["secret"] and isinstance(hks["port"], int)
    identities = endpoints["identities"]
    assert len(identities) >= 2 and all(len(bytes.fromhex(i["hmk"])) >= 64 for i in identities)
    assert oct((directory / "endpoints.json").stat().st_mode & 0o777) == "0o600"

    # radclient with the lab's dictionary directory: a real HKReq of a lab identity.
    alice = identities[0]
    node = MobileNode(
        MNConfig(nai=alice["nai"].encode(), hmk=bytes.fromhex(alice["hmk"])), secrets.token_bytes
    )
    outputs = node.request_key(
        ipaddress.IPv6Address(ar["ar_id"]).packed,
        bytes(15) + b"\x01",
        time.monotonic(),
        time.time(),
    )
    wire = next(o.data for o in outputs if isinstance(o, Datagram))
    attributes = (
        f'User-Name = "{alice["nai"]}", HKP-Mobility-Header = 0x{wire.hex()}, '
        f"HKP-AR-Address = {ar['ar_id']}, Message-Authenticator = 0x00"
    )
    radclient = subprocess.run(
        ["radclient", "-D", hks["dictionary_dir"], "-x", f"{hks['address']}:{hks['port']}",
         "auth", hks["secret"]],
        input=attributes, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert radclient.returncode == 0, radclient.stdout + radclient.stderr
    assert "Received Access-Accept" in radclient.stdout and "HKP-HKS-Nonce" in radclient.stdout

    # hkp-mn across invocations: request, then verify with the key file, then keys.
    keys = directory / "mn-keys.json"
    common = ["--lab", "--lab-dir", str(directory), "--keys", str(keys)]
    request = mn("request", *common, "--coa", "2001:db8:1ab::200")
    assert request.returncode == 0, request.stdout + request.stderr
    assert "new key: SPI" in request.stdout and "@ AR 2001:db8:1ab::1" in request.stdout
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    verify = mn("verify", *common, "--coa", "2001:db8:1ab::200", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["verified"] is True
    listing = mn("keys", "--keys", str(keys))
    assert "alice@lab.example" in listing.stdout and "SPI" in listing.stdout
    assert not HEX_SECRET.search(listing.stdout + request.stdout + verify.stdout)
    shown = mn("keys", "--keys", str(keys), "--show-key", "--json")
    (row,) = json.loads(shown.stdout)
    assert len(bytes.fromhex(row["hk"])) == 20
    load = mn("load", *common, "-n", "40", "-c", "4")
    assert load.returncode == 0, load.stdout + load.stderr
    assert "40 ok" in load.stdout and "keys/s" in load.stdout

    pids = [p["pid"] for p in json.loads((directory / "processes.json").read_text())["processes"]]
    assert pids and all(_alive(pid) for pid in pids)
    down = lab("down", "--dir", str(directory))
    assert down.returncode == 0 and "stopped hkp-ar" in down.stdout
    assert not any(_alive(pid) for pid in pids)
    assert not (directory / "endpoints.json").exists()
    again = lab("up", "--dir", str(directory))  # the fixture's `down` stops this one
    assert again.returncode == 0, again.stderr


def test_lab_hks_answers_a_request_without_timestamp_with_a_signed_timestamp_reqd(
    lab_up: tuple[Path, dict[str, Any]],
) -> None:
    """Issue 16 Must show 5: the lab's HKS runs with require_timestamp = yes (the module's
    default); hkp-mn with its own address as the CoA (no --coa) then gets its key."""
    directory, _ = lab_up
    keys = directory / "bob-keys.json"
    result = mn("request", "--lab", "--lab-dir", str(directory), "--nai", "bob@lab.example",
                "--keys", str(keys), "--no-timestamp", "--json")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert any("TIMESTAMP_REQD (MN-HKS MAC verified)" in e for e in report["events"]), report
    assert report["ok"] and not report["verified"]
    (row,) = json.loads(mn("keys", "--keys", str(keys), "--json").stdout)
    own = ipaddress.IPv6Address(row["care_of_address"]).ipv4_mapped
    assert str(own) == "127.0.0.1"  # its own address towards the AR


def test_up_twice_is_refused(lab_up: tuple[Path, dict[str, Any]]) -> None:
    directory, _ = lab_up
    second = lab("up", "--dir", str(directory))
    assert second.returncode == 2 and "already up" in second.stderr


def test_down_clears_an_unreadable_record_so_up_is_not_refused_for_ever(tmp_path: Path) -> None:
    (tmp_path / "processes.json").write_text('{"processes": [{"name": "hkp-ar"')  # cut short
    (lines,) = stop_recorded(tmp_path)
    assert "removed unreadable" in lines and "by hand" in lines
    assert not (tmp_path / "processes.json").exists()
    assert stop_recorded(tmp_path) == []  # `up` may start afresh


@needs_root_and_freeradius
def test_a_lab_ar_port_taken_after_its_draw_is_drawn_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CI failure of 2026-12-03: the lab drew a free port for hkp-ar, released it, and
    another socket took it before hkp-ar bound it ("cannot bind: another process holds
    it"). Reproduced with the first draw landing on a port a real socket holds: the lab
    draws again and its AR answers on the second port."""
    import socket

    from hkp_lab import lab as lab_module
    from hkp_radius.mn import KeyEstablished

    from .mn_lab import ar_id, coa, exchange, node_for, running_lab, udp

    holder = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    holder.bind(("::", 0))
    taken = holder.getsockname()[1]
    real = lab_module.free_udp_port
    draws: list[int] = []

    def racing(address: str = "127.0.0.1", kind: int = socket.SOCK_DGRAM) -> int:
        draws.append(taken if not draws else real(address, kind))
        return draws[-1]

    monkeypatch.setattr(lab_module, "free_udp_port", racing)
    try:
        with running_lab() as lab:
            assert draws[0] == taken and lab.ar_port == draws[-1] != taken
            assert "cannot bind" in lab.ar_log.read_text()
            node = node_for(lab, "alice")
            result = exchange(
                node, udp(lab), lambda now, wall: node.request_key(ar_id(lab), coa(0x7A), now, wall)
            )
            assert isinstance(result.final, KeyEstablished)
    finally:
        holder.close()
