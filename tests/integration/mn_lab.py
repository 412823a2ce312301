"""Helpers for the MN end-to-end tests: a real lab (FreeRADIUS with the HKS module and
`hkp-ar`) from hkp_lab.lab, and MN exchanges over real sockets."""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hkp_lab.lab import Lab
from hkp_radius.mn import MNConfig, MobileNode, Output
from mn_client import ExchangeResult, Transport, UdpTransport, run_exchange, system_random
from tests.integration.conftest import requires_freeradius

needs_root_and_freeradius = requires_freeradius  # never skipped by default (conftest)


@contextmanager
def running_lab(use_netns: bool = False) -> Iterator[Lab]:
    directory = Path(tempfile.mkdtemp(prefix="hkp-e2e-", dir="/tmp"))
    lab = Lab(directory, use_netns=use_netns)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(directory, ignore_errors=True)


def node_for(lab: Lab, who: str, **changes: object) -> MobileNode:
    identity = next(i for i in lab.identities if i.nai.startswith(who + "@"))
    values: dict[str, object] = {"nai": identity.nai.encode(), "hmk": identity.hmk}
    values.update(changes)
    clock_offset = float(values.pop("clock_offset", 0.0))  # type: ignore[arg-type]
    return MobileNode(MNConfig(**values), system_random, clock_offset=clock_offset)  # type: ignore[arg-type]


def coa(last: int) -> bytes:
    """A CoA of its own per MN: the AR binds each CoA to one NAI (§7.4)."""
    return ipaddress.IPv6Address(f"2001:db8:1ab::{last:x}").packed


def ar_id(lab: Lab) -> bytes:
    return ipaddress.IPv6Address(lab.ar_id).packed


def udp(lab: Lab, endpoint: tuple[str, int] | None = None) -> Transport:
    return UdpTransport({ar_id(lab): endpoint or (lab.ar_host, lab.ar_port)})


def exchange(
    node: MobileNode,
    transport: Transport,
    start: Callable[[float, float], list[Output]],
    clock: Callable[[], float] = time.monotonic,
) -> ExchangeResult:
    try:
        return run_exchange(node, transport, start, clock=clock)
    finally:
        transport.close()
