"""MN -> AR (hkp-ar) -> FreeRADIUS (HKS) -> AR -> MN over UDP on loopback: real
processes, real sockets (PROFILE P9)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator

import pytest

from hkp_lab.lab import Lab, wait_for
from hkp_radius.constants import HKEY_REQ_TOUT, NULL_COA, Status
from hkp_radius.mn import ErrorReceived, GaveUp, KeyEstablished, Kind, RequestSent
from mn_client import LossyTransport, SkippingClock, starter

from .mn_lab import ar_id, coa, exchange, needs_root_and_freeradius, node_for, running_lab, udp

pytestmark = [pytest.mark.integration, needs_root_and_freeradius]

COA = ipaddress.IPv6Address("2001:db8:1ab::100").packed


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab() as started:
        yield started


def ar_exchanges(lab: Lab, nai: str, count: int = 1) -> list[dict[str, object]]:
    """The AR's "exchange" log records for `nai`, once at least `count` are there
    (the AR logs just after it has sent its HKResp)."""
    found: list[dict[str, object]] = []

    def logged() -> bool:
        found[:] = _exchanges(lab, nai)
        return len(found) >= count

    wait_for(logged, 5.0, f"{count} exchange log lines for {nai}")
    return found


def _exchanges(lab: Lab, nai: str) -> list[dict[str, object]]:
    records = []
    for line in lab.ar_log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == "exchange" and record.get("nai") == nai:
            records.append(record)
    return records


def test_request_then_returning_mn_verifies(lab: Lab) -> None:
    node = node_for(lab, "alice")
    result = exchange(node, udp(lab), starter(node, Kind.REQUEST, ar_id(lab), COA))
    final = result.final
    assert isinstance(final, KeyEstablished) and not final.verified, result.events
    key = final.key
    assert key.spi >= 256 and key.lifetime == 3600 and len(key.hk) == 20
    assert key.ar_id == ar_id(lab) and key.care_of_address == COA
    issued = ar_exchanges(lab, "alice@lab.example")
    assert issued and issued[-1]["spi"] == key.spi and issued[-1]["outcome"] == "issued"
    assert "Accept 'alice@lab.example'" in lab.hks_log.read_text()

    # §6.2.3: the AR verifies the MN-AR MAC with the HK it got from FreeRADIUS, and the
    # MN verifies the answer with its own HK: both hold the same key.
    again = exchange(node, udp(lab), starter(node, Kind.VERIFY, ar_id(lab), COA))
    verified = again.final
    assert isinstance(verified, KeyEstablished) and verified.verified, again.events
    assert verified.key.spi == key.spi and verified.key.hk == key.hk
    assert ar_exchanges(lab, "alice@lab.example", 2)[-1]["outcome"] == "verified"


def test_hks_invalid_timestamp_reaches_the_mn_signed_and_it_recovers(lab: Lab) -> None:
    node = node_for(lab, "bob", clock_offset=-300.0)
    result = exchange(node, udp(lab), starter(node, Kind.REQUEST, ar_id(lab), coa(0x101)))
    errors = [e for e in result.events if isinstance(e, ErrorReceived)]
    assert [e.status for e in errors] == [Status.INVALID_TIMESTAMP]
    assert errors[0].authenticated  # the MN-HKS MAC of FreeRADIUS's HKResp verified
    assert isinstance(result.final, KeyEstablished), result.events
    assert abs(node.clock_offset) < 2.0
    sent = [e for e in result.events if isinstance(e, RequestSent)]
    assert len({e.message_id for e in sent}) == 2  # the corrected HKReq is a new one


def test_first_hkreq_lost_then_retransmitted(lab: Lab) -> None:
    """§6.2.1: the first HKReq is lost on the MN's link; the MN retransmits the same
    message when its timer fires (the clock skipped to it: no real second waited) and
    the retransmission gets the key."""
    node = node_for(lab, "carol")
    clock = SkippingClock()
    transport = LossyTransport(udp(lab), drop=1, on_drop=lambda: clock.skip_to(node.next_timer()))
    result = exchange(
        node, transport, starter(node, Kind.REQUEST, ar_id(lab), coa(0x102)), clock=clock
    )
    assert transport.dropped == 1 and transport.sent == 1
    sent = [e for e in result.events if isinstance(e, RequestSent)]
    assert [e.attempt for e in sent] == [1, 2]
    assert sent[0].message_id == sent[1].message_id
    final = result.final
    assert isinstance(final, KeyEstablished), result.events
    assert final.elapsed >= HKEY_REQ_TOUT  # sent again only when the timer fired


def test_signed_administratively_prohibited_stops_the_mn(lab: Lab) -> None:
    node = node_for(lab, "mallory")
    result = exchange(node, udp(lab), starter(node, Kind.REQUEST, ar_id(lab), coa(0x104)))
    (error,) = [e for e in result.events if isinstance(e, ErrorReceived)]
    assert error.status == Status.ADMINISTRATIVELY_PROHIBITED and error.authenticated
    assert isinstance(result.final, GaveUp)
    assert ar_id(lab) in node.prohibited


def test_indirect_refresh_with_null_coa_replaces_the_key(lab: Lab) -> None:
    node = node_for(lab, "dave")
    first = exchange(node, udp(lab), starter(node, Kind.REQUEST, ar_id(lab), coa(0x103))).final
    assert isinstance(first, KeyEstablished)
    result = exchange(node, udp(lab), starter(node, Kind.REFRESH, ar_id(lab), NULL_COA))
    final = result.final
    assert isinstance(final, KeyEstablished) and final.replaced, result.events
    assert final.key.care_of_address == NULL_COA and final.key.spi != first.key.spi
    assert node.keys.all() == [final.key]
