"""Network namespaces for raw IPv6 (as root): the MN and the AR each in their own
namespace, joined by a veth pair with IPv6 addresses (nodad: usable at once).

Names carry a random suffix (hkplab-mn-xxxx, hkplab-ar-xxxx) so that parallel labs and
tests never collide; `destroy` removes them and is safe to call twice.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hkp_support.namespaces import entered

PREFIX = "fd00:1ab:"  # a ULA /64 per lab (RFC 4193)
MN_COA_BASE = 0x10  # identity addresses: mn_address + 0x10 + index
MN_COAS = 8  # addresses made for MN identities (the lab has five)
LINK_READY_TIMEOUT = 5.0  # seconds for a veth to come up; it takes milliseconds
LINK_POLL = 0.01


class NetnsError(Exception):
    pass


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _no_dad(namespace: str, device: str) -> None:
    """No duplicate address detection on the veth: the link-local address would otherwise
    stay tentative for a second after the link comes up, and the lab's first HKReq
    would be lost to neighbour discovery that cannot start yet."""
    path = f"/proc/sys/net/ipv6/conf/{device}/accept_dad"
    try:
        with inside(namespace), open(path, "w") as knob:
            knob.write("0")
    except OSError as exc:
        raise NetnsError(f"{namespace}: cannot turn off DAD on {device}: {exc}") from None


def _wait_link_ready(namespace: str, device: str) -> None:
    """Wait (deadline LINK_READY_TIMEOUT) until `device` has carrier and no tentative
    IPv6 address: then the first packet of the lab gets through."""
    deadline = time.monotonic() + LINK_READY_TIMEOUT
    while True:
        link = _ip("-n", namespace, "link", "show", "dev", device)
        tentative = _ip("-n", namespace, "-6", "addr", "show", "dev", device, "tentative")
        if "LOWER_UP" in link and not tentative.strip():
            return
        if time.monotonic() > deadline:
            raise NetnsError(f"{namespace}/{device} not ready after {LINK_READY_TIMEOUT:g} s")
        time.sleep(LINK_POLL)  # polling interval of a deadline-bound wait


@dataclass(frozen=True)
class Topology:
    mn_ns: str
    ar_ns: str
    mn_address: str
    ar_address: str
    hks_address: str = "127.0.0.1"  # the AR daemon speaks RADIUS from the root namespace

    def coa(self, index: int) -> str:
        """The address of the index-th MN identity in the MN namespace: the AR binds
        each CoA to one NAI (§7.4), so MNs do not share one."""
        return str(ipaddress.IPv6Address(self.mn_address) + MN_COA_BASE + index)

    def names(self) -> list[str]:
        """The namespaces to delete; the veth pair lives and dies with them."""
        return [self.mn_ns, self.ar_ns]


def create(hks_address: str = "127.0.0.1", prefix: str = "hkplab") -> Topology:
    """Two namespaces, a veth pair between them, IPv6 on both ends, loopback up."""
    if os.geteuid() != 0:
        raise NetnsError("network namespaces need root: run as root or without --netns")
    suffix = secrets.token_hex(3)
    mn_ns, ar_ns = f"{prefix}-mn-{suffix}", f"{prefix}-ar-{suffix}"
    net = f"{PREFIX}{int(suffix, 16) & 0xFFFF:x}::"
    topology = Topology(mn_ns, ar_ns, f"{net}2", f"{net}1", hks_address)
    created: list[str] = []
    try:
        for name in (mn_ns, ar_ns):
            _ip("netns", "add", name)
            created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", mn_ns, "link", "add", "veth-mn", "type", "veth", "peer", "name", "veth-ar",
            "netns", ar_ns)  # fmt: skip
        ends = ((mn_ns, "veth-mn", f"{net}2"), (ar_ns, "veth-ar", f"{net}1"))
        for name, dev, address in ends:
            _no_dad(name, dev)
            _ip("-n", name, "-6", "addr", "add", f"{address}/64", "dev", dev, "nodad")
            _ip("-n", name, "link", "set", dev, "up")
        for index in range(MN_COAS):
            _ip("-n", mn_ns, "-6", "addr", "add", f"{topology.coa(index)}/64", "dev", "veth-mn",
                "nodad")  # fmt: skip
        for name, dev, _address in ends:
            _wait_link_ready(name, dev)
    except NetnsError:
        destroy(created)
        raise
    return topology


def destroy(names: Sequence[str]) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


def inside(name: str) -> contextlib.AbstractContextManager[None]:
    """Run the block with this thread in namespace `name`: sockets created there stay
    in it after the block returns (hkp_support.namespaces)."""
    return entered(name, lambda _errno, text: NetnsError(text))
