"""hkp_support.process: the private servers' one life cycle (FreeRADIUS, slapd, and the
context manager of PostgreSQL and HKS groups), against real child processes."""

from __future__ import annotations

import signal
import socket
import sys
import tempfile
from pathlib import Path

import pytest

from hkp_radius.errors import ConfigError
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
