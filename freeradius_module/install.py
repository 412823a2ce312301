"""hkp-hks-install: add the HKS drop-in to an existing FreeRADIUS 3.2 raddb.

    hkp-hks-install [--raddb /etc/freeradius/3.0] [--lib-dir /usr/local/lib/hkp-radius]
    hkp-hks-install --check | --uninstall [--purge] | --dry-run | --version

Copies the code FreeRADIUS loads into --lib-dir, adds the raddb files of this
repository, enables the module and the virtual server, and includes dictionary.hkp and
dictionary.hkp.internal (in that order) from raddb/dictionary. Everything it does is
recorded, with SHA-256 checksums, in RADDB/hkp-radius/manifest.json (a directory
FreeRADIUS never reads). An upgrade replaces the files the operator did not edit and
keeps those they did, writing the new shipped version under RADDB/hkp-radius/dist/
(never beside the file: policy.d/ and mods-enabled/ load every file in them).
--uninstall removes exactly what the manifest lists. Refuses when a python3 module
instance is already enabled: FreeRADIUS 3.2 allows only one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
    # HMKs from SQL (docs/hks.md "HMKs from SQL or LDAP"): available, not enabled.
    "mods-available/hkp_sql",
    "mods-config/sql/hkp/postgresql/schema.sql",
    "mods-config/sql/hkp/postgresql/example.sql",
    "mods-config/sql/hkp/sqlite/schema.sql",
    "mods-config/sql/hkp/sqlite/example.sql",
    "mods-available/hkp_ldap",
    "mods-config/ldap/hkp/hkp.ldif",
    "mods-config/ldap/hkp/example.ldif",
    # The post-auth wait for the replay commit (mods-available/hkp_hks, replay_commit).
    "mods-config/perl/hkp/commit_wait.pl",
    "policy.d/hkp_hks",
    "policy.d/hkp_hks_authorization",
    "sites-available/hkp_hks",
    # RadSec (RFC 6614): installed, not enabled; it needs the operator's certificates
    # (docs/hks.md "RadSec").
    "sites-available/hkp_hks_tls",
)
# Directories only hkp-radius uses (created on install, removed on uninstall when empty),
# deepest first.
OWN_DIRS = (
    "mods-config/sql/hkp/postgresql",
    "mods-config/sql/hkp/sqlite",
    "mods-config/sql/hkp",
    "mods-config/ldap/hkp",
    "mods-config/ldap",
    "mods-config/perl/hkp",
    "mods-config/perl",
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


# Our own directory in the raddb: FreeRADIUS includes only radiusd.conf and what it
# names (mods-enabled/, sites-enabled/, policy.d/ ...), never this.
STATE_DIR = "hkp-radius"
MANIFEST = f"{STATE_DIR}/manifest.json"
DIST_DIR = f"{STATE_DIR}/dist"
MANIFEST_FORMAT = 1
DICTIONARY_BLOCK = "\n# hkp-radius (hkp-hks-install)\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        source: Path = RADDB_SOURCE,
    ) -> None:
        self.raddb = raddb
        self.lib_dir = lib_dir
        self.replay_db = replay_db
        self.enable = enable
        self.dry_run = dry_run
        self.source = source
        self.report: list[str] = []
        self.manifest = self.read_manifest()
        self.files: dict[str, dict[str, object]] = dict(self.manifest.get("files", {}))  # type: ignore[call-overload]
        self.links: list[str] = list(self.manifest.get("links", []))  # type: ignore[call-overload]

    def say(self, line: str) -> None:
        self.report.append(("(dry run) " if self.dry_run else "") + line)

    # ---- the manifest ---------------------------------------------------------------

    def read_manifest(self) -> dict[str, object]:
        path = self.raddb / MANIFEST
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InstallError(
                f"{path}: unreadable ({exc}); move it away to start afresh"
            ) from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise InstallError(f"{path}: not a format {MANIFEST_FORMAT} manifest")
        return data

    def write_manifest(self) -> None:
        data = {
            "format": MANIFEST_FORMAT,
            "version": hkp_radius.__version__,
            "lib_dir": str(self.lib_dir),
            "code": bool(self.manifest.get("code", True)),
            "files": self.files,
            "links": self.links,
            "dictionary": self.manifest.get("dictionary", ""),
            "state_dir_created": self.manifest.get("state_dir_created", True),
        }
        self.say(f"recorded   {MANIFEST}")
        if self.dry_run:
            return
        self.write(self.raddb / MANIFEST, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def write(self, target: Path, text: str) -> None:
        if not target.parent.exists():
            missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
            target.parent.mkdir(parents=True)
            if os.geteuid() == 0:
                for directory in missing:
                    os.chown(directory, *self._owner())
        target.write_text(text)
        if os.geteuid() == 0:
            os.chown(target, *self._owner())
        os.chmod(target, 0o640)

    # ---- install / upgrade ----------------------------------------------------------

    def run(self) -> None:
        self.check()
        if not self.manifest:
            self.manifest = {"state_dir_created": not (self.raddb / STATE_DIR).exists()}
        self.install_code()
        for relative in RADDB_FILES:
            self.install_file(relative, self.shipped(relative))
        if self.enable:
            for link, target in ENABLE_LINKS:
                self.install_link(link, target)
        self.include_dictionary()
        self.ensure_replay_dir()
        self.write_manifest()
        self.warn_about_logging()
        if self.dry_run:
            self.report.append("dry run: nothing was changed")

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
        text = (self.source / relative).read_text()
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
        """Add a file, or upgrade it. A file is the operator's when it existed before we
        installed it, or when it no longer has the checksum we recorded: then it stays
        as it is and the shipped version goes to DIST_DIR, which nothing loads."""
        target = self.raddb / relative
        dist = self.raddb / DIST_DIR / relative
        new_sum = sha256(text.encode())
        entry = self.files.get(relative)
        if target.exists():
            current = sha256(target.read_bytes())
            ours = entry is not None and not entry.get("preexisting") and entry["sha256"] == current
            if current == new_sum:
                self.say(f"unchanged  {relative}")
                if entry is None:  # identical to ours but not put there by us: leave it
                    self.files[relative] = {"sha256": new_sum, "preexisting": True}
                elif not entry.get("preexisting"):  # the operator merged the new version
                    entry["sha256"] = new_sum
                self.drop_dist(relative)
                return
            if not ours:
                self.say(
                    f"kept       {relative} (yours differs; shipped one is {DIST_DIR}/{relative})"
                )
                if entry is None:
                    self.files[relative] = {"sha256": current, "preexisting": True}
                self.files[relative]["dist"] = new_sum
                if not self.dry_run:
                    self.write(dist, text)
                return
            self.say(f"upgraded   {relative}")
        else:
            self.say(f"added      {relative}")
        self.files[relative] = {"sha256": new_sum}
        if self.dry_run:
            return
        self.drop_dist(relative)
        self.write(target, text)

    def drop_dist(self, relative: str) -> None:
        dist = self.raddb / DIST_DIR / relative
        entry = self.files.get(relative)
        if entry is not None:
            entry.pop("dist", None)
        if dist.exists() and not self.dry_run:
            dist.unlink()

    def install_link(self, link: str, target: str) -> None:
        path = self.raddb / link
        if path.exists() or path.is_symlink():
            self.say(f"unchanged  {link}")
            return
        self.say(f"enabled    {link}")
        self.links.append(link)
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
        text = path.read_text(errors="replace") if path.exists() else ""
        block = ("\n" if text and not text.endswith("\n") else "") + DICTIONARY_BLOCK
        block += "".join(f"{include}\n" for include in missing)
        self.manifest["dictionary"] = str(self.manifest.get("dictionary", "")) + block
        if self.dry_run:
            return
        with path.open("a") as handle:
            handle.write(block)

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
                "WARNING    radiusd.conf: set 'suppress_secrets = yes' in log { }: without it "
                "debug output (-X) prints every HMK read from sql or ldap (hkp_sql, "
                "hkp_ldap) or the users file in clear; with it FreeRADIUS masks HKP-HMK and "
                "the other secret-flagged attributes (docs/hks.md)"
            )

    # ---- check / uninstall ----------------------------------------------------------

    def drift(self) -> tuple[list[str], list[str], list[str]]:
        """(edited, missing, pending): files the operator changed since we wrote them,
        files we installed that are gone, files with a newer shipped copy in DIST_DIR."""
        edited, missing, pending = [], [], []
        for relative, entry in sorted(self.files.items()):
            path = self.raddb / relative
            if not path.exists():
                missing.append(relative)
            elif not entry.get("preexisting") and sha256(path.read_bytes()) != entry["sha256"]:
                edited.append(relative)
            if "dist" in entry:
                pending.append(relative)
        return edited, missing, pending

    def check_installed(self) -> int:
        if not self.manifest:
            raise InstallError(f"{self.raddb / MANIFEST} not found: nothing is installed")
        edited, missing, pending = self.drift()
        self.say(f"installed  version {self.manifest.get('version')} in {self.raddb}")
        for relative in edited:
            self.say(f"edited     {relative} (kept on upgrade and uninstall needs --purge)")
        for relative in missing:
            self.say(f"MISSING    {relative}: run hkp-hks-install again to restore it")
        for relative in pending:
            self.say(f"pending    {relative}: merge {DIST_DIR}/{relative} into it by hand")
        for link in self.links:
            if not (self.raddb / link).is_symlink():
                self.say(f"MISSING    {link}")
                missing.append(link)
        return 1 if missing else 0

    def uninstall(self, purge: bool) -> None:
        if not self.manifest:
            raise InstallError(f"{self.raddb / MANIFEST} not found: nothing to uninstall")
        edited, _missing, _pending = self.drift()
        if edited and not purge:
            raise InstallError(
                f"you edited {', '.join(edited)}: back them up if you need them and run "
                "hkp-hks-install --uninstall --purge to remove them too. Nothing was changed."
            )
        for link in self.links:
            if (self.raddb / link).is_symlink():
                self.say(f"disabled   {link}")
                if not self.dry_run:
                    (self.raddb / link).unlink()
        for relative, entry in sorted(self.files.items()):
            path = self.raddb / relative
            if entry.get("preexisting") or not path.exists():
                continue
            self.say(f"removed    {relative}")
            if not self.dry_run:
                path.unlink()
        for relative in OWN_DIRS:  # deepest first; kept when the operator added files
            directory = self.raddb / relative
            if directory.is_dir() and not any(directory.iterdir()):
                self.say(f"removed    {relative}/")
                if not self.dry_run:
                    directory.rmdir()
        block = str(self.manifest.get("dictionary", ""))
        dictionary = self.raddb / "dictionary"
        if block and dictionary.exists():
            text = dictionary.read_text()
            if block in text:
                self.say("restored   dictionary (the includes we appended removed)")
                if not self.dry_run:
                    dictionary.write_text(text.replace(block, "", 1))
            else:
                self.say(f"WARNING    dictionary: remove {DICTIONARY_INCLUDES} by hand")
        lib = Path(str(self.manifest.get("lib_dir", self.lib_dir)))
        self.say(f"removed    {lib}/hkp_radius, {lib}/freeradius_module")
        if not self.dry_run:
            shutil.rmtree(lib / "hkp_radius", ignore_errors=True)
            shutil.rmtree(lib / "freeradius_module", ignore_errors=True)
            shutil.rmtree(self.raddb / DIST_DIR, ignore_errors=True)
            (self.raddb / MANIFEST).unlink()
            if self.manifest.get("state_dir_created", True):
                try:
                    (self.raddb / STATE_DIR).rmdir()
                except OSError:
                    self.say(f"kept       {STATE_DIR}/ (it holds files we did not put there)")
        self.say("kept       the replay database (FreeRADIUS's state, not ours)")
        if self.dry_run:
            self.report.append("dry run: nothing was changed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hkp-hks-install", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {hkp_radius.__version__}")
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
    parser.add_argument(
        "--source",
        type=Path,
        default=RADDB_SOURCE,
        help="the raddb files to install (default: the ones shipped with this package)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would change, change nothing"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--check",
        action="store_true",
        help="compare the raddb with the manifest: edited, missing, pending files (1: missing)",
    )
    action.add_argument("--uninstall", action="store_true", help="remove what the manifest lists")
    parser.add_argument(
        "--purge", action="store_true", help="with --uninstall: remove the files you edited too"
    )
    args = parser.parse_args(argv)
    rc = 0
    try:
        installer = Installer(
            Path(args.raddb),
            Path(args.lib_dir),
            args.replay_db,
            not args.no_enable,
            args.dry_run,
            args.source,
        )
    except InstallError as exc:
        print(f"hkp-hks-install: {exc}", file=sys.stderr)
        return 2
    try:
        if args.check:
            rc = installer.check_installed()
        elif args.uninstall:
            installer.uninstall(args.purge)
        else:
            installer.run()
    except (InstallError, OSError) as exc:
        print(f"hkp-hks-install: {exc}", file=sys.stderr)
        return 2
    finally:
        for line in installer.report:
            print(line)
    if not (args.check or args.uninstall or args.dry_run):
        print(
            "next: set the listener and AR secret in sites-available/hkp_hks, add HMKs to "
            "mods-config/files/hkp_users, ensure the replay_db directory is writable by the "
            f"FreeRADIUS user, then run: freeradius -XC -d {args.raddb}"
        )
    return rc


if __name__ == "__main__":
    sys.exit(main())
