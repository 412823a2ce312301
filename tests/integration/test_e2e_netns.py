"""MN -> AR -> FreeRADIUS -> AR -> MN over raw IPv6 (Next Header 135, PROFILE P9), the
MN and the AR each in their own network namespace joined by a veth pair."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator

import pytest

from hkp_lab import netns
from hkp_lab.lab import Lab
from hkp_radius.constants import Status
from hkp_radius.mn import ErrorReceived, KeyEstablished, Kind, RequestSent
from mn_client import RawIPv6Transport, Transport, starter

from .mn_lab import ar_id, exchange, needs_root_and_freeradius, node_for, running_lab

pytestmark = [pytest.mark.integration, pytest.mark.netns, needs_root_and_freeradius]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab(use_netns=True) as started:
        yield started
    assert started.topology is None  # stop() deleted the namespaces


def raw(lab: Lab) -> Transport:
    assert lab.topology is not None
    with netns.inside(lab.topology.mn_ns):
        return RawIPv6Transport()


def coa(lab: Lab, index: int) -> bytes:
    assert lab.topology is not None
    return ipaddress.IPv6Address(lab.topology.coa(index)).packed


def test_namespaces_exist_and_are_separate(lab: Lab) -> None:
    assert lab.topology is not None
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.topology.mn_ns in names and lab.topology.ar_ns in names
    assert lab.topology.mn_ns.startswith("hkplab-mn-")
    assert ipaddress.IPv6Address(lab.ar_id) == ipaddress.IPv6Address(lab.topology.ar_address)


def test_request_and_verify_over_raw_ipv6(lab: Lab) -> None:
    node = node_for(lab, "alice")
    result = exchange(node, raw(lab), starter(node, Kind.REQUEST, ar_id(lab), coa(lab, 0)))
    final = result.final
    assert isinstance(final, KeyEstablished) and not final.verified, result.events
    # A fresh veth passes the first HKReq (no DAD holding neighbour discovery back).
    assert [e.attempt for e in result.events if isinstance(e, RequestSent)] == [1]
    assert final.key.spi >= 256 and final.key.lifetime == 3600
    again = exchange(node, raw(lab), starter(node, Kind.VERIFY, ar_id(lab), coa(lab, 0)))
    verified = again.final
    assert isinstance(verified, KeyEstablished) and verified.verified, again.events
    assert verified.key.spi == final.key.spi


def test_invalid_timestamp_over_raw_ipv6(lab: Lab) -> None:
    node = node_for(lab, "bob", clock_offset=600.0)
    result = exchange(node, raw(lab), starter(node, Kind.REQUEST, ar_id(lab), coa(lab, 1)))
    (error,) = [e for e in result.events if isinstance(e, ErrorReceived)]
    assert error.status == Status.INVALID_TIMESTAMP and error.authenticated
    assert isinstance(result.final, KeyEstablished), result.events
