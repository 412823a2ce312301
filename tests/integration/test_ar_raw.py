"""The exchange as real IPv6 Next Header 135 packets between network namespaces joined
by veth pairs; the kernel's neighbour cache as CoA validator (issue 4 must-show 2, issue
16 must-show 4).

    MN namespace  --link 1 (fd00:4b50::/64)--  AR namespace  --link 2 (fd00:4b51::/64)--  far

hkp-ar runs in the root namespace (so it reaches FreeRADIUS on loopback) and opens its
raw socket and netlink sockets inside the AR namespace ([ar] netns). Every veth end has
a fixed MAC address so that tests can write neighbour entries themselves."""

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
from hkp_radius.constants import IPPROTO_MH, Status
from hkp_radius.wire.messages import mh_checksum
from tests.ar_helpers import (
    HMK2,
    NAI,
    NAI2,
    build_hkreq,
    decode_hkresp,
    ip6,
    verified_hkresp,
    wall_stamp,
)

from .ar_fixtures import ArProcess, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.netns]

AR_IP, MN_IP, OTHER_IP = "fd00:4b50::1", "fd00:4b50::2", "fd00:4b50::99"
AR_FAR_IP, FAR_IP = "fd00:4b51::1", "fd00:4b51::2"
MAC = {"ar1": "02:4b:50:00:00:01", "mn": "02:4b:50:00:00:02",
       "ar2": "02:4b:51:00:00:01", "far": "02:4b:51:00:00:02"}  # fmt: skip


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Namespaces:
    ar: str
    mn: str
    far: str
    ar_if: str  # link 1, towards the MN
    mn_if: str
    ar_far_if: str  # link 2, towards the far node
    far_if: str


def veth(ns_a: str, if_a: str, mac_a: str, ns_b: str, if_b: str, mac_b: str) -> None:
    ip("link", "add", if_a, "address", mac_a, "netns", ns_a, "type", "veth",
       "peer", "name", if_b, "address", mac_b, "netns", ns_b)  # fmt: skip


def address(ns: str, dev: str, cidr: str) -> None:
    ip("-n", ns, "-6", "addr", "add", cidr, "dev", dev, "nodad")


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    if os.geteuid() != 0:
        pytest.fail("raw IPv6 tests need root and network namespaces (CI runs as root)")
    s = secrets.token_hex(3)
    ns = Namespaces(f"hkpar-{s}-ar", f"hkpar-{s}-mn", f"hkpar-{s}-far",
                    f"hka{s}", f"hkm{s}", f"hkb{s}", f"hkf{s}")  # fmt: skip
    created: list[str] = []
    try:
        for name in (ns.ar, ns.mn, ns.far):
            ip("netns", "add", name)
            created.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        veth(ns.ar, ns.ar_if, MAC["ar1"], ns.mn, ns.mn_if, MAC["mn"])
        veth(ns.ar, ns.ar_far_if, MAC["ar2"], ns.far, ns.far_if, MAC["far"])
        for name, dev, cidr in (
            (ns.ar, ns.ar_if, f"{AR_IP}/64"),
            (ns.mn, ns.mn_if, f"{MN_IP}/64"),
            (ns.ar, ns.ar_far_if, f"{AR_FAR_IP}/64"),
            (ns.far, ns.far_if, f"{FAR_IP}/64"),
        ):
            address(name, dev, cidr)
            ip("-n", name, "link", "set", dev, "up")
        yield ns
    finally:
        for name in created:  # deleting a namespace deletes its ends of the veth pairs
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


