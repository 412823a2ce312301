"""A private FreeRADIUS instance running the HKS on loopback: for the tests and the lab.

Its own raddb (built from this repository's raddb/), log, pid file, replay database
and port, all under one work directory that the user FreeRADIUS runs as (freerad)
owns. The code FreeRADIUS loads is copied into that directory, so nothing it reads
lives under /root or the repository.

    with FreeRadiusInstance("/tmp/hks", users={"mn@example.net": hmk}) as hks:
        client = hks.client()          # a pyrad Client with our dictionary
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import hkp_radius
from hkp_radius.errors import ConfigError
from hkp_support.certs import CertFiles
from hkp_support.paths import FREERADIUS_MODULE_DIR as PACKAGE_DIR
from hkp_support.paths import FREERADIUS_MODULE_FILES as MODULE_FILES
from hkp_support.paths import RADDB_SOURCE
from hkp_support.process import POLL_INTERVAL as POLL_INTERVAL
from hkp_support.process import READY_TIMEOUT as READY_TIMEOUT
from hkp_support.process import STOP_TIMEOUT as STOP_TIMEOUT
from hkp_support.process import PrivateServer, free_port
from hkp_support.process import check_traversable as _check_traversable
from hkp_support.process import terminate as terminate

FREERADIUS = "/usr/sbin/freeradius"
FREERADIUS_USER = "freerad"
# FreeRADIUS's dictionaries, in $INCLUDE order; clients read dictionary.hkp only.
SERVER_DICTIONARIES = ("dictionary.hkp", "dictionary.hkp.internal")
STATUS_SERVER = 12
ACCESS_ACCEPT = 2
MESSAGE_AUTHENTICATOR = 80


RADSEC_SECRET = b"radsec"  # RFC 6614 §2.3

free_udp_port = free_port  # the name the lab and the tests know


def status_server(address: str, port: int, secret: bytes, timeout: float = 0.2) -> bool:
    """Send one Status-Server (RFC 5997, with Message-Authenticator) and say whether
    an Access-Accept came back. The socket is connected, so a closed port (ICMP port
    unreachable) answers False at once rather than after `timeout`."""
    identifier = secrets.randbelow(256)
    authenticator = secrets.token_bytes(16)
    attribute = bytes((MESSAGE_AUTHENTICATOR, 18)) + bytes(16)
    length = 20 + len(attribute)
    packet = bytes((STATUS_SERVER, identifier)) + length.to_bytes(2, "big") + authenticator
    mac = hmac.new(secret, packet + attribute, hashlib.md5).digest()
    packet += attribute[:2] + mac
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            sock.send(packet)
            reply = sock.recv(4096)
        except OSError:
            return False
    return len(reply) >= 20 and reply[0] == ACCESS_ACCEPT and reply[1] == identifier


# The site reads its client secret through a ${...} reference, and FreeRADIUS unescapes
# a backslash once more on that path: keep secrets to printable ASCII without \.
_SECRET_ALPHABET = frozenset(range(0x20, 0x7F)) - {ord("\\")}


def _checked_secret(secret: bytes) -> bytes:
    if not secret or not set(secret) <= _SECRET_ALPHABET:
        raise ConfigError(
            "secret: use printable ASCII without backslashes "
            "(FreeRADIUS re-reads the site's secret through a ${...} reference)"
        )
    return secret


def _quote(text: str) -> str:
    """A FreeRADIUS double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _set_item(text: str, key: str, value: str, source: str) -> str:
    """Replace the (first, uncommented) `key = ...` line of a config file."""
    pattern = re.compile(rf"^(\s*){re.escape(key)}\s*=.*$", re.MULTILINE)
    new, count = pattern.subn(lambda m: f"{m.group(1)}{key} = {value}", text, count=1)
    if count != 1:
        raise ConfigError(f"{source}: no '{key} = ' line to set")
    return new


def use_credential_module(site: str, module: str) -> str:
    """sites-available/hkp_hks with its one `hkp_users` line (authorize) replaced by
    `module`: the one-line change docs/hks.md describes for hkp_sql and hkp_ldap."""
    pattern = re.compile(r"^(\s*)hkp_users\s*$", re.MULTILINE)
    new, count = pattern.subn(lambda m: f"{m.group(1)}{module}", site)
    if count != 1:
        raise ConfigError("sites-available/hkp_hks: no single 'hkp_users' line to replace")
    return new


