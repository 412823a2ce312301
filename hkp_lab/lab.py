"""The lab's parts: a private FreeRADIUS with the HKS (freeradius_module.instance), an
AR (`hkp-ar` as a subprocess), the MN identities, and how to stop them again, also from
another process (`hkp-lab down`)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hkp_support.certs import RadSecCerts, make_radsec_certs
from hkp_support.freeradius import FreeRadiusInstance, free_udp_port, terminate
from hkp_support.labstate import endpoints_path, processes_path
from hkp_support.paths import RADDB_SOURCE
from hkp_support.postgresql import PostgresCluster
from hkp_support.process import spawn

from . import netns
from .pool import STORES, home_server_lines, postmaster_pid

REPO_ROOT = Path(__file__).resolve().parent.parent
LAB_REALM = "lab.example"
PROHIBITED = f"mallory@{LAB_REALM}"  # the HKS's users file marks her Prohibit (§6.4)
NAMES = ("alice", "bob", "carol", "dave")
UDP_AR_ID = "2001:db8:1ab::1"  # P9: over UDP the AR-ID is configuration only
AR_READY_TIMEOUT = 20.0  # the AR starts in well under a second; be generous on CI
STOP_TIMEOUT = 10.0
AR_PORT_ATTEMPTS = 5  # draws of a free UDP port for the lab AR (see _start_ar)
POLL = 0.02  # polling interval of deadline-bound waits (files, /proc)
HMK_LENGTH = 64  # draft §6.1: at least 64 octets


# The lab stages load (hkp-mn load --lab, benchmarks/whole_path.py): admission limits far
# above it. The production defaults are shown against floods in tests/integration/test_ar_flood.py.
STAGING_ADMISSION = (
    "[admission]",
    "source_rate = 100000",
    "source_burst = 100000",
    "nai_rate = 100000",
    "nai_burst = 100000",
    "max_in_flight = 4096",
)


class LabError(Exception):
    """Something the lab cannot do; the message says what to fix."""


@dataclass(frozen=True)
class Identity:
    nai: str
    hmk: bytes = field(repr=False)


def make_identities() -> list[Identity]:
    names = [f"{n}@{LAB_REALM}" for n in NAMES] + [PROHIBITED]
    return [Identity(nai, secrets.token_bytes(HMK_LENGTH)) for nai in names]


# Identities for load generation (`hkp-mn load --lab`, benchmarks/mn_load.py), apart from
# the scenario identities. The load generator keeps one exchange per identity in flight
# (mn_client.load), so -c needs as many identities; and an MN does not reuse a Message ID
# with one AR within MESSAGE_ID_REUSE_GUARD (4 s), so one identity sustains at most 64
# exchanges/s: 256 allow 256 in flight and ~16,000 keys/s.
LOAD_IDENTITIES = 256


def make_load_identities() -> list[Identity]:
    return [
        Identity(f"load-{n:02d}@{LAB_REALM}", secrets.token_bytes(HMK_LENGTH))
        for n in range(LOAD_IDENTITIES)
    ]


def wait_for(condition: Any, timeout: float, what: str) -> None:
    """Poll `condition()` until true or raise LabError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL)  # polling interval of a deadline-bound wait


def ar_command(config: Path) -> list[str]:
    """`hkp-ar -c CONFIG`, installed or from this source tree."""
    script = Path(sys.executable).parent / "hkp-ar"
    if script.exists():
        return [str(script), "-c", str(config)]
    code = "import sys; from ar_proxy.daemon import main; sys.exit(main())"
    return [sys.executable, "-c", code, "-c", str(config)]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO_ROOT)]))
    return env


def spawn_ar(
    work: Path, config_text: str, log_path: Path, detach: bool = False
) -> subprocess.Popen[bytes]:
    """Write work/hkp-ar.conf and start `hkp-ar` on it, its output to `log_path`."""
    config = work / "hkp-ar.conf"
    config.write_text(config_text)
    os.chmod(config, 0o600)  # it holds the RADIUS secret
    return spawn(
        ar_command(config), log_path, cwd=REPO_ROOT, env=child_env(), start_new_session=detach
    )


