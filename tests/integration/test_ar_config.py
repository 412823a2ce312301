"""hkp-ar's configuration: validated at start, every error names the setting to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ar_proxy.config import load_config
from hkp_radius.ar.config import ARConfig, NullCoA
from hkp_radius.errors import ConfigError
from tests.ar_config_files import MINIMAL, write_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "ar_proxy" / "hkp-ar.conf.example"


def test_example_config_is_valid(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("/var/lib/hkp-ar/keys.sqlite", str(tmp_path / "k.sqlite"))
    config = load_config(write_config(tmp_path, text))
    assert config.udp_port == 54135 and config.udp_enabled and not config.raw_enabled
    assert config.coa_mode == "neighbour" and config.role.response_cache_time == 3.0
    assert [s.name for s in config.realms["example.net"].servers] == ["hks1", "hks2"]
    assert config.role.hks_deadline == 3.0 + 3.0 + 5.0
    assert config.role.null_coa is NullCoA.REFRESH and config.match_source
    assert config.role == ARConfig(hks_deadline=config.role.hks_deadline)  # the defaults


def test_realm_selection_like_proxy_conf(tmp_path: Path) -> None:
    """§6.3: "The domain name in the NAI is used to determine the Handover Key Server"."""
    text = (
        MINIMAL + "[home_server b]\nipaddr = ::1\nsecret = t\n[realm DEFAULT]\nhome_servers = b\n"
    )
    config = load_config(write_config(tmp_path, text))
    assert config.realm_for(b"alice@Example.NET").name == "example.net"  # type: ignore[union-attr]
    assert config.realm_for(b"x@other.org").name == "default"  # type: ignore[union-attr]
    assert config.realm_for(b"no-realm").name == "default"  # type: ignore[union-attr]
    assert load_config(write_config(tmp_path, MINIMAL)).realm_for(b"x@other.org") is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            ("address = 2001:db8::1", "address = 10.0.0.1"),
            "[ar] address = '10.0.0.1': write an IPv6",
        ),
        (("address = 2001:db8::1\n", ""), "[ar] address is required"),
        (("[ar]", "[ar]\ncolour = blue"), "unknown setting 'colour'"),
        (("[ar]", "[udp]\nport = 70000\n[ar]"), "[udp] port = '70000': must be from 0 to 65535"),
        (("[ar]", "[udp]\nenabled = maybe\n[ar]"), "[udp] enabled = 'maybe': write yes or no"),
        (("[ar]", "[udp]\nenabled = no\n[ar]"), "enable [udp] or [raw]"),
        (("home_servers = a", "home_servers = a z"), "no [home_server z] section"),
        (("secret = s\n", ""), "[home_server a]: secret is required"),
        (("[ar]", "[policy]\nhks_deadline = 2\n[ar]"), "hks_deadline = '2': must exceed"),
        (("[ar]", "[policy]\nmax_lifetime = 0\n[ar]"), "[policy] max_lifetime = '0'"),
        (
            ("[ar]", "[policy]\naccept_null_coa = sometimes\n[ar]"),
            "[policy] accept_null_coa = 'sometimes': write refresh",
        ),
        (
            ("[ar]", "[policy]\nretransmit_interval = 1\n[ar]"),
            "unknown setting 'retransmit_interval'",
        ),
        (("[ar]", "[coa_validation]\nmode = trusting\n[ar]"), "mode = 'trusting': write one of"),
        (("[ar]", "[coa_validation]\nmode = static\n[ar]"), "static_table is required"),
        (
            ("[ar]", "[coa_validation]\nneighbour_states = stale happy\n[ar]"),
            "'happy' is not one of",
        ),
        (
            ("[ar]", "[code_points]\nmh_type_hkreq = 251\n[ar]"),
            "[code_points] code points hkreq and hkresp",
        ),
        (("[ar]", "[proxy]\n[ar]"), "unknown section [proxy]"),
        (("[realm example.net]\nhome_servers = a", ""), "no [realm NAME] section"),
    ],
)
def test_errors_name_the_setting(tmp_path: Path, change: tuple[str, str], named: str) -> None:
    text = MINIMAL.replace(*change, 1)
    with pytest.raises(ConfigError) as error:
        load_config(write_config(tmp_path, text))
    assert named in str(error.value)
    assert str(tmp_path) in str(error.value)  # and the file


def test_daemon_refuses_bad_config_with_exit_2(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL.replace("ipaddr = 127.0.0.1", "ipaddr = nowhere"))
    result = subprocess.run(
        [sys.executable, "-m", "ar_proxy", "-c", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "[home_server a] ipaddr = 'nowhere': write an IP address" in result.stderr
    good = write_config(tmp_path, MINIMAL)
    check = subprocess.run(
        [sys.executable, "-m", "ar_proxy", "-c", str(good), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "configuration is valid" in check.stdout


def start_daemon(config: Path) -> subprocess.CompletedProcess[str]:
    """Run `hkp-ar -c CONFIG` to its exit (these configurations never get to ready)."""
    return subprocess.run(
        [sys.executable, "-m", "ar_proxy", "-c", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("store", ["a-directory", "not-a-database"])
def test_unusable_key_store_fails_start_with_exit_3(tmp_path: Path, store: str) -> None:
    """A key store that cannot be opened is a start-up failure the log line names (exit
    3), not a traceback."""
    path = tmp_path / store
    if store == "a-directory":
        path.mkdir()
    else:
        path.write_bytes(b"these are not the keys you are looking for" * 100)
    config = write_config(tmp_path, MINIMAL.replace("{store}", str(path)))
    result = start_daemon(config)
    assert result.returncode == 3, result.stderr
    assert '"event": "startup-failed"' in result.stderr and "Traceback" not in result.stderr


def test_unreadable_dictionary_is_a_configuration_error_naming_the_setting(
    tmp_path: Path,
) -> None:
    """A pyrad dictionary with a syntax error stops start-up with exit 2 and a line
    naming `[ar] dictionary`, not a pyrad traceback."""
    broken = tmp_path / "dictionary"
    broken.write_text("ATTRIBUTE\tUser-Name\n")  # too few fields: pyrad's ParseError
    text = MINIMAL.replace("[ar]\n", f"[ar]\ndictionary = {broken}\n", 1)
    config = write_config(tmp_path, text)
    result = start_daemon(config)
    assert result.returncode == 2, result.stderr
    assert "[ar] dictionary" in result.stderr and "Traceback" not in result.stderr