class FreeRadiusInstance(PrivateServer):
    """A private FreeRADIUS (3.2) on loopback running the hkp_hks virtual server."""

    program = "freeradius"

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        secret: bytes = b"hkp-test-secret",
        users: Mapping[str, bytes] | None = None,
        address: str = "127.0.0.1",
        require_timestamp: bool | None = False,
        allowed_prfs: Collection[str] | None = None,
        required_prf: str | None = None,
        allowed_mac_algorithms: Collection[str] | None = None,
        required_mac_algorithm: str | None = None,
        key_lifetime: int | None = None,
        hk_length: int | None = None,
        timestamp_window: float | None = None,
        prohibited_users: Collection[str] = (),
        authorization_policy: str | None = None,
        module_settings: Mapping[str, str] | None = None,
        replay_postgresql: str | None = None,
        credential_module: str = "hkp_users",
        extra_modules: Mapping[str, str] | None = None,
        suppress_secrets: bool = True,
        debug: bool = False,
        freeradius: str = FREERADIUS,
        run_as: str | None = FREERADIUS_USER,
        radsec: CertFiles | None = None,
        radsec_port: int | None = None,
    ) -> None:
        super().__init__()
        self.work_dir = Path(work_dir).resolve()
        self.address = address
        self.port = port if port is not None else free_udp_port(address)
        self.secret = _checked_secret(secret)
        self.users = dict(users or {})
        self.prohibited_users = frozenset(prohibited_users)
        self.authorization_policy = authorization_policy
        # Where the HMKs come from: the site's hkp_users line becomes this module
        # (the documented one-line change), which extra_modules (name: text) defines.
        self.credential_module = credential_module
        self.extra_modules = dict(extra_modules or {})
        self.suppress_secrets = suppress_secrets  # False only to show what it masks
        self.debug = debug
        self.freeradius = freeradius
        self.run_as = run_as if os.geteuid() == 0 else None
        # require_timestamp: False (the tests' default), True, or None for the shipped
        # setting of mods-available/hkp_hks (yes). module_settings: any other items.
        self.module_config: dict[str, str] = dict(module_settings or {})
        if require_timestamp is not None:
            self.module_config["require_timestamp"] = "yes" if require_timestamp else "no"
        if replay_postgresql is not None:  # a libpq connection string: shared state
            self.module_config["replay_store"] = "postgresql"
            self.module_config["replay_postgresql"] = _quote(replay_postgresql)
        if allowed_prfs is not None:
            self.module_config["allowed_prf"] = _quote(" ".join(allowed_prfs))
        if required_prf is not None:
            self.module_config["required_prf"] = _quote(required_prf)
        if allowed_mac_algorithms is not None:
            self.module_config["allowed_mac_algorithms"] = _quote(" ".join(allowed_mac_algorithms))
        if required_mac_algorithm is not None:
            self.module_config["required_mac_algorithm"] = _quote(required_mac_algorithm)
        for key, number in (
            ("key_lifetime", key_lifetime),
            ("hk_length", hk_length),
            ("timestamp_window", timestamp_window),
        ):
            if number is not None:
                self.module_config[key] = str(number)
        # RadSec (sites-available/hkp_hks_tls) beside UDP: the HKS's certificate and key
        # and the CA its clients' certificates must chain to (`radsec.ca`).
        self.radsec = radsec
        self.radsec_port = (
            (radsec_port or free_udp_port(address, socket.SOCK_STREAM)) if radsec else None
        )

    # ---- layout ----------------------------------------------------------------

    @property
    def raddb_dir(self) -> Path:
        return self.work_dir / "raddb"

    @property
    def lib_dir(self) -> Path:
        return self.work_dir / "lib"

    @property
    def dictionary_dir(self) -> Path:
        """A directory pyrad (`Dictionary(dir/"dictionary")`) and `radclient -D` accept."""
        return self.work_dir / "dictionary"

    @property
    def dictionary_path(self) -> Path:
        return self.dictionary_dir / "dictionary"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "log" / "radius.log"

    @property
    def pid_path(self) -> Path:
        return self.work_dir / "run" / "freeradius.pid"

    @property
    def replay_db_path(self) -> Path:
        return self.work_dir / "var" / "lib" / "freeradius" / "hkp_hks_replay.sqlite"

    # ---- building the raddb ------------------------------------------------------

    def prepare(self) -> None:
        """Write raddb, dictionaries and code under work_dir. Keeps var/ (the replay
        state) so that a restart sees the state of the previous run."""
        _check_traversable(self.work_dir, self.run_as)
        for sub in ("log", "run", "var/lib/freeradius", "dictionary"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        for sub in ("raddb", "lib"):
            shutil.rmtree(self.work_dir / sub, ignore_errors=True)
        self._copy_code()
        self._write_raddb()
        shutil.copy(RADDB_SOURCE / "dictionary.pyrad", self.dictionary_path)
        shutil.copy(RADDB_SOURCE / "dictionary.hkp", self.dictionary_dir / "dictionary.hkp")
        self._chown()

    def _copy_code(self) -> None:
        core = Path(hkp_radius.__file__).resolve().parent
        shutil.copytree(
            core, self.lib_dir / "hkp_radius", ignore=shutil.ignore_patterns("__pycache__")
        )
        (self.lib_dir / "freeradius_module").mkdir(parents=True)
        for name in MODULE_FILES:
            shutil.copy(PACKAGE_DIR / name, self.lib_dir / "freeradius_module" / name)

    def _write_raddb(self) -> None:
        raddb = self.raddb_dir
        for sub in (
            "mods-enabled", "sites-enabled", "policy.d", "mods-config/files", "mods-config/perl/hkp"
        ):  # fmt: skip
            (raddb / sub).mkdir(parents=True, exist_ok=True)
        commit_wait = "mods-config/perl/hkp/commit_wait.pl"  # mods-available/hkp_hks uses it
        shutil.copy(RADDB_SOURCE / commit_wait, raddb / commit_wait)
        user = self.run_as or pwd.getpwuid(os.geteuid()).pw_name
        conf = (RADDB_SOURCE / "private" / "radiusd.conf.in").read_text()
        conf = conf.replace("@WORK@", str(self.work_dir)).replace("@USER@", user)
        conf = conf.replace("@GROUP@", self._group(user))
        if not self.suppress_secrets:
            conf = _set_item(conf, "suppress_secrets", "no", "radiusd.conf")
        (raddb / "radiusd.conf").write_text(conf)
        for name in SERVER_DICTIONARIES:
            shutil.copy(RADDB_SOURCE / name, raddb / name)
        # The order matters: dictionary.hkp.internal extends dictionary.hkp.
        (raddb / "dictionary").write_text(
            "".join(f"$INCLUDE {name}\n" for name in SERVER_DICTIONARIES)
        )

        module = (RADDB_SOURCE / "mods-available" / "hkp_hks").read_text()
        module = _set_item(module, "python_path", _quote(str(self.lib_dir)), "hkp_hks")
        for key, value in self.module_config.items():
            module = _set_item(module, key, value, "hkp_hks")
        (raddb / "mods-enabled" / "hkp_hks").write_text(module)
        shutil.copy(RADDB_SOURCE / "mods-available" / "hkp_users", raddb / "mods-enabled")
        (raddb / "mods-config" / "files" / "hkp_users").write_text(self._users_file())

        for name, text in self.extra_modules.items():
            (raddb / "mods-enabled" / name).write_text(text)
        site = use_credential_module(
            (RADDB_SOURCE / "sites-available" / "hkp_hks").read_text(), self.credential_module
        )
        for key, value in (
            ("hkp_hks_listen_ipaddr", self.address),
            ("hkp_hks_listen_port", str(self.port)),
            ("hkp_hks_ar_ipaddr", self.address),
            ("hkp_hks_ar_secret", _quote(self.secret.decode("utf-8"))),
        ):
            site = _set_item(site, key, value, "sites-available/hkp_hks")
        (raddb / "sites-enabled" / "hkp_hks").write_text(site)
        if self.radsec is not None:
            self._write_radsec_site()

        shutil.copy(RADDB_SOURCE / "policy.d" / "hkp_hks", raddb / "policy.d")
        authorization = RADDB_SOURCE / "policy.d" / "hkp_hks_authorization"
        if self.authorization_policy is None:
            shutil.copy(authorization, raddb / "policy.d")
        else:
            (raddb / "policy.d" / "hkp_hks_authorization").write_text(
                f"hkp_hks_authorization {{\n{self.authorization_policy}\n}}\n"
            )

    def _write_radsec_site(self) -> None:
        assert self.radsec is not None and self.radsec_port is not None
        certs = self.raddb_dir / "certs" / "hkp_hks"
        certs.mkdir(parents=True, exist_ok=True)
        for source, name in (
            (self.radsec.certificate, "hks.pem"),
            (self.radsec.key, "hks.key"),
            (self.radsec.ca, "ca.pem"),
        ):
            shutil.copy(source, certs / name)
        site = (RADDB_SOURCE / "sites-available" / "hkp_hks_tls").read_text()
        for key, value in (
            ("hkp_hks_tls_listen_ipaddr", self.address),
            ("hkp_hks_tls_listen_port", str(self.radsec_port)),
            ("hkp_hks_tls_ar_ipaddr", self.address),
        ):
            site = _set_item(site, key, value, "sites-available/hkp_hks_tls")
        (self.raddb_dir / "sites-enabled" / "hkp_hks_tls").write_text(site)

    @staticmethod
    def _group(user: str) -> str:
        import grp

        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name

    def _users_file(self) -> str:
        lines = ["# generated by hkp_support/freeradius.py"]
        for nai, hmk in self.users.items():
            items = [f"HKP-HMK := 0x{hmk.hex()}"]
            if nai in self.prohibited_users:
                items.append("HKP-Authorization := Prohibit")
            lines.append(f"{_quote(nai)}\t{', '.join(items)}")
        return "\n".join(lines) + "\n"

    def _chown(self) -> None:
        if self.run_as is None:
            return
        entry = pwd.getpwnam(self.run_as)
        # Owned by freerad, closed to others (the users file holds HMKs); only the
        # work dir itself and the client dictionary are world-readable.
        for root, dirs, files in os.walk(self.work_dir):
            for name in [root, *(os.path.join(root, d) for d in dirs)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)
                os.chmod(name, 0o750)  # noqa: S103
            for name in files:
                path = os.path.join(root, name)
                os.chown(path, entry.pw_uid, entry.pw_gid)
                os.chmod(path, 0o600 if name.endswith(".key") else 0o640)
        os.chmod(self.work_dir, 0o755)  # noqa: S103 - traversable, lists nothing secret
        os.chmod(self.dictionary_dir, 0o755)  # noqa: S103 - public dictionaries
        for name in os.listdir(self.dictionary_dir):
            os.chmod(self.dictionary_dir / name, 0o644)

    # ---- running -----------------------------------------------------------------

    def check_config(self) -> subprocess.CompletedProcess[str]:
        """`freeradius -XC` on this instance's raddb (prepares it first)."""
        self.prepare()
        return subprocess.run(
            [self.freeradius, "-XC", "-d", str(self.raddb_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # PrivateServer: started in the foreground, ready once it answers a Status-Server.

    def command(self) -> list[str]:
        return [self.freeradius, "-X" if self.debug else "-f", "-d", str(self.raddb_dir)]

    @property
    def output_path(self) -> Path:
        # -X logs to stdout; -f writes the log itself and stdout gets start-up errors
        return self.log_path if self.debug else self.work_dir / "log" / "stdout.log"

    def answers(self) -> bool:
        return status_server(self.address, self.port, self.secret)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        texts = []
        for path in (self.log_path, self.work_dir / "log" / "stdout.log"):
            if path.exists():
                texts.append(path.read_text(errors="replace"))
        return "".join(texts)

    def client(self, timeout: float = 2.0, retries: int = 1) -> Any:
        """A pyrad Client for this instance, with our dictionary."""
        from pyrad.client import Client
        from pyrad.dictionary import Dictionary

        client = Client(
            server=self.address,
            authport=self.port,
            secret=self.secret,
            dict=Dictionary(str(self.dictionary_path)),
        )
        client.timeout = timeout
        client.retries = retries
        return client
