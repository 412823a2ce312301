"""The control socket of a running hkp-ar: `hkp-ar status` and `hkp-ar keys`.

A Unix stream socket (`[control] socket`, created with `[control] mode`, 0600 by
default: file modes are the access control). One request line ("status" or "keys"),
one JSON document back, then the server closes. What it tells never includes key
material: a key is its NAI, SPI, CoA, PRF and remaining lifetime.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import Callable
from typing import Any

COMMANDS = ("status", "keys")
MAX_REQUEST = 64  # one command word and a newline
CLIENT_TIMEOUT = 5.0  # seconds the CLI waits for the daemon's answer


class ControlError(Exception):
    """The control socket cannot be used; the message says what to check."""


class ControlServer:
    def __init__(self, path: str, mode: int, answers: dict[str, Callable[[], Any]]) -> None:
        self.path = path
        self.mode = mode
        self.answers = answers
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._remove_stale()
        old = os.umask(0o777 & ~self.mode)  # the socket is born with its final mode
        try:
            self.server = await asyncio.start_unix_server(self._serve, path=self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, self.mode)

    def _remove_stale(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise OSError(f"[control] socket = {self.path}: exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.path)
            except OSError:
                os.unlink(self.path)  # left by a daemon that died: nobody answers there
                return
        raise OSError(f"[control] socket = {self.path}: another hkp-ar answers on it")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            command = line[:MAX_REQUEST].decode("ascii", "replace").strip()
            answer = self.answers.get(command)
            if answer is None:
                reply: Any = {"error": f"unknown command {command!r}; try one of {COMMANDS}"}
            else:
                reply = answer()
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away: nothing to tell it
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def query(path: str, command: str, timeout: float = CLIENT_TIMEOUT) -> Any:
    """Ask the daemon behind `path`; ControlError says why that failed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise ControlError(
                f"{path} does not exist: is hkp-ar running, with [control] socket = {path}?"
            ) from None
        except PermissionError:
            raise ControlError(
                f"{path}: permission denied: run as the daemon's user or a member of the "
                "socket's group ([control] mode)"
            ) from None
        except ConnectionRefusedError:
            raise ControlError(f"{path}: nobody answers (a daemon that died left it)") from None
        try:
            sock.sendall(command.encode() + b"\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        except OSError as exc:
            raise ControlError(f"{path}: {exc}") from None
    try:
        return json.loads(data)
    except ValueError:
        raise ControlError(f"{path}: the answer is not JSON ({len(data)} bytes)") from None


def format_status(status: dict[str, Any]) -> str:
    lines = [
        f"hkp-ar {status['version']}  pid {status['pid']}  up {status['uptime_s']:.0f} s",
        f"AR-ID {status['ar_address']}  udp {status['udp']}  raw {status['raw']}"
        f"  metrics {status['metrics']}",
        f"keys held {status['keys']}  requests in progress {status['in_progress']}",
    ]
    for title, counts in (("exchanges", status["exchanges"]), ("discarded", status["discarded"])):
        text = ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"
        lines.append(f"{title}: {text}")
    admission = status.get("admission")
    if admission:  # issue 15
        dropped = ", ".join(f"{k} {n}" for k, n in sorted(admission["dropped"].items()))
        peaks = ", ".join(f"{g or '-'} {n}" for g, n in sorted(admission["peak_in_flight"].items()))
        lines.append(f"admission dropped: {dropped or 'none'}; peak in flight: {peaks or 'none'}")
    for server, results in sorted(status["radius"].items()):
        text = ", ".join(f"{name} {count}" for name, count in sorted(results.items()))
        lines.append(f"home server {server}: {text}")
    for server, connection in sorted(status.get("radsec", {}).items()):
        state = connection["state"]
        if state == "connected":
            state += f", {connection['in_flight']} in flight, {connection['packets']} packets"
        elif state == "failed":
            state += f" ({connection['reason']}), next try in {connection['retry_in_s']:g} s"
        lines.append(f"radsec {server} ({connection['address']}): {state}")
    return "\n".join(lines)


def format_keys(keys: list[dict[str, Any]]) -> str:
    lines = [f"{'SPI':>10}  {'remaining':>9}  {'PRF':>3}  {'CoA':<39}  NAI"]
    for key in keys:
        lines.append(
            f"{key['spi']:>10}  {key['remaining_s']:>8.0f}s  {key['prf']:>3}  "
            f"{key['coa'] or '-':<39}  {key['nai']}"
        )
    lines.append(f"{len(keys)} key(s)")
    return "\n".join(lines)
