"""`hkp-mn --udp` endpoints: every form parses, and a bad one is a usage error that says
how to write it (never a traceback)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mn_client.transport import UDP_DEFAULT_PORT, parse_endpoint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[2001:db8::1]:54135", ("2001:db8::1", 54135)),
        ("[::1]", ("::1", UDP_DEFAULT_PORT)),
        ("127.0.0.1:9", ("127.0.0.1", 9)),
        ("::1", ("::1", UDP_DEFAULT_PORT)),
        ("ar.example", ("ar.example", UDP_DEFAULT_PORT)),
    ],
)
def test_endpoint_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["[::1", "[nothost]:1", "host:port", "h:0", "h:70000", ":5"])
def test_bad_endpoints_say_how_to_write_them(text: str) -> None:
    with pytest.raises(ValueError, match=r"HOST|host and a port"):
        parse_endpoint(text)


def test_cli_reports_a_bad_endpoint_as_a_usage_error() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mn_client.cli",
            "request",
            "--nai",
            "a@example.net",
            "--ar",
            "2001:db8::1",
            "--udp",
            "[::1]:port",
        ],
        capture_output=True,
        text=True,
        env={"HKP_MN_HMK": "00" * 64, "PATH": "/usr/bin"},
        check=False,
    )
    assert result.returncode != 0
    assert "--udp" in result.stderr and "[::1]:54135" in result.stderr
    assert "Traceback" not in result.stderr
