"""P11 through the real daemons (issue 12): an MN gets an HK from hkp-ar and FreeRADIUS,
sends the AR (its PAR) an FBU authenticated with it and gets an authenticated FBack;
FBUs with a wrong key, another SPI, an edited body or a replayed Sequence # get nothing
and a `fbu-refused` log line each, and the daemon goes on answering."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator

import pytest

from hkp_lab.lab import Lab, wait_for
from hkp_radius.crypto.fmip import sign_fmip, verify_badf
from hkp_radius.mn import KeyEstablished, Kind
from hkp_radius.wire.fmip import (
    AlternateCareOfAddress,
    BindingAuthorizationFMIP,
    FastBindingAck,
    FastBindingUpdate,
    decode_fmip,
)
from mn_client import UdpTransport, starter

from .mn_lab import ar_id, exchange, needs_root_and_freeradius, node_for, running_lab

pytestmark = [pytest.mark.integration, needs_root_and_freeradius]

MN_ADDRESS = "::ffff:127.0.0.77"  # the MN's own address: its CoA at the PAR
COA = ipaddress.IPv6Address(MN_ADDRESS).packed
NCOA = ipaddress.IPv6Address("2001:db8:2::77").packed
REPLY_WAIT = 5.0  # bound on waiting for an FBack that must come


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab() as started:
        yield started


def _ar_events(lab: Lab, event: str) -> list[dict[str, object]]:
    found = []
    for line in lab.ar_log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            found.append(record)
    return found


def _fbu(sequence: int, spi: int) -> FastBindingUpdate:
    return FastBindingUpdate(
        sequence=sequence,
        lifetime=15,
        badf=BindingAuthorizationFMIP(spi),
        options=(AlternateCareOfAddress(NCOA),),
    )


def test_fbu_with_the_hk_gets_fback_and_forgeries_are_refused(lab: Lab) -> None:
    node = node_for(lab, "alice")
    transport = UdpTransport({ar_id(lab): (lab.ar_host, lab.ar_port)}, source=MN_ADDRESS)
    result = exchange(node, transport, starter(node, Kind.REQUEST, ar_id(lab), COA))
    final = result.final
    assert isinstance(final, KeyEstablished), result.events
    hk, spi, par = final.key.hk, final.key.spi, ar_id(lab)

    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind((MN_ADDRESS, 0))
    sock.settimeout(REPLY_WAIT)
    target = (lab.ar_host, lab.ar_port)
    try:
        # Forgeries first: each refused with its reason, none answered, none of them
        # advancing the SPI's Sequence # (the good FBU after them carries 1).
        forged = {
            "wrong key": sign_fmip(_fbu(1, spi), bytes(len(hk)), COA, par),
            "other SPI": sign_fmip(_fbu(1, spi ^ 1), hk, COA, par),
            "edited": bytearray(sign_fmip(_fbu(1, spi), hk, COA, par)),
        }
        forged["edited"][10] ^= 0x01  # the Lifetime, after signing
        for wire in forged.values():
            sock.sendto(bytes(wire), target)
        wait_for(lambda: len(_ar_events(lab, "fbu-refused")) >= 3, 10.0, "3 refusals")
        reasons = [r["reason"] for r in _ar_events(lab, "fbu-refused")]
        assert reasons.count("the BADF Authenticator does not verify") == 2, reasons
        assert "no unexpired HK under this SPI" in reasons

        good = sign_fmip(_fbu(1, spi), hk, COA, par)
        sock.sendto(good, target)
        answer, _ = sock.recvfrom(2048)
        fback = decode_fmip(answer)
        assert isinstance(fback, FastBindingAck)
        assert fback.status == 0 and fback.sequence == 1 and fback.badf.spi == spi
        assert verify_badf(answer, fback.badf, hk, COA, par)
        # The log line is written off the loop, possibly after the FBack left.
        wait_for(lambda: _ar_events(lab, "fbu-accepted"), 10.0, "the fbu-accepted line")
        accepted = _ar_events(lab, "fbu-accepted")
        assert accepted[-1]["spi"] == spi and accepted[-1]["new_coa"] == "2001:db8:2::77"
        assert accepted[-1]["nai"] == "alice@lab.example"

        sock.sendto(good, target)  # the same FBU again: a replay
        wait_for(lambda: len(_ar_events(lab, "fbu-refused")) >= 4, 10.0, "the replay refused")
        assert "replay" in str(_ar_events(lab, "fbu-refused")[-1]["reason"])
        sock.sendto(sign_fmip(_fbu(2, spi), hk, COA, par), target)
        assert decode_fmip(sock.recvfrom(2048)[0]).sequence == 2  # still answering
    finally:
        sock.close()
    assert hk.hex() not in lab.ar_log.read_text()
