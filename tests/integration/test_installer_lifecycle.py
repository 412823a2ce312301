"""Issue 13, point 1: hkp-hks-install into a copy of Debian's stock raddb through a
whole life: install, the operator edits a shipped file, an upgrade that ships a changed
version of that file and of another, uninstall. After each step freeradius -XC passes,
the edited file is kept, the new shipped copy lies where FreeRADIUS loads nothing, no
stray copy is loaded, and uninstall leaves the raddb byte for byte as it was."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import hkp_radius
from freeradius_module.install import main as install_main
from hkp_support.paths import RADDB_SOURCE

from .conftest import requires_freeradius
from .test_freeradius_config import check, stock_copy  # noqa: F401 - the fixture

pytestmark = requires_freeradius

POLICY = "policy.d/hkp_hks_authorization"
SITE = "sites-available/hkp_hks"
EDIT = "\n# the operator's note: kept across upgrades\n"


def snapshot(raddb: Path) -> dict[str, tuple[str, bytes | str, int]]:
    """Every entry of the raddb: kind, content (or link target), mode."""
    found: dict[str, tuple[str, bytes | str, int]] = {}
    for root, dirs, files in os.walk(raddb):
        for name in dirs + files:
            path = Path(root) / name
            relative = str(path.relative_to(raddb))
            info = path.lstat()
            if path.is_symlink():
                found[relative] = ("link", os.readlink(path), info.st_mode)
            elif path.is_dir():
                found[relative] = ("dir", "", info.st_mode)
            else:
                found[relative] = ("file", path.read_bytes(), info.st_mode)
    return found


def config_ok(raddb: Path) -> str:
    result = check(raddb)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "hkp_hks: ready" in result.stdout
    return result.stdout


def loaded_files(output: str) -> list[str]:
    return [
        line.split("including configuration file ", 1)[1]
        for line in output.splitlines()
        if "including configuration file " in line
    ]


def no_stray_copies(raddb: Path, output: str) -> None:
    """FreeRADIUS read no file of ours twice, nor any copy under hkp-radius/."""
    loaded = loaded_files(output)
    assert not [f for f in loaded if "/hkp-radius/" in f or f.endswith((".hkp-dist", ".dpkg-dist"))]
    policies = [f for f in loaded if "/policy.d/hkp_hks" in f]
    assert sorted(policies) == sorted({f"{raddb}/policy.d/hkp_hks", f"{raddb}/{POLICY}"}), policies
    assert not list(raddb.glob("**/*.hkp-dist"))


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = install_main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_install_edit_upgrade_uninstall(stock_copy, capsys, tmp_path):  # noqa: F811
    raddb = stock_copy / "raddb"
    lib = str(stock_copy / "lib")
    common = (
        "--raddb",
        str(raddb),
        "--lib-dir",
        lib,
        "--replay-db",
        str(stock_copy / "var" / "replay.sqlite"),
    )
    before = snapshot(raddb)

    # --dry-run changes nothing and says so
    rc, out, _ = run(capsys, *common, "--dry-run")
    assert rc == 0 and "dry run: nothing was changed" in out and "(dry run) added" in out
    assert snapshot(raddb) == before and not Path(lib).exists()

    # install
    rc, out, err = run(capsys, *common)
    assert rc == 0, err
    no_stray_copies(raddb, config_ok(raddb))
    manifest = json.loads((raddb / "hkp-radius" / "manifest.json").read_text())
    assert manifest["files"][POLICY]["sha256"] and manifest["links"]
    rc, out, _ = run(capsys, *common, "--check")
    assert rc == 0 and "edited" not in out

    # the operator edits a shipped policy
    policy = raddb / POLICY
    edited = policy.read_text() + EDIT
    policy.write_text(edited)
    rc, out, _ = run(capsys, *common, "--check")
    assert rc == 0 and f"edited     {POLICY}" in out
    no_stray_copies(raddb, config_ok(raddb))

    # an upgrade ships a changed policy and a changed site
    source = tmp_path / "raddb-v2"
    shutil.copytree(RADDB_SOURCE, source)
    (source / POLICY).write_text((source / POLICY).read_text() + "\n# shipped in v2\n")
    (source / SITE).write_text((source / SITE).read_text() + "\n# shipped in v2\n")
    rc, out, err = run(capsys, *common, "--source", str(source))
    assert rc == 0, err
    assert f"kept       {POLICY}" in out and f"upgraded   {SITE}" in out
    assert policy.read_text() == edited  # the edit is kept
    assert (raddb / SITE).read_text().endswith("# shipped in v2\n")  # unedited: replaced
    dist = raddb / "hkp-radius" / "dist" / POLICY
    assert dist.read_text().endswith("# shipped in v2\n")
    output = config_ok(raddb)
    no_stray_copies(raddb, output)
    assert str(dist) not in output
    rc, out, _ = run(capsys, *common, "--check")
    assert f"pending    {POLICY}" in out

    # uninstall refuses to drop the edit silently, then --purge restores the raddb
    rc, _, err = run(capsys, *common, "--uninstall")
    assert rc == 2 and POLICY in err and "--purge" in err
    assert policy.read_text() == edited
    rc, out, _ = run(capsys, *common, "--uninstall", "--purge", "--dry-run")
    assert rc == 0 and "nothing was changed" in out and policy.exists()
    rc, out, err = run(capsys, *common, "--uninstall", "--purge")
    assert rc == 0, err
    after = snapshot(raddb)
    assert after.keys() == before.keys(), set(after) ^ set(before)
    assert after == before
    assert not (Path(lib) / "hkp_radius").exists()
    result = check(raddb)  # the stock raddb again
    assert result.returncode == 0 and "hkp_hks" not in result.stdout


def test_version_and_check_without_install(stock_copy, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as exited:
        install_main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"hkp-hks-install {hkp_radius.__version__}"
    rc, _, err = run(capsys, "--raddb", str(stock_copy / "raddb"), "--check")
    assert rc == 2 and "nothing is installed" in err
