"""Issue 4, must-show 2: the exchange as real IPv6 Next Header 135 packets between two
network namespaces joined by a veth pair; the kernel's neighbour cache as CoA validator.

hkp-ar runs in the root namespace (so it reaches FreeRADIUS on loopback) and opens its
raw socket and netlink sockets inside the AR namespace ([ar] netns)."""

from __future__ import annotations

import os
import random
import secrets
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from ar_proxy.transports import IPV6_CHECKSUM, MH_CHECKSUM_OFFSET, network_namespace
from hkp_radius.constants import IPPROTO_MH, NULL_COA, Status
from hkp_radius.wire.messages import mh_checksum
from tests.ar_helpers import HMK2, NAI2, build_hkreq, decode_hkresp, ip6, verified_hkresp

from .ar_fixtures import ArProcess, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.netns]

AR_IP, MN_IP, OTHER_IP = "fd00:4b50::1", "fd00:4b50::2", "fd00:4b50::99"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Namespaces:
    ar: str
    mn: str
    ar_if: str
    mn_if: str


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    if os.geteuid() != 0:
        pytest.fail("raw IPv6 tests need root and network namespaces (CI runs as root)")
    suffix = secrets.token_hex(3)
    ns = Namespaces(f"hkpar-{suffix}-ar", f"hkpar-{suffix}-mn", f"hka{suffix}", f"hkm{suffix}")
    created: list[str] = []
    try:
        for name in (ns.ar, ns.mn):
            ip("netns", "add", name)
            created.append(name)
        ip(
            "link",
            "add",
            ns.ar_if,
            "netns",
            ns.ar,
            "type",
            "veth",
            "peer",
            "name",
            ns.mn_if,
            "netns",
            ns.mn,
        )
        for name, dev, address in ((ns.ar, ns.ar_if, AR_IP), (ns.mn, ns.mn_if, MN_IP)):
            ip("-n", name, "link", "set", "lo", "up")
            ip("-n", name, "-6", "addr", "add", f"{address}/64", "dev", dev, "nodad")
            ip("-n", name, "link", "set", dev, "up")
        yield ns
    finally:
        for name in created:  # deleting a namespace deletes its end of the veth pair
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


class RawMobileNode:
    """The MN in its namespace: sends with the kernel computing the checksum, receives
    on a plain raw socket (no IPV6_CHECKSUM) so the test sees and checks the checksum."""

    def __init__(self, netns: str) -> None:
        with network_namespace(netns):
            self.sender = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)
            self.sender.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, MH_CHECKSUM_OFFSET)
            self.receiver = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)

    def send(self, wire: bytes) -> None:
        self.sender.sendto(wire, (AR_IP, 0))

    def receive(self, timeout: float = 5.0) -> bytes:
        self.receiver.settimeout(timeout)
        while True:
            data, (source, *_) = self.receiver.recvfrom(4096)
            if source == AR_IP:
                return data

    def exchange(self, wire: bytes) -> bytes:
        self.send(wire)
        reply = self.receive()
        checksum = int.from_bytes(reply[4:6], "big")
        assert checksum != 0 and checksum == mh_checksum(ip6(AR_IP), ip6(MN_IP), reply)
        return reply

    def close(self) -> None:
        self.sender.close()
        self.receiver.close()


@pytest.fixture
def raw_ar(start_ar: Callable[..., ArProcess], namespaces: Namespaces) -> ArProcess:
    return start_ar(
        sections={
            # Not AR_IP: over raw IPv6 the AR-ID is the packet's destination (§6.3 "its
            # IP address as seen by the MN"); the configured address is only for UDP.
            "ar": {"address": "2001:db8::abcd", "netns": namespaces.ar},
            "udp": {"enabled": "no"},
            "raw": {"enabled": "yes"},
            "coa_validation": {"mode": "neighbour"},
        }
    )


@pytest.fixture
def mn(namespaces: Namespaces) -> Iterator[RawMobileNode]:
    node = RawMobileNode(namespaces.mn)
    yield node
    node.close()


def test_raw_ipv6_exchange_between_namespaces(raw_ar: ArProcess, mn: RawMobileNode) -> None:
    """Must-show 2 (P9 raw IPv6, checksum by the kernel); §6.3: the AR-ID is the AR's
    address as seen by the MN; the CoA validated from the kernel's neighbour cache
    (the MN resolved the AR's address, so the AR holds a neighbour entry for it)."""
    assert raw_ar.ready["raw"] and raw_ar.ready["udp"] is None
    wire = build_hkreq(message_id=61, coa=ip6(MN_IP))
    response, hk = verified_hkresp(mn.exchange(wire), message_id=61, ar_id=ip6(AR_IP))
    assert response.status == Status.SUCCESS
    stored = raw_ar.wait_stored(response.spi, coa=ip6(MN_IP))
    assert stored[0].hk == hk and stored[0].ar_address == ip6(AR_IP)
    returning = build_hkreq(message_id=62, verify=True, with_hks_mac=False, hk=hk, coa=ip6(MN_IP))
    assert decode_hkresp(mn.exchange(returning)).verify


def test_neighbour_cache_validates_coa_and_its_removal_unbinds(
    raw_ar: ArProcess, mn: RawMobileNode, namespaces: Namespaces
) -> None:
    """§6.3 "If the AR fails to verify the CoA, it MUST send ... CoA_AUTH_FAILED";
    "When the neighbor cache entry for the CoA expires, the AR MUST disassociate the
    key and the corresponding CoA"."""
    claim = build_hkreq(message_id=63, nai=NAI2, hmk=HMK2, coa=ip6(OTHER_IP))
    assert decode_hkresp(mn.exchange(claim)).status == Status.COA_AUTH_FAILED
    lladdr = "02:00:00:00:00:99"
    ip(
        "-n",
        namespaces.ar,
        "-6",
        "neigh",
        "add",
        OTHER_IP,
        "lladdr",
        lladdr,
        "dev",
        namespaces.ar_if,
    )
    claim = build_hkreq(message_id=64, nai=NAI2, hmk=HMK2, coa=ip6(OTHER_IP))
    response, _ = verified_hkresp(
        mn.exchange(claim), message_id=64, nai=NAI2, hmk=HMK2, ar_id=ip6(AR_IP)
    )
    raw_ar.wait_stored(response.spi, coa=ip6(OTHER_IP))
    ip("-n", namespaces.ar, "-6", "neigh", "del", OTHER_IP, "dev", namespaces.ar_if)
    raw_ar.wait_stored(response.spi, coa=None)


def test_raw_garbage_then_valid_request(raw_ar: ArProcess, mn: RawMobileNode) -> None:
    """Must-show 6 over raw IPv6: mutated and random MH packets, then a valid exchange."""
    rng = random.Random(6)
    template = build_hkreq(message_id=65, coa=NULL_COA)
    for _ in range(1000):
        # At least 6 octets: the sender's kernel needs the checksum field (EINVAL otherwise).
        data = bytearray(template if rng.random() < 0.5 else os.urandom(rng.randrange(6, 200)))
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        mn.send(bytes(data))
    wait_until(lambda: len(raw_ar.events(name="discarded")) > 300, 10.0, "the garbage processed")
    wire = build_hkreq(message_id=66, nai=NAI2, hmk=HMK2, coa=NULL_COA)
    mn.send(wire)
    while True:  # skip answers to mutated requests that decoded
        reply = mn.receive()
        if decode_hkresp(reply).message_id == 66:
            break
    verified_hkresp(reply, message_id=66, nai=NAI2, hmk=HMK2, ar_id=ip6(AR_IP))
    assert raw_ar.running
