"""hkp-hks-install: add the HKS drop-in to an existing FreeRADIUS 3.2 raddb.

    hkp-hks-install [--raddb /etc/freeradius/3.0] [--lib-dir /usr/local/lib/hkp-radius]

Copies the code FreeRADIUS loads into --lib-dir, adds the raddb files of this
repository (never overwriting a file the operator has: a changed one is kept and the
shipped version written beside it as FILE.hkp-dist), enables the module and the
virtual server, and includes dictionary.hkp and dictionary.hkp.internal (in that
order) from raddb/dictionary. Refuses when a
python3 module instance is already enabled: FreeRADIUS 3.2 allows only one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

import hkp_radius
from freeradius_module.config import DEFAULT_REPLAY_DB
from hkp_support.paths import FREERADIUS_MODULE_DIR, FREERADIUS_MODULE_FILES, RADDB_SOURCE

PACKAGE_DIR = FREERADIUS_MODULE_DIR
# What FreeRADIUS imports: the adapter and its stdlib-only helpers.
MODULE_FILES = FREERADIUS_MODULE_FILES
DEFAULT_RADDB = "/etc/freeradius/3.0"
DEFAULT_LIB_DIR = "/usr/local/lib/hkp-radius"
OUR_MODULE = "mods-available/hkp_hks"
RADDB_FILES = (
    "dictionary.hkp",
    "dictionary.hkp.internal",
    OUR_MODULE,
    "mods-available/hkp_users",
    "mods-config/files/hkp_users",
    "policy.d/hkp_hks",
    "policy.d/hkp_hks_authorization",
    "sites-available/hkp_hks",
)
ENABLE_LINKS = (
    ("mods-enabled/hkp_hks", "../mods-available/hkp_hks"),
    ("mods-enabled/hkp_users", "../mods-available/hkp_users"),
    ("sites-enabled/hkp_hks", "../sites-available/hkp_hks"),
)
# In this order: dictionary.hkp.internal extends dictionary.hkp's vendor.
DICTIONARY_INCLUDES = ("$INCLUDE dictionary.hkp", "$INCLUDE dictionary.hkp.internal")
PYTHON3_INSTANCE = re.compile(r"^\s*python3(\s+[\w.-]+)?\s*\{", re.MULTILINE)
SUPPRESS_SECRETS = re.compile(r"^\s*suppress_secrets\s*=\s*(yes|true)\b", re.MULTILINE)


class InstallError(Exception):
    """Something the operator has to fix first; the message says what."""


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def enabled_python3_instances(raddb: Path) -> list[str]:
    """Files under mods-enabled/ (other than ours) that define a python3 instance."""
    found: list[str] = []
    enabled = raddb / "mods-enabled"
    if not enabled.is_dir():
        return found
    for entry in sorted(enabled.iterdir()):
        if entry.name == "hkp_hks" or not entry.is_file():
            continue
        try:
            text = entry.read_text(errors="replace")
        except OSError:
            continue
        if PYTHON3_INSTANCE.search(_strip_comments(text)):
            found.append(f"mods-enabled/{entry.name}")
    return found


class Installer:
    def __init__(
        self,
        raddb: Path,
        lib_dir: Path,
        replay_db: str | None,
        enable: bool,
        dry_run: bool,
    ) -> None:
        self.raddb = raddb
        self.lib_dir = lib_dir
        self.replay_db = replay_db
        self.enable = enable
        self.dry_run = dry_run
        self.report: list[str] = []

    def say(self, line: str) -> None:
        self.report.append(line)

    def run(self) -> None:
        self.check()
        self.install_code()
        for relative in RADDB_FILES:
            self.install_file(relative, self.shipped(relative))
        if self.enable:
            for link, target in ENABLE_LINKS:
                self.install_link(link, target)
        self.include_dictionary()
        self.ensure_replay_dir()
        self.warn_about_logging()

    def check(self) -> None:
        if not (self.raddb / "radiusd.conf").is_file():
            raise InstallError(f"{self.raddb}/radiusd.conf not found: pass --raddb DIR")
        self.missing_dictionary_includes()  # raises when their order is wrong
        others = enabled_python3_instances(self.raddb)
        if others:
            raise InstallError(
                f"{', '.join(others)} in {self.raddb} already enables a python3 module "
                "instance. FreeRADIUS 3.2 runs only one python3 instance per server (a "
                "second aborts start-up with 'drop_gil'), and the HKS needs it. Disable "
                f"it (e.g. rm {self.raddb}/{others[0]}) or run the HKS in its own "
                "FreeRADIUS, then run hkp-hks-install again. Nothing was changed."
            )

    def shipped(self, relative: str) -> str:
        text = (RADDB_SOURCE / relative).read_text()
        if relative == OUR_MODULE:
            text = re.sub(
                r"^(\s*)python_path = .*$",
                lambda m: f'{m.group(1)}python_path = "{self.lib_dir}"',
                text,
                count=1,
                flags=re.MULTILINE,
            )
            if self.replay_db is not None:
                text = re.sub(
                    r"^(\s*)replay_db = .*$",
                    lambda m: f'{m.group(1)}replay_db = "{self.replay_db}"',
                    text,
                    count=1,
                    flags=re.MULTILINE,
                )
        return text

    def _owner(self) -> tuple[int, int]:
        info = os.stat(self.raddb / "radiusd.conf")
        return info.st_uid, info.st_gid

    def install_file(self, relative: str, text: str) -> None:
        target = self.raddb / relative
        if target.exists():
            if target.read_text(errors="replace") == text:
                self.say(f"unchanged  {relative}")
                return
            self.say(f"kept       {relative} (yours differs; shipped one is {relative}.hkp-dist)")
            target = target.with_name(target.name + ".hkp-dist")
        else:
            self.say(f"added      {relative}")
        if self.dry_run:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        uid, gid = self._owner()
        if os.geteuid() == 0:
            os.chown(target, uid, gid)
        os.chmod(target, 0o640)

    def install_link(self, link: str, target: str) -> None:
        path = self.raddb / link
        if path.exists() or path.is_symlink():
            self.say(f"unchanged  {link}")
            return
        self.say(f"enabled    {link}")
        if not self.dry_run:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(target)

    def install_code(self) -> None:
        self.say(f"code       {self.lib_dir}/hkp_radius, {self.lib_dir}/freeradius_module")
        if self.dry_run:
            return
        core = Path(hkp_radius.__file__).resolve().parent
        shutil.rmtree(self.lib_dir / "hkp_radius", ignore_errors=True)
        shutil.copytree(
            core, self.lib_dir / "hkp_radius", ignore=shutil.ignore_patterns("__pycache__")
        )
        module_dir = self.lib_dir / "freeradius_module"
        module_dir.mkdir(parents=True, exist_ok=True)
        for name in MODULE_FILES:
            shutil.copy(PACKAGE_DIR / name, module_dir / name)
        for root, _dirs, files in os.walk(self.lib_dir):
            os.chmod(root, 0o755)  # noqa: S103 - code, no secrets: FreeRADIUS reads it
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)

    def missing_dictionary_includes(self) -> list[str]:
        """The DICTIONARY_INCLUDES raddb/dictionary lacks. Raises InstallError when the
        ones it has are in the wrong order (checked before anything is changed)."""
        path = self.raddb / "dictionary"
        text = path.read_text(errors="replace") if path.exists() else ""
        lines = [line.strip() for line in text.splitlines()]
        first, second = DICTIONARY_INCLUDES
        if second in lines and (first not in lines or lines.index(first) > lines.index(second)):
            raise InstallError(
                f"{path}: '{second}' must come after '{first}' (it extends the HKP "
                f"vendor defined there): put '{first}' above it. Nothing was changed."
            )
        return [include for include in DICTIONARY_INCLUDES if include not in lines]

    def include_dictionary(self) -> None:
        path = self.raddb / "dictionary"
        missing = self.missing_dictionary_includes()
        if not missing:
            self.say("unchanged  dictionary (already includes dictionary.hkp*)")
            return
        for include in missing:
            self.say(f"appended   '{include}' to dictionary")
        if self.dry_run:
            return
        text = path.read_text(errors="replace") if path.exists() else ""
        with path.open("a") as handle:
            if text and not text.endswith("\n"):
                handle.write("\n")
            handle.write("\n# hkp-radius (hkp-hks-install)\n")
            handle.write("".join(f"{include}\n" for include in missing))

    def ensure_replay_dir(self) -> None:
        directory = Path(self.replay_db or DEFAULT_REPLAY_DB).parent
        if directory.is_dir():
            return
        self.say(f"created    {directory} (replay state, owned by the FreeRADIUS user)")
        if self.dry_run:
            return
        directory.mkdir(parents=True, mode=0o750)
        if os.geteuid() == 0:
            os.chown(directory, *self._owner())

    def warn_about_logging(self) -> None:
        conf = (self.raddb / "radiusd.conf").read_text(errors="replace")
        if not SUPPRESS_SECRETS.search(_strip_comments(conf)):
            self.say(
                "WARNING    radiusd.conf: set 'suppress_secrets = yes' in log { } so that "
                "debug output masks HKP-HMK and the other secret-flagged attributes (docs/hks.md)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hkp-hks-install", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--raddb", default=DEFAULT_RADDB, help="FreeRADIUS configuration dir")
    parser.add_argument(
        "--lib-dir", default=DEFAULT_LIB_DIR, help="where to put the Python code FreeRADIUS loads"
    )
    parser.add_argument(
        "--replay-db",
        help="replay database path (default: the module's, under /var/lib/freeradius)",
    )
    parser.add_argument(
        "--no-enable", action="store_true", help="add files but do not enable module and site"
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would change")
    args = parser.parse_args(argv)
    installer = Installer(
        Path(args.raddb), Path(args.lib_dir), args.replay_db, not args.no_enable, args.dry_run
    )
    try:
        installer.run()
    except (InstallError, OSError) as exc:
        print(f"hkp-hks-install: {exc}", file=sys.stderr)
        return 2
    finally:
        for line in installer.report:
            print(line)
    print(
        "next: set the listener and AR secret in sites-available/hkp_hks, add HMKs to "
        "mods-config/files/hkp_users, ensure the replay_db directory is writable by the "
        f"FreeRADIUS user, then run: freeradius -XC -d {args.raddb}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
