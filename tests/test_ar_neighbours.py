"""The netlink neighbour lookup (draft §6.3 CoA validation) reads only the answer to its
own request: what is left of a dump an earlier lookup timed out on is skipped by its
sequence number. A datagram socketpair stands in for the kernel's netlink socket."""

from __future__ import annotations

import ipaddress
import socket

from ar_proxy.neighbours import (
    NDA_DST,
    NDMSG,
    NLMSG_DONE,
    NLMSGHDR,
    RTATTR,
    RTM_NEWNEIGH,
    NeighbourValidator,
)

COA = ipaddress.IPv6Address("2001:db8::100").packed
NUD_REACHABLE = 0x02


def message(kind: int, seq: int, body: bytes = b"") -> bytes:
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, 0, seq, 0) + body


def neighbour(address: bytes, state: int) -> bytes:
    ndmsg = NDMSG.pack(socket.AF_INET6, 0, 0, 2, state, 0, 0)
    return ndmsg + RTATTR.pack(RTATTR.size + 16, NDA_DST) + address


def test_lookup_ignores_the_rest_of_an_abandoned_dump() -> None:
    kernel, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    validator = NeighbourValidator(NUD_REACHABLE, lambda: ours)
    try:
        # Left over from a lookup (sequence 0) that timed out: the CoA was reachable then.
        kernel.send(message(RTM_NEWNEIGH, 0, neighbour(COA, NUD_REACHABLE)))
        kernel.send(message(NLMSG_DONE, 0))
        # The answer to this lookup (sequence 1): the entry is gone.
        kernel.send(message(NLMSG_DONE, 1))
        assert validator.lookup(COA) == {}
        assert kernel.recv(4096)  # the request went out
        kernel.send(message(RTM_NEWNEIGH, 2, neighbour(COA, NUD_REACHABLE)))
        kernel.send(message(NLMSG_DONE, 2))
        assert validator.lookup(COA) == {2: NUD_REACHABLE}  # ifindex 2
    finally:
        validator.close()
        kernel.close()
