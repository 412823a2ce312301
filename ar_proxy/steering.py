"""Per-source receive queues for hkp-ar's UDP port (issue 15, docs/ar.md).

A userspace daemon cannot out-read a flood: once its socket's queue is full, the kernel
drops what arrives, an MN's HKReq as readily as junk, and the sender only gets faster.
So the port is served by `queues` UDP sockets in one SO_REUSEPORT group, and a classic
BPF program (SO_ATTACH_REUSEPORT_CBPF) steers each datagram to the socket of its source:
a hash of the sender's /64 (IPv6) or of its address (IPv4). A flood from one /64 fills
only its own queue and is dropped there by the kernel at no cost to the daemon; MNs of
other /64s queue elsewhere (sharing a queue with the flood with probability 1/queues).
The daemon reads the queues in turn, READ_BATCH datagrams each per readiness callback.

No other process may join the group: the port is first claimed by a socket without
SO_REUSEPORT (so a second hkp-ar fails with "another process holds it"), released, and
the group bound at once.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct

SO_REUSEPORT = getattr(socket, "SO_REUSEPORT", 15)
SO_ATTACH_REUSEPORT_CBPF = 51  # asm-generic/socket.h
SKF_NET_OFF = -0x100000  # linux/filter.h: loads relative to the network header
MAX_QUEUES = 64
EPHEMERAL_ATTEMPTS = 8  # port 0: draws of a free port before giving up

# linux/bpf_common.h
LD, LDX, ALU, JMP, RET, MISC = 0x00, 0x01, 0x04, 0x05, 0x06, 0x07
W, B, ABS = 0x00, 0x10, 0x20
K, X, A = 0x00, 0x08, 0x10
RSH, XOR, MOD, JEQ, TAX = 0x70, 0xA0, 0x90, 0x10, 0x00


def _ins(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def steering_program(queues: int) -> bytes:
    """cBPF: A = the queue index of the datagram's source (see queue_of)."""
    fold = [  # A ^= A >> 16; A ^= A >> 8; A %= queues; return A
        _ins(MISC | TAX), _ins(ALU | RSH | K, 16), _ins(ALU | XOR | X),
        _ins(MISC | TAX), _ins(ALU | RSH | K, 8), _ins(ALU | XOR | X),
        _ins(ALU | MOD | K, queues), _ins(RET | A),
    ]  # fmt: skip
    ipv4 = [_ins(LD | W | ABS, SKF_NET_OFF + 12), *fold]  # the source address
    ipv6 = [  # the source's /64: octets 8-15 of the header
        _ins(LD | W | ABS, SKF_NET_OFF + 8), _ins(MISC | TAX),
        _ins(LD | W | ABS, SKF_NET_OFF + 12), _ins(ALU | XOR | X), *fold,
    ]  # fmt: skip
    head = [
        _ins(LD | B | ABS, SKF_NET_OFF),
        _ins(ALU | RSH | K, 4),
        _ins(JMP | JEQ | K, 6, jt=len(ipv4), jf=0),  # IPv6: skip the IPv4 branch
    ]
    return b"".join([*head, *ipv4, *ipv6])


def queue_of(source: bytes, queues: int) -> int:
    """The program's choice for a source of 16 octets (IPv4 as ::ffff:a.b.c.d)."""
    if source[:12] == bytes(10) + b"\xff\xff":
        a = int.from_bytes(source[12:], "big")
    else:
        a = int.from_bytes(source[:4], "big") ^ int.from_bytes(source[4:8], "big")
    a ^= a >> 16
    a ^= a >> 8
    return a % queues


def attach(sock: socket.socket, program: bytes) -> None:
    count = len(program) // 8
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HL", count, ctypes.addressof(buffer))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def open_group(family: int, listen: str, port: int, queues: int) -> list[socket.socket]:
    """`queues` sockets bound to (listen, port), steered by source; the first raises
    OSError (EADDRINUSE) when another process holds the port.

    Port 0 (any free port, as tests ask) is claimed, released and bound again, so another
    socket may take the ephemeral port in between: then a new one is drawn, a few times."""
    attempts = EPHEMERAL_ATTEMPTS if port == 0 else 1
    for attempt in range(attempts):
        try:
            return _bind_group(family, listen, port, queues)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _bind_group(family: int, listen: str, port: int, queues: int) -> list[socket.socket]:
    claim = socket.socket(family, socket.SOCK_DGRAM)
    try:
        claim.bind((listen, port))  # without SO_REUSEPORT: nobody else may hold it
        port = claim.getsockname()[1]
    finally:
        claim.close()
    group: list[socket.socket] = []
    try:
        for _ in range(queues):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            group.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, SO_REUSEPORT, 1)
            sock.bind((listen, port))
        if queues > 1:
            attach(group[0], steering_program(queues))
    except BaseException:
        for sock in group:
            sock.close()
        raise
    return group
