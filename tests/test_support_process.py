"""hkp_support.process: the private servers' one life cycle (FreeRADIUS, slapd, and the
context manager of PostgreSQL and HKS groups), against real child processes."""

from __future__ import annotations

import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hkp_radius.errors import ConfigError
from hkp_support import process
from hkp_support.process import PrivateServer, Startable, check_traversable, free_port

LISTENER = """
import signal, socket, sys
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print("listening", flush=True)
signal.pause()
"""


class Server(PrivateServer):
    program = "test-server"

    def __init__(self, work: Path, code: str) -> None:
        super().__init__()
        self.work = work
        self.code = code
        self.port = free_port(kind=socket.SOCK_STREAM)

    @property
    def log_path(self) -> Path:
        return self.work / "server.log"

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.code, str(self.port)]

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False


def test_a_server_runs_until_stopped_and_keeps_its_exit_status(tmp_path: Path) -> None:
    server = Server(tmp_path, LISTENER)
    with server:
        assert server.running and server.answers()
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    assert server.process is None and not server.running
    assert server.exit_code == -signal.SIGTERM
    assert "listening" in server.log_text()
    assert server.stop() is None  # stopping twice is harmless


def test_a_server_that_exits_at_start_up_says_so_with_its_log(tmp_path: Path) -> None:
    server = Server(tmp_path, "print('no such setting: frobnicate'); raise SystemExit(3)")
    with pytest.raises(RuntimeError, match="test-server exited at start-up") as caught:
        server.start()
    assert "no such setting: frobnicate" in str(caught.value)
    assert server.process is None and server.exit_code == 3


def test_a_server_that_does_not_answer_in_time_is_stopped(tmp_path: Path) -> None:
    server = Server(tmp_path, "import signal; signal.pause()")
    with pytest.raises(RuntimeError, match="test-server did not answer within 0 s"):
        server.start(timeout=0)
    assert server.process is None and server.exit_code == -signal.SIGTERM


def test_with_stops_what_a_failed_start_left_half_started() -> None:
    calls: list[str] = []

    class HalfStarts(Startable):
        def start(self) -> None:
            calls.append("start")
            raise RuntimeError("the second part did not start")

        def stop(self) -> None:
            calls.append("stop")

    with pytest.raises(RuntimeError, match="second part"), HalfStarts():
        pass
    assert calls == ["start", "stop"]


def test_a_work_dir_the_server_user_cannot_reach_is_a_config_error() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as name:  # /tmp: searchable by all
        root = Path(name)
        root.chmod(0o755)
        (root / "closed" / "inner").mkdir(parents=True)
        (root / "closed").chmod(0o700)
        work = root / "closed" / "inner" / "work"  # need not exist yet
        with pytest.raises(ConfigError, match=f"{root / 'closed'} is not searchable by others"):
            check_traversable(work, "freerad")
        check_traversable(work, None)  # we run it ourselves: fine
        check_traversable(root / "open" / "work", "freerad")


def test_a_free_port_is_below_the_ephemeral_range_and_free_for_either_kind() -> None:
    """A server's port is drawn where no client socket's automatic bind can take it
    before the server binds it (the release-then-bind race), and it binds."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        for address, family in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
            port = free_port(address, kind)
            assert process.SERVER_PORTS_LOW <= port < low
            with socket.socket(family, kind) as sock:
                sock.bind((address, port))


def test_a_port_in_use_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A draw that lands on a bound port is not returned: the next draw is."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        held = holder.getsockname()[1]
        draws = iter([held, held + 1 if held + 1 != 65536 else held - 1])
        monkeypatch.setattr(process, "_draw", FixedDraws(draws))
        monkeypatch.setattr(process, "_ephemeral_low", lambda: 65536)
        assert free_port() != held


def test_an_unreadable_range_means_the_kernels_default(tmp_path: Path) -> None:
    assert process._ephemeral_low(tmp_path / "absent") == process.LINUX_EPHEMERAL_LOW
    (tmp_path / "range").write_text("40000\t60999\n")
    assert process._ephemeral_low(tmp_path / "range") == 40000


class FixedDraws:
    def __init__(self, ports: Iterator[int]) -> None:
        self.ports = ports

    def randrange(self, low: int, high: int) -> int:
        port = next(self.ports)
        assert low <= port < high
        return port
