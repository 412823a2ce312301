"""Issue 3, point 1: freeradius -XC accepts the drop-in in a copy of Debian's stock
raddb and the private instance's config; the installer refuses a second python3."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from freeradius_module.install import main as install_main
from hkp_support.freeradius import FREERADIUS, FreeRadiusInstance

from .conftest import requires_freeradius, work_dir

pytestmark = requires_freeradius
STOCK_RADDB = Path("/etc/freeradius/3.0")


@pytest.fixture
def stock_copy():
    """A copy of Debian's /etc/freeradius/3.0 (never modified itself)."""
    base = work_dir("dropin")
    raddb = base / "raddb"
    # cp -a: FreeRADIUS reads the copy as freerad, so keep Debian's owners and modes
    subprocess.run(["cp", "-a", str(STOCK_RADDB), str(raddb)], check=True)
    os.chmod(base, 0o755)
    conf = raddb / "radiusd.conf"
    # the copy lives elsewhere: point raddbdir at it, as a relocated install would
    text = conf.read_text().replace("raddbdir = /etc/freeradius/3.0", f"raddbdir = {raddb}")
    conf.write_text(text)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def check(raddb: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FREERADIUS, "-XC", "-d", str(raddb)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_private_instance_config_is_accepted(fresh_dir):
    result = FreeRadiusInstance(fresh_dir, users={"mn@example.net": bytes(64)}).check_config()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "Configuration appears to be OK" in result.stdout


def test_dropin_into_stock_debian_raddb(stock_copy, capsys):
    raddb = stock_copy / "raddb"
    before = {
        p.name: p.read_bytes() for p in (raddb / "mods-config" / "files").iterdir() if p.is_file()
    }
    rc = install_main(
        [
            "--raddb",
            str(raddb),
            "--lib-dir",
            str(stock_copy / "lib"),
            "--replay-db",
            str(stock_copy / "var" / "replay.sqlite"),
        ]
    )
    assert rc == 0, capsys.readouterr()
    result = check(raddb)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "Loaded virtual server hkp_hks" in result.stdout or "server hkp_hks" in result.stdout
    assert "hkp_hks: ready" in result.stdout
    # operator files untouched; a second run changes nothing
    after = {
        p.name: p.read_bytes() for p in (raddb / "mods-config" / "files").iterdir() if p.is_file()
    }
    assert {k: after[k] for k in before} == before
    dictionary = (raddb / "dictionary").read_text()
    assert install_main(["--raddb", str(raddb), "--lib-dir", str(stock_copy / "lib")]) == 0
    assert (raddb / "dictionary").read_text() == dictionary
    assert "unchanged  sites-available/hkp_hks" in capsys.readouterr().out


def test_dropin_keeps_operator_changes(stock_copy, capsys):
    raddb = stock_copy / "raddb"
    site = raddb / "sites-available" / "hkp_hks"
    site.write_text("# the operator's own version\n")
    assert (
        install_main(["--raddb", str(raddb), "--lib-dir", str(stock_copy / "lib"), "--no-enable"])
        == 0
    )
    assert site.read_text() == "# the operator's own version\n"
    assert not (raddb / "sites-available" / "hkp_hks.hkp-dist").exists()
    assert (raddb / "hkp-radius" / "dist" / "sites-available" / "hkp_hks").exists()
    assert "kept" in capsys.readouterr().out


def test_dropin_refuses_a_second_python3_instance(stock_copy, capsys):
    raddb = stock_copy / "raddb"
    (raddb / "mods-enabled" / "python3").symlink_to("../mods-available/python3")
    assert install_main(["--raddb", str(raddb), "--lib-dir", str(stock_copy / "lib")]) == 2
    error = capsys.readouterr().err
    assert "mods-enabled/python3" in error and "only one python3" in error
    assert not (raddb / "mods-enabled" / "hkp_hks").exists()
    assert not (raddb / "sites-available" / "hkp_hks").exists()


def test_dropin_includes_the_dictionaries_in_order(stock_copy, capsys):
    """dictionary.hkp.internal extends dictionary.hkp's vendor: the installer appends
    the includes in that order, completes an older install that has only the first,
    and refuses (changing nothing) a raddb/dictionary that has them reversed."""
    raddb = stock_copy / "raddb"
    lib = str(stock_copy / "lib")
    dictionary = raddb / "dictionary"
    original = dictionary.read_text()
    dictionary.write_text(original + "$INCLUDE dictionary.hkp\n")  # an older install
    assert install_main(["--raddb", str(raddb), "--lib-dir", lib, "--no-enable"]) == 0
    lines = [line.strip() for line in dictionary.read_text().splitlines()]
    first = lines.index("$INCLUDE dictionary.hkp")
    assert lines.index("$INCLUDE dictionary.hkp.internal") > first
    assert lines.count("$INCLUDE dictionary.hkp") == 1
    assert (raddb / "dictionary.hkp.internal").exists()

    reversed_text = original + "$INCLUDE dictionary.hkp.internal\n$INCLUDE dictionary.hkp\n"
    dictionary.write_text(reversed_text)
    (raddb / "policy.d" / "hkp_hks").unlink()
    capsys.readouterr()
    assert install_main(["--raddb", str(raddb), "--lib-dir", lib, "--no-enable"]) == 2
    assert "must come after" in capsys.readouterr().err
    assert dictionary.read_text() == reversed_text
    assert not (raddb / "policy.d" / "hkp_hks").exists()  # nothing was changed


@pytest.mark.parametrize("secret", [b"", b"a\\b", b"a\nb", b"caf\xc3\xa9"])
def test_private_instance_refuses_secrets_freeradius_would_alter(
    secret: bytes, tmp_path: Path
) -> None:
    """A secret FreeRADIUS would re-read differently through the site's ${...} reference
    is refused up front, naming the setting, instead of an AR whose requests all fail."""
    from hkp_radius.errors import ConfigError

    with pytest.raises(ConfigError, match="secret"):
        FreeRadiusInstance(tmp_path, secret=secret)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"hk_length": 0}, "hk_length"),
        # "²" passes str.isdigit() but not int(): once a ValueError that escaped
        # instantiate, which rlm_python3 does not treat as a failed start-up.
        ({"allowed_mac_algorithms": ["²"]}, "allowed_mac_algorithms"),
    ],
)
def test_bad_module_config_stops_start_up(fresh_dir, settings, named):
    """A module config the HKS cannot run with stops FreeRADIUS at start-up, and the
    log names the setting, instead of a server that fails every request."""
    instance = FreeRadiusInstance(fresh_dir, users={"mn@example.net": bytes(64)}, **settings)
    try:
        with pytest.raises(RuntimeError, match="exited at start-up") as caught:
            instance.start()
    finally:
        instance.stop()  # should it have started after all
    assert f"hkp_hks: cannot start: hkp_hks config: {named}" in str(caught.value)
