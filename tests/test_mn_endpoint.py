"""`hkp-mn --udp` endpoints: every form parses, and a bad one is a usage error that says
how to write it (never a traceback); likewise a bad raw --source. The driver's deadline
for one exchange follows the configured timers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hkp_radius.mn import MNConfig
from mn_client import UDP_DEFAULT_PORT, exchange_deadline, parse_endpoint
from mn_client.cli import main


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


def test_cli_reports_an_unusable_raw_source_as_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HKP_MN_HMK", "00" * 64)
    code = main(
        ["request", "--nai", "a@example.net", "--ar", "2001:db8::1", "--raw",
         "--source", "2001:db8::99", "--keys", str(tmp_path / "keys.json")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    # As root the bind fails (no such local address); otherwise the raw socket does.
    assert "--source '2001:db8::99': cannot bind" in err or "needs root" in err


def test_the_exchange_deadline_follows_the_configured_timers() -> None:
    defaults = MNConfig(nai=b"a@example.net", hmk=bytes(64))
    assert exchange_deadline(defaults) == 35.5  # P10 timers: 2 x 4 x 1 s + 3 x 7.5 s + 5 s
    slow = MNConfig(nai=b"a@example.net", hmk=bytes(64), request_timeout=10.0)
    # `hkp-mn --timeout 10`: four unanswered transmissions must not outlast the driver.
    assert exchange_deadline(slow) > 2 * 4 * 10.0


def test_cli_reports_an_unknown_algorithm_as_a_usage_error() -> None:
    """A PRF given as a non-ASCII digit ("²".isdigit() is True) is a usage error too."""
    result = subprocess.run(
        [sys.executable, "-m", "mn_client.cli", "request", "--nai", "a@example.net",
         "--ar", "2001:db8::1", "--udp", "[::1]:9", "--prf", "\u00b2"],
        capture_output=True, text=True, env={"HKP_MN_HMK": "00" * 64, "PATH": "/usr/bin"},
        check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "unknown PRF" in result.stderr
    assert "Traceback" not in result.stderr