class RawMobileNode:
    """An MN in its namespace: sends (from `source` when given) with the kernel computing
    the checksum, receives on a plain raw socket (no IPV6_CHECKSUM) so the test sees and
    checks the checksum."""

    def __init__(self, netns: str, source: str | None = None, ar: str = AR_IP) -> None:
        self.ar, self.source = ar, source
        with network_namespace(netns):
            self.sender = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)
            self.sender.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, MH_CHECKSUM_OFFSET)
            if source is not None:
                self.sender.bind((source, 0))
            self.receiver = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)

    def send(self, wire: bytes) -> None:
        self.sender.sendto(wire, (self.ar, 0))

    def receive(self, timeout: float = 5.0, message_id: int | None = None) -> bytes:
        """The next MH packet from the AR (with `message_id`: the answer to that request;
        every raw socket of the namespace sees every MH packet that arrives in it)."""
        self.receiver.settimeout(timeout)
        while True:
            data, (source, *_) = self.receiver.recvfrom(4096)
            if source == self.ar and (message_id is None or data[6:7] == bytes((message_id,))):
                return data

    def exchange(self, wire: bytes) -> bytes:
        self.send(wire)
        reply = self.receive(message_id=wire[6])
        checksum = int.from_bytes(reply[4:6], "big")
        to = ip6(self.source or MN_IP)
        assert checksum != 0 and checksum == mh_checksum(ip6(self.ar), to, reply)
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
            # The garbage test wants every packet at the decoder, not at the per-source
            # limit of admission control (tests/integration/test_ar_flood.py has that).
            "admission": {"enabled": "no"},
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
    wire = build_hkreq(message_id=61, coa=ip6(MN_IP), timestamp=wall_stamp())
    response, hk = verified_hkresp(mn.exchange(wire), message_id=61, ar_id=ip6(AR_IP))
    assert response.status == Status.SUCCESS
    stored = raw_ar.wait_stored(response.spi, coa=ip6(MN_IP))
    assert stored[0].hk == hk and stored[0].ar_address == ip6(AR_IP)
    returning = build_hkreq(
        message_id=62, verify=True, with_hks_mac=False, hk=hk, coa=ip6(MN_IP),
        timestamp=wall_stamp(),
    )  # fmt: skip
    assert decode_hkresp(mn.exchange(returning)).verify


def test_neighbour_cache_validates_coa_and_its_removal_unbinds(
    raw_ar: ArProcess, namespaces: Namespaces
) -> None:
    """§6.3 "If the AR fails to verify the CoA, it MUST send ... CoA_AUTH_FAILED";
    "When the neighbor cache entry for the CoA expires, the AR MUST disassociate the
    key and the corresponding CoA". The MN knows the AR's MAC already (a static entry),
    so the AR learns nothing of OTHER_IP until the test writes its entry."""
    ip("-n", namespaces.mn, "-6", "neigh", "add", AR_IP, "lladdr", MAC["ar1"],
       "dev", namespaces.mn_if)  # fmt: skip
    address(namespaces.mn, namespaces.mn_if, f"{OTHER_IP}/128")
    node = RawMobileNode(namespaces.mn, source=OTHER_IP)
    try:
        claim = build_hkreq(message_id=63, nai=NAI2, hmk=HMK2, coa=ip6(OTHER_IP))
        assert decode_hkresp(node.exchange(claim)).status == Status.COA_AUTH_FAILED
        ip("-n", namespaces.ar, "-6", "neigh", "replace", OTHER_IP, "lladdr", MAC["mn"],
           "dev", namespaces.ar_if)  # fmt: skip
        claim = build_hkreq(message_id=64, nai=NAI2, hmk=HMK2, coa=ip6(OTHER_IP))
        response, _ = verified_hkresp(
            node.exchange(claim), message_id=64, nai=NAI2, hmk=HMK2, ar_id=ip6(AR_IP)
        )
        raw_ar.wait_stored(response.spi, coa=ip6(OTHER_IP))
        ip("-n", namespaces.ar, "-6", "neigh", "del", OTHER_IP, "dev", namespaces.ar_if)
        raw_ar.wait_stored(response.spi, coa=None)
    finally:
        node.close()


