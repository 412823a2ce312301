"""Issue 13, point 4: tshark with the shipped dissector (wireshark/hkp.lua) decodes an
HKReq and the HKResp a real hkp-ar answered (type, Message ID, options, status, SPI),
both as the UDP encapsulation (PROFILE P9) and as raw IPv6 Next Header 135, where any
other Mobility Header still goes to Wireshark's own MIPv6 dissector."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hkp_radius.constants import Status
from hkp_radius.wire.messages import with_checksum
from tests.ar_helpers import COA, NAI, build_hkreq, decode_hkresp, wall_stamp

from .ar_fixtures import REPO, ArProcess, MobileNodeSocket

pytestmark = pytest.mark.integration
DISSECTOR = REPO / "wireshark" / "hkp.lua"
LINKTYPE_RAW = 101  # pcap: raw IP, the version nibble tells IPv4 from IPv6
MN = ipaddress.IPv6Address("2001:db8::100").packed
AR = ipaddress.IPv6Address("2001:db8::1").packed
UDP, MOBILITY_HEADER = 17, 135
FIELDS = ("hkp.message", "hkp.type", "hkp.message_id", "hkp.option", "hkp.status",
          "hkp.spi", "hkp.nai", "hkp.coa", "mip6.mhtype")  # fmt: skip


def ipv6(source: bytes, destination: bytes, next_header: int, payload: bytes) -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), next_header, 64)
        + source
        + destination
        + payload
    )


def udp(source_port: int, destination_port: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload


def write_pcap(path: Path, packets: list[bytes]) -> None:
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW)
    for number, packet in enumerate(packets):
        data += struct.pack("<IIII", 1_700_000_000 + number, 0, len(packet), len(packet)) + packet
    path.write_bytes(data)


def tshark(capture: Path, *options: str) -> list[list[str]]:
    command = [
        "tshark",
        "-n",
        "-r",
        str(capture),
        "-X",
        f"lua_script:{DISSECTOR}",
        *options,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    for field in FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Lua: Error" not in result.stderr and "hkp.lua" not in result.stderr, result.stderr
    return [line.split("|") for line in result.stdout.splitlines()]


def test_tshark_decodes_a_real_hkreq_and_hkresp(hkp_ar: ArProcess, tmp_path: Path) -> None:
    assert shutil.which("tshark"), "scripts/install.sh installs tshark"
    mn = MobileNodeSocket(hkp_ar.udp_port)
    try:
        request = build_hkreq(message_id=95, coa=COA, timestamp=wall_stamp())
        response = mn.exchange(request)
        mn_port = mn.sock.getsockname()[1]
    finally:
        mn.close()
    decoded = decode_hkresp(response)
    assert decoded.status == Status.SUCCESS
    port = hkp_ar.udp_port
    binding_update = bytes([59, 1, 5, 0, 0, 0]) + bytes(10)  # MH type 5: not ours
    capture = tmp_path / "hkp.pcap"
    write_pcap(capture, [
        ipv6(MN, AR, UDP, udp(mn_port, port, request)),
        ipv6(AR, MN, UDP, udp(port, mn_port, response)),
        ipv6(MN, AR, MOBILITY_HEADER, with_checksum(MN, AR, request)),
        ipv6(AR, MN, MOBILITY_HEADER, with_checksum(AR, MN, response)),
        ipv6(MN, AR, MOBILITY_HEADER, binding_update),
    ])  # fmt: skip
    rows = tshark(capture, "-o", f"hkp.udp_port:{port}")
    assert len(rows) == 5
    for row in (rows[0], rows[2]):
        assert row[:3] == ["HKReq", "250", "95"], row
        assert row[4:] == ["", "", NAI.decode(), "2001:db8::100", ""], row
        options = [name for name in row[3].split(",") if not name.startswith("Pad")]
        assert options == ["Mobile Node Identifier", "MN-Nonce", "Timestamp", "MN-HKS MAC"]
    for row in (rows[1], rows[3]):
        assert row[:3] == ["HKResp", "251", "95"], row
        assert row[4:6] == ["0", str(decoded.spi)], row
        options = [name for name in row[3].split(",") if not name.startswith("Pad")]
        assert "HKS-Nonce" in options and "Timestamp" in options, row
        assert options[-1] == "MN-AR MAC", row
    assert rows[4][0] == "" and rows[4][-1] == "5"  # Wireshark's MIPv6 dissector still has it


def test_the_code_points_are_preferences(tmp_path: Path) -> None:
    """With hkp.hkreq_type moved, 250 is no longer an HKReq (and 240 would be)."""
    request = build_hkreq(message_id=96, coa=COA)
    capture = tmp_path / "moved.pcap"
    write_pcap(capture, [ipv6(MN, AR, UDP, udp(40000, 54135, request))])
    (default,) = tshark(capture)
    assert default[:3] == ["HKReq", "250", "96"]
    (moved,) = tshark(capture, "-o", "hkp.hkreq_type:240")
    assert moved[0] == ""
