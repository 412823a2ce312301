"""The life cycle the private servers of hkp_support share (FreeRADIUS, slapd, and in
part PostgreSQL and a group of HKS): a free port, a work directory the server's user can
reach, a process started with its output appended to a log file, a deadline-bound wait
until it answers, and a stop with SIGTERM, then SIGKILL.

    class Server(PrivateServer):
        program = "slapd"
        def command(self): ...          # argv
        def answers(self): ...          # True once it serves (a connect, a Status-Server)
        output_path, log_path           # where its stdout goes, what log_tail() reads
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from hkp_radius.errors import ConfigError

READY_TIMEOUT = 20.0  # FreeRADIUS with Python starts in about a second; be generous
STOP_TIMEOUT = 10.0  # a clean shutdown takes well under a second; then SIGKILL
POLL_INTERVAL = 0.05  # polling interval of the deadline-bound start-up waits
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_LOW = 32768  # the kernel's default, when the range cannot be read
SERVER_PORTS_LOW = 20000  # above the well-known servers (1812, 2083, 5432, ...)
PORT_DRAWS = 100
_draw = random.SystemRandom()  # not the random module's state: tests seed that


def _ephemeral_low(path: Path = EPHEMERAL_RANGE) -> int:
    """The lowest port the kernel gives an unbound socket (ip_local_port_range)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return LINUX_EPHEMERAL_LOW


def free_port(address: str = "127.0.0.1", kind: int = socket.SOCK_DGRAM) -> int:
    """A port free on `address` now (UDP, or TCP with SOCK_STREAM) for a server that
    binds it later. It is drawn below the kernel's ephemeral range, so that no client
    socket's automatic bind (a connect, a first sendto) can take it in between; drawn
    at random there, and bound once to check it is free."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    high = _ephemeral_low()
    if high - SERVER_PORTS_LOW < 1000:  # a range reaching too low: the kernel's choice
        with socket.socket(family, kind) as sock:
            sock.bind((address, 0))
            port: int = sock.getsockname()[1]
            return port
    for _ in range(PORT_DRAWS):
        port = _draw.randrange(SERVER_PORTS_LOW, high)
        with socket.socket(family, kind) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue  # in use: draw again
            return port
    raise OSError(f"no free port on {address} in {PORT_DRAWS} draws")


def check_traversable(work_dir: Path, user: str | None) -> None:
    """ConfigError unless every existing parent of `work_dir` is searchable by others,
    so that `user` (the server's, when we are root; None: ours) can reach it."""
    if user is None:
        return
    for parent in reversed(work_dir.parents):
        if parent.exists() and not os.stat(parent).st_mode & 0o001:
            raise ConfigError(
                f"{parent} is not searchable by others, so user {user} cannot "
                f"reach {work_dir}: pick a work dir under /tmp or /var/tmp"
            )


def spawn(
    args: Sequence[str],
    output: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    start_new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `args` with stdin closed and stdout and stderr appended to `output`."""
    with open(output, "ab") as log:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=start_new_session,
        )


def wait_until_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout: float,
    name: str,
    log_tail: Callable[[], str],
) -> None:
    """Poll `ready()` until true. RuntimeError "NAME exited at start-up" if the process
    ends first, "NAME did not answer within T s" after `timeout`; both with the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start-up:\n{log_tail()}")
        if ready():
            return
        time.sleep(POLL_INTERVAL)  # polling interval of a deadline-bound wait
    raise RuntimeError(f"{name} did not answer within {timeout:g} s:\n{log_tail()}")


def terminate(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM, wait up to `timeout`, then SIGKILL; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


class Startable:
    """`with server:` starts it and stops it again, also when starting fails half-way."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PrivateServer(Startable):
    """A server process of our own, in the foreground: `start()` prepares its files,
    starts it and returns once it answers; `stop()` ends it and keeps its exit status."""

    program: ClassVar[str] = "server"

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    # What a server says about itself.

    def prepare(self) -> None:
        """Write what the server reads (before every start)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    @property
    def output_path(self) -> Path:
        """Where the process's stdout and stderr go (by default its log)."""
        return self.log_path

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # The life cycle.

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start the server and wait until it answers; on failure, nothing is left running."""
        if self.process is not None:
            raise RuntimeError("already started")
        self.prepare()
        self.process = spawn(self.command(), self.output_path)
        try:
            wait_until_ready(self.process, self.answers, timeout, self.program, self.log_tail)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> int | None:
        """SIGTERM, then wait for exit (SIGKILL after STOP_TIMEOUT). Returns the exit
        status (0: a clean shutdown; also kept in `exit_code`), None if not running."""
        process = self.process
        if process is None:
            return None
        self.exit_code = terminate(process)
        self.process = None
        return self.exit_code

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