def test_a_neighbours_coa_claimed_from_another_address_or_link_is_refused(
    raw_ar: ArProcess, namespaces: Namespaces
) -> None:
    """Issue 16 must-show 4; §6.3, §7.4 ("the CoA claimed by the MN does not belong to
    any other node"): MN_IP has a live neighbour entry on link 1. A request claiming it
    as Key CoA from another address on link 1, or from MN_IP itself but arriving over
    link 2 (a spoofed source), gets CoA_AUTH_FAILED and never reaches the HKS; then the
    owner, from MN_IP over link 1, gets its key bound to its address. R96 (§6.5): once
    bound, the CoA tied to the NAI is accepted from anywhere (an indirect refresh)."""
    ns = namespaces
    ip("-n", ns.ar, "-6", "neigh", "replace", MN_IP, "lladdr", MAC["mn"], "nud", "reachable",
       "dev", ns.ar_if)  # fmt: skip
    # Same link, another source address.
    address(ns.mn, ns.mn_if, f"{OTHER_IP}/128")
    thief = RawMobileNode(ns.mn, source=OTHER_IP)
    # The other link, spoofing MN_IP; it knows the AR's MAC, so it sends no NS from MN_IP
    # (which would teach the AR a neighbour entry for MN_IP on link 2).
    address(ns.far, ns.far_if, f"{MN_IP}/128")
    ip("-n", ns.far, "-6", "neigh", "add", AR_FAR_IP, "lladdr", MAC["ar2"], "dev", ns.far_if)
    spoofer = RawMobileNode(ns.far, source=MN_IP, ar=AR_FAR_IP)
    owner = RawMobileNode(ns.mn, source=MN_IP)
    try:
        claim = build_hkreq(message_id=71, coa=ip6(MN_IP), timestamp=wall_stamp())
        assert decode_hkresp(thief.exchange(claim)).status == Status.COA_AUTH_FAILED
        claim = build_hkreq(message_id=72, coa=ip6(MN_IP), timestamp=wall_stamp())
        spoofer.send(claim)
        raw_ar.wait_event(event="exchange", message_id=72, status=Status.COA_AUTH_FAILED)
        assert not raw_ar.events(name="access-request") and raw_ar.stored_keys() == []
        request = build_hkreq(message_id=73, coa=ip6(MN_IP), timestamp=wall_stamp())
        response, _ = verified_hkresp(owner.exchange(request), message_id=73, ar_id=ip6(AR_IP))
        raw_ar.wait_stored(response.spi, coa=ip6(MN_IP))
        # §6.5: the CoA now tied to this NAI; a refresh through another path (link 2, from
        # FAR_IP) needs no neighbour entry and no source match.
        far = RawMobileNode(ns.far, source=FAR_IP, ar=AR_FAR_IP)
        try:
            refresh = build_hkreq(message_id=74, coa=ip6(MN_IP), timestamp=wall_stamp())
            refreshed, _ = verified_hkresp(far.exchange(refresh), message_id=74,
                                           ar_id=ip6(AR_FAR_IP))  # fmt: skip
            raw_ar.wait_stored(refreshed.spi, coa=ip6(MN_IP))
        finally:
            far.close()
        # ... while another NAI claiming it, even from MN_IP over link 1, is refused.
        other = build_hkreq(message_id=75, nai=NAI2, hmk=HMK2, coa=ip6(MN_IP))
        assert decode_hkresp(owner.exchange(other)).status == Status.COA_AUTH_FAILED
        assert {k.nai for k in raw_ar.stored_keys()} == {NAI}
    finally:
        for node in (thief, spoofer, owner):
            node.close()


def test_raw_garbage_then_valid_request(raw_ar: ArProcess, mn: RawMobileNode) -> None:
    """Must-show 6 over raw IPv6: mutated and random MH packets, then a valid exchange."""
    rng = random.Random(6)
    # The template claims an address the MN does not send from: even a copy a mutation
    # left intact binds nothing (CoA_AUTH_FAILED), so the CoA stays free for the last one.
    template = build_hkreq(message_id=65, coa=ip6(OTHER_IP))
    for _ in range(1000):
        # At least 6 octets: the sender's kernel needs the checksum field (EINVAL otherwise).
        data = bytearray(template if rng.random() < 0.5 else rng.randbytes(rng.randrange(6, 200)))
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        mn.send(bytes(data))
    wait_until(lambda: len(raw_ar.events(name="discarded")) > 300, 10.0, "the garbage processed")
    wire = build_hkreq(message_id=66, nai=NAI2, hmk=HMK2, coa=ip6(MN_IP))
    mn.send(wire)
    while True:  # skip answers to mutated requests that decoded
        reply = mn.receive()
        if decode_hkresp(reply).message_id == 66:
            break
    verified_hkresp(reply, message_id=66, nai=NAI2, hmk=HMK2, ar_id=ip6(AR_IP))
    assert raw_ar.running