def wait_ar_ready(process: subprocess.Popen[bytes], log_path: Path, name: str) -> None:
    """Return once the AR logged its ready line; LabError (with its log) if it exits first
    or does not within AR_READY_TIMEOUT."""

    def ready() -> bool:
        if process.poll() is not None:
            raise LabError(f"{name} exited with {process.returncode}")
        return '"event": "ready"' in log_path.read_text(errors="replace")

    try:
        wait_for(ready, AR_READY_TIMEOUT, f"{name}'s ready line")
    except LabError as exc:
        raise LabError(f"{exc}\n{log_tail(log_path)}") from None


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` of a log, indented for the lab's messages ("" if unreadable)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    | " + line for line in text.splitlines()[-lines:])


class Lab:
    """Start with `start()`, describe with `endpoints()`, stop with `stop()`."""

    def __init__(
        self,
        directory: Path,
        *,
        use_netns: bool = False,
        hks_count: int = 1,
        store: str = "sqlite",
        udp_radius: bool = False,
    ) -> None:
        if store not in STORES:
            raise LabError(f"--store {store}: use {' or '.join(STORES)}")
        if hks_count < 1:
            raise LabError("--hks: at least 1")
        if hks_count > 1 and store != "postgresql":
            # Each HKS with its own SQLite file would accept a replay another accepted.
            raise LabError("--hks N > 1 needs --store postgresql (one shared replay state)")
        self.directory = directory
        self.use_netns = use_netns
        self.hks_count = hks_count
        self.store = store
        self.hks_servers: list[FreeRadiusInstance] = []
        self.postgres: PostgresCluster | None = None
        # AR-HKS: RadSec (RFC 6614) with a lab CA by default (draft §7.1); RADIUS over
        # UDP with `udp_radius` (hkp-lab --udp-radius), and for a pool of several HKS
        # (the lab's pools run over UDP; docs/lab.md).
        self.udp_radius = udp_radius or hks_count > 1
        self.certs: RadSecCerts | None = None
        self.identities = make_identities()
        self.load_identities = make_load_identities()
        self.secret = secrets.token_hex(16)
        self.hks: FreeRadiusInstance | None = None
        self.ar_process: subprocess.Popen[bytes] | None = None
        self.topology: netns.Topology | None = None
        self.ar_id = UDP_AR_ID
        # UDP: the AR listens on 127.0.0.1 (as ::ffff:127.0.0.1); each lab MN sends from
        # its own 127.0.0.0/8 address, so each has its own Key CoA (docs/lab.md).
        self.ar_host = "::ffff:127.0.0.1"
        self.ar_port = 0

    @property
    def ar_log(self) -> Path:
        return self.directory / "ar" / "ar.log"

    @property
    def ar_control(self) -> Path:
        """The AR's control socket: `hkp-ar status --socket PATH`, `hkp-ar keys`."""
        return self.directory / "ar" / "control.sock"

    @property
    def hks_log(self) -> Path:
        assert self.hks is not None
        return self.hks.log_path

    @property
    def hks_logs(self) -> list[Path]:
        return [server.log_path for server in self.hks_servers]

    def start(self, detach: bool = False) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o755)  # noqa: S103 - user freerad must reach the HKS's dir
        try:
            self._start_hks()
            if self.use_netns:
                try:
                    self.topology = netns.create(self.hks_address)
                except netns.NetnsError as exc:
                    raise LabError(f"cannot make the network namespaces: {exc}") from None
                self.ar_id = self.topology.ar_address
            self._start_ar(detach)
            self._save_processes()
        except BaseException:
            self.stop()
            raise

    @property
    def hks_address(self) -> str:
        return "127.0.0.1"

    @property
    def radius_transport(self) -> str:
        """How the AR talks to the HKS, as hkp-lab prints it."""
        if self.udp_radius:
            return "RADIUS over UDP (--udp-radius): only the HK is hidden"
        return "RadSec (RADIUS over TLS, RFC 6614), certificates of a lab CA"

    def _start_hks(self) -> None:
        if not self.udp_radius:
            self.certs = make_radsec_certs(
                self.directory / "pki", server_addresses=[self.hks_address]
            )
        replay: str | None = None
        if self.store == "postgresql":
            self.postgres = PostgresCluster(self.directory / "postgresql")
            try:
                self.postgres.start()
            except (RuntimeError, OSError) as exc:
                raise LabError(f"PostgreSQL did not start: {exc}") from None
            replay = self.postgres.conninfo()
        for index in range(1, self.hks_count + 1):
            server = FreeRadiusInstance(
                self.directory / ("hks" if index == 1 else f"hks{index}"),
                secret=self.secret.encode(),
                users={i.nai: i.hmk for i in (*self.identities, *self.load_identities)},
                prohibited_users=[PROHIBITED],
                address=self.hks_address,
                require_timestamp=None,  # the shipped default (yes), as in production
                replay_postgresql=replay,
                radsec=self.certs.server if self.certs else None,
            )
            self.hks_servers.append(server)
            self.hks = self.hks_servers[0]
            try:
                server.start()
            except RuntimeError as exc:
                raise LabError(f"the HKS (FreeRADIUS) did not start: {exc}") from None

    def ar_common_lines(
        self, address: str, nas_identifier: str, work: Path, namespace: str | None
    ) -> list[str]:
        """What every lab AR's config says: [ar] (its address, key store in `work`, our
        dictionary, its namespace if any), permissive CoA validation, info logging."""
        return [
            "[ar]",
            f"address = {address}",
            f"nas_identifier = {nas_identifier}",
            f"key_store = {work / 'keys.sqlite3'}",
            f"dictionary = {RADDB_SOURCE / 'dictionary.pyrad'}",
            *([f"netns = {namespace}"] if namespace else []),
            "[coa_validation]",
            "mode = permissive",
            "[log]",
            "level = info",
        ]

    def _ar_config(self) -> str:
        assert self.hks is not None
        work = self.directory / "ar"
        raw = self.topology is not None
        namespace = self.topology.ar_ns if self.topology is not None else None
        lines = [
            *self.ar_common_lines(self.ar_id, "hkp-lab-ar", work, namespace),
            "[udp]",
            f"enabled = {'no' if raw else 'yes'}",
            f"listen = {self.ar_host}",
            f"port = {self.ar_port}",
            "[raw]",
            f"enabled = {'yes' if raw else 'no'}",
            "[control]",
            f"socket = {self.ar_control}",
            *STAGING_ADMISSION,
        ]
        if len(self.hks_servers) == 1:
            lines += [*self.home_server_lines(), "[realm DEFAULT]", "home_servers = lab-hks"]
        else:
            host = self.topology.hks_address if self.topology else self.hks.address
            lines += home_server_lines(host, [s.port for s in self.hks_servers], self.secret)
        return "\n".join(lines) + "\n"

    def home_server_lines(self, name: str = "lab-hks") -> list[str]:
        """[home_server NAME] for the lab's HKS, and [tls] when it is RadSec."""
        assert self.hks is not None
        address = self.topology.hks_address if self.topology else self.hks.address
        lines = [f"[home_server {name}]", f"ipaddr = {address}"]
        if self.certs is None:
            lines += [f"port = {self.hks.port}", f"secret = {self.secret}"]
        else:
            lines += ["proto = tls", f"port = {self.hks.radsec_port}"]
        lines += ["response_window = 1.0", "retries = 2"]
        if self.certs is not None:
            lines += [
                "[tls]",
                f"ca_file = {self.certs.client.ca}",
                f"certificate_file = {self.certs.client.certificate}",
                f"private_key_file = {self.certs.client.key}",
                f"server_name = {self.certs.server_name}",
            ]
        return lines

    def _start_ar(self, detach: bool) -> None:
        work = self.directory / "ar"
        work.mkdir(parents=True, exist_ok=True)
        # A free port is drawn, released and handed to hkp-ar, so another socket (the
        # HKS's own draw among them) may take it in between: then the AR says it cannot
        # bind, and a new port is drawn. Its config keeps the port that worked (restarts).
        attempts = 1 if self.topology else AR_PORT_ATTEMPTS
        for attempt in range(attempts):
            if self.topology is None:
                self.ar_port = free_udp_port(self.ar_host)
            self.ar_process = spawn_ar(work, self._ar_config(), self.ar_log, detach)
            try:
                wait_ar_ready(self.ar_process, self.ar_log, "hkp-ar")
                return
            except LabError as exc:
                if "cannot bind" not in str(exc) or attempt == attempts - 1:
                    raise

    def ar_log_tail(self, lines: int = 20) -> str:
        return log_tail(self.ar_log, lines)

    def endpoints(self) -> dict[str, Any]:
        assert self.hks is not None
        return {
            "ar": {
                "transport": "raw-ipv6" if self.topology else "udp",
                "address": self.topology.ar_address if self.topology else self.ar_host,
                "port": None if self.topology else self.ar_port,
                "ar_id": self.ar_id,
                "netns": self.topology.ar_ns if self.topology else None,
            },
            "mn": {
                "netns": self.topology.mn_ns if self.topology else None,
                "address": self.topology.mn_address if self.topology else None,
            },
            "hks": {
                "address": self.hks.address,
                "port": self.hks.port,
                "radius": "udp" if self.certs is None else "radsec",
                "radsec_port": self.hks.radsec_port,
                "ca_file": str(self.certs.client.ca) if self.certs else None,
                "secret": self.secret,
                "dictionary_dir": str(self.hks.dictionary_dir),
            },
            "identities": [
                {"nai": i.nai, "hmk": i.hmk.hex(), "prohibited": i.nai == PROHIBITED}
                for i in self.identities
            ],
            "load_identities": [{"nai": i.nai, "hmk": i.hmk.hex()} for i in self.load_identities],
            "state_dir": str(self.directory),
            "logs": {"ar": str(self.ar_log), "hks": str(self.hks.log_path)},
            "hks_servers": [
                {
                    "name": name,
                    "port": server.port,
                    "log": str(server.log_path),
                    "pid": server.process.pid if server.process else None,
                }
                for name, server in zip(self.hks_names, self.hks_servers, strict=True)
            ],
            "store": self.store,
            "ar_control": str(self.ar_control),
        }

    @property
    def hks_names(self) -> list[str]:
        """The AR's [home_server] names, in the order of hks_servers."""
        return ["lab-hks" if i == 1 else f"lab-hks{i}" for i in range(1, self.hks_count + 1)]

    def write_endpoints(self) -> Path:
        path = endpoints_path(self.directory)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.endpoints(), handle, indent=1)
        return path

    def _save_processes(self) -> None:
        processes = []
        if self.ar_process is not None:  # first: it holds no state the others need
            processes.append({"name": "hkp-ar", "pid": self.ar_process.pid})
        for server in self.hks_servers:
            if server.process is not None:
                processes.append({"name": "freeradius", "pid": server.process.pid})
        if self.postgres is not None and (pid := postmaster_pid(self.postgres)) is not None:
            processes.append({"name": "postgres", "pid": pid})  # last: the HKS use it
        document = {
            "processes": processes,
            "netns": self.topology.names() if self.topology else [],
        }
        processes_path(self.directory).write_text(json.dumps(document))

    def stop(self) -> None:
        """Stop everything this lab started; safe to call twice. Each step runs even when
        an earlier one fails (or is interrupted), so nothing is left behind needlessly."""
        process, self.ar_process = self.ar_process, None
        topology, self.topology = self.topology, None
        try:
            if process is not None:
                terminate(process, STOP_TIMEOUT)
        finally:
            try:
                for server in self.hks_servers:
                    server.stop()
                if self.postgres is not None:
                    self.postgres.stop()
            finally:
                if topology is not None:
                    netns.destroy(topology.names())
                processes_path(self.directory).unlink(missing_ok=True)


def stop_recorded(directory: Path) -> list[str]:
    """`hkp-lab down`: stop what a detached `hkp-lab up` recorded. Returns what it did."""
    path = processes_path(directory)
    try:
        document = json.loads(path.read_text())
        processes = [(str(p["name"]), int(p["pid"])) for p in document.get("processes", [])]
        namespaces = [str(name) for name in document.get("netns", [])]
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [f"cannot read {path}: {exc.strerror}"]
    except (ValueError, TypeError, KeyError, AttributeError):
        # Half-written (e.g. a full disk): remove it, or `up` would refuse for ever.
        path.unlink(missing_ok=True)
        endpoints_path(directory).unlink(missing_ok=True)
        return [f"removed unreadable {path}; stop any freeradius or hkp-ar of {directory} by hand"]
    done = []
    for name, pid in processes:
        try:
            if _stop_pid(pid, str(directory)):
                done.append(f"stopped {name} (pid {pid})")
        except PermissionError:  # kept the record: `down` again as the user who ran `up`
            return [*done, f"not allowed to stop {name} (pid {pid}): run as its user (root?)"]
    if namespaces:
        netns.destroy(namespaces)
        done.append(f"deleted network namespaces {', '.join(namespaces)}")
    path.unlink(missing_ok=True)
    endpoints_path(directory).unlink(missing_ok=True)
    return done


def _stop_pid(pid: int, directory: str) -> bool:
    """SIGTERM `pid` only if its command line names a file in our state dir (no reused
    pids; "/tmp/lab/" so that a lab in /tmp/lab2 is not taken for ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    if os.fsencode(directory.rstrip("/") + "/") not in cmdline:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), STOP_TIMEOUT, "exit")
    except LabError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return True
