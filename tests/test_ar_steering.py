"""The AR's SO_REUSEPORT group on its UDP port (ar_proxy.steering.open_group)."""

from __future__ import annotations

import errno
import socket

import pytest

from ar_proxy import steering


def test_port_taken_by_another_process_is_refused() -> None:
    holder = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    holder.bind(("::1", 0))
    try:
        with pytest.raises(OSError) as info:
            steering.open_group(socket.AF_INET6, "::1", holder.getsockname()[1], 4)
        assert info.value.errno == errno.EADDRINUSE
    finally:
        holder.close()


def test_port_zero_draws_again_when_the_ephemeral_port_is_taken_in_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CI failure of 2026-12-03: between the claim and the group's bind another socket
    took the drawn port. Reproduced by making the first draw land on a port held by a real
    socket; the second draw must succeed, on another port."""
    holder = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    holder.bind(("::1", 0))
    taken = holder.getsockname()[1]
    real = steering._bind_group
    ports: list[int] = []

    def racing(family: int, listen: str, port: int, queues: int) -> list[socket.socket]:
        ports.append(port)
        return real(family, listen, taken if len(ports) == 1 else port, queues)

    monkeypatch.setattr(steering, "_bind_group", racing)
    try:
        group = steering.open_group(socket.AF_INET6, "::1", 0, 4)
        try:
            bound = {sock.getsockname()[1] for sock in group}
            assert len(group) == 4 and len(bound) == 1 and bound != {taken}
            assert ports == [0, 0]
        finally:
            for sock in group:
                sock.close()
    finally:
        holder.close()


def test_a_fixed_port_is_not_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    holder = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    holder.bind(("::1", 0))
    calls: list[int] = []
    real = steering._bind_group

    def counting(family: int, listen: str, port: int, queues: int) -> list[socket.socket]:
        calls.append(port)
        return real(family, listen, port, queues)

    monkeypatch.setattr(steering, "_bind_group", counting)
    try:
        with pytest.raises(OSError):
            steering.open_group(socket.AF_INET6, "::1", holder.getsockname()[1], 2)
        assert len(calls) == 1
    finally:
        holder.close()
